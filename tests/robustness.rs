//! What users and machines do to builds: two images sharing layers built at once from one store,
//! and builds killed with SIGKILL (nix-build and its builders) at random moments. Every build
//! starts from nothing (a fresh `salt` of the example package set makes every package new). And
//! an image built on a remote builder over `ssh-ng`, byte-identical to a local build.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use common::{have_nix, nix_build, repo, run, static_tools};
use nix_image_layers::manifest::ManifestOutput;

/// The tests of this file build at the same time, except while one checks the whole store:
/// `nix-store --verify` (Nix 2.8) lists the store directory, then reads the valid paths, and drops
/// from the database any path created in between as one that "disappeared", so it runs alone.
static STORE: RwLock<()> = RwLock::new(());

fn building() -> RwLockReadGuard<'static, ()> {
    STORE.read().unwrap_or_else(PoisonError::into_inner)
}

fn stamp() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

fn image(salt: &str, packages: &str) -> String {
    format!(
        "import ./build-image.nix {{ pkgs = import ./examples/pkgs.nix {{ salt = \"{salt}\"; }}; tools = {}; name = \"r\"; packages = ''{packages}''; }}",
        static_tools().display()
    )
}

/// `what` of the image `expr` (bound to `i`), evaluated.
fn eval<T: serde::de::DeserializeOwned>(expr: &str, what: &str) -> T {
    serde_json::from_value(common::eval_json(&format!("let i = {expr}; in {what}"))).unwrap()
}

fn nix_build_cmd(expr: &str) -> Command {
    let mut c = Command::new("nix-build");
    c.args(["--option", "substituters", "", "--no-out-link", "--max-jobs", "2", "--expr", expr]).current_dir(repo());
    c
}

/// The store layers a build log says were packed (their out paths).
fn packed(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split_once("packing ").and_then(|(_, r)| r.split(" into ").nth(1)).and_then(|r| r.split(' ').next()).map(str::to_owned))
        .collect()
}

/// Every blob of the image is where layerLocations says, with that sha256.
fn blobs_match(out: &str) {
    let m: ManifestOutput = serde_json::from_slice(&fs::read(out.trim()).unwrap()).unwrap();
    for d in m.manifest.layers.iter().chain([&m.manifest.config]) {
        let hex = d.digest.trim_start_matches("sha256:");
        let loc = &m.layer_locations[hex];
        let sum = String::from_utf8(run(Command::new("sha256sum").arg(&loc.path)).stdout).unwrap();
        assert!(sum.starts_with(hex), "{}: {sum}", loc.path);
    }
}

/// Two nix-builds at once (two jobs each) of images that share layers: both finish and are
/// right, and a layer both need is packed once in all.
#[test]
fn two_images_sharing_layers_build_at_once_and_share_the_work() {
    let t = "two_images_sharing_layers_build_at_once_and_share_the_work";
    if !have_nix(t) || !common::have_tool("sha256sum", t) {
        return;
    }
    let _building = building();
    let salt = format!("concurrent-{}", stamp());
    let (a, b) = (image(&salt, r#"["hello", "busybox"]"#), image(&salt, r#"["hello", "xorg.xev"]"#));
    let children: Vec<_> = [&a, &b].iter().map(|e| nix_build_cmd(e).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()).collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let mut all_packed = Vec::new();
    for o in &outputs {
        let log = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{log}");
        blobs_match(&String::from_utf8_lossy(&o.stdout));
        all_packed.extend(packed(&log));
    }
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for p in &all_packed {
        *counts.entry(p).or_default() += 1;
    }
    assert!(counts.values().all(|&n| n == 1), "a layer packed twice: {counts:?}");
    // The layers the two images share were built, once, by one of the two.
    let layers = |e: &str| -> BTreeSet<String> { eval(e, "map (l: l.outPath) i.layers") };
    let shared: BTreeSet<String> = layers(&a).intersection(&layers(&b)).cloned().collect();
    assert!(!shared.is_empty(), "the two images share layers");
    for s in &shared {
        assert_eq!(counts.get(s), Some(&1), "{s} packed once");
    }
}

/// Builds killed (SIGKILL to nix-build and every builder) at a random moment, ROUNDS times
/// (default 4), each round a new image from nothing (its own `salt`): afterwards no output is
/// registered but broken (`nix-store --verify-path`), the build then completes, and Nix
/// rebuilding each derivation gets the same bytes; at the end, `nix-store --verify
/// --check-contents` of the whole store is clean.
#[test]
fn builds_killed_at_random_moments_leave_nothing_broken() {
    let t = "builds_killed_at_random_moments_leave_nothing_broken";
    if !have_nix(t) || !common::have_tool("sha256sum", t) {
        return;
    }
    let building = building();
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(4);
    let salt = format!("killed-{}", stamp());
    let packages = r#"["hello", "oddities", "xorg.xev", "busybox"]"#;
    // How long an uninterrupted build of such an image takes, to spread the kills over it.
    let t0 = Instant::now();
    nix_build(&["--max-jobs", "2", "--expr", &image(&format!("{salt}-probe"), packages)]);
    let span = t0.elapsed().as_millis().max(200) as u64;
    let mut x = stamp() as u64 | 1;
    let mut rebuilt = 0;
    for round in 0..rounds {
        let expr = image(&format!("{salt}-{round}"), packages);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let after = Duration::from_millis(x % span);
        let child = nix_build_cmd(&expr).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0).spawn().unwrap();
        std::thread::sleep(after);
        // The whole group: nix-build and the builders it started.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
        let _ = child.wait_with_output();
        // Whatever got registered is whole: the image's outputs and its packages'. (Listing the
        // image's outputs builds the grouping if the kill came before it.)
        let outs: Vec<String> = eval(&expr, "[ i.outPath i.grouping.outPath i.customisationLayer.outPath ] ++ map (l: l.outPath) i.layers");
        let mut registered = 0;
        for p in outs.iter().filter(|p| std::path::Path::new(p).exists()) {
            if Command::new("nix-store").args(["--check-validity", p]).output().unwrap().status.success() {
                registered += 1;
                let o = Command::new("nix-store").args(["--verify-path", p]).output().unwrap();
                assert!(o.status.success(), "round {round} (killed after {after:?}): {p} is registered but broken: {}", String::from_utf8_lossy(&o.stderr));
            }
        }
        // Then the build completes, and is what an uninterrupted build gives: Nix rebuilds
        // each derivation and compares.
        let out = nix_build(&["--max-jobs", "2", "--expr", &expr]);
        blobs_match(&out);
        let drvs: Vec<String> = eval(&expr, "[ i.drvPath i.grouping.drvPath i.customisationLayer.drvPath ] ++ map (l: l.drvPath) i.layers");
        let o = Command::new("nix-store").args(["--realise", "--check", "--option", "substituters", ""]).args(&drvs).output().unwrap();
        assert!(o.status.success(), "round {round}: after the kill, a rebuild differs: {}", String::from_utf8_lossy(&o.stderr));
        rebuilt += drvs.len();
        eprintln!("round {round}: killed after {after:?} of a {span} ms build, {registered} of the image's {} outputs registered, each whole; completed, rebuilt byte-identical", outs.len());
    }
    // And the whole store: every valid path's contents hash to what the database holds.
    drop(building);
    let _alone = STORE.write().unwrap_or_else(PoisonError::into_inner);
    let o = Command::new("nix-store").args(["--verify", "--check-contents"]).output().unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !log.contains("was modified") && !log.contains("error"), "nix-store --verify --check-contents after the kills: {log}");
    eprintln!("{rounds} rounds: {rebuilt} derivations rebuilt byte-identical; the whole store verified");
}

/// An sshd on a free loopback port, started for one test and stopped by its PID when dropped:
/// its own host key, one client key allowed in, and a Nix store root of its own (a chroot
/// store, so its builds run in the sandbox and share nothing with the local store).
struct RemoteBuilder {
    dir: tempfile::TempDir,
    port: u16,
    sshd: std::process::Child,
}

impl RemoteBuilder {
    fn start() -> RemoteBuilder {
        let dir = tempfile::Builder::new().prefix("remote-builder.").tempdir_in("/var/tmp").unwrap();
        let d = dir.path();
        for key in ["host_key", "client_key"] {
            run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", ""]).arg("-f").arg(d.join(key)));
        }
        fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // sshd refuses to start without its privilege separation directory.
        fs::create_dir_all("/run/sshd").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/host_key\nAuthorizedKeysFile {0}/authorized_keys\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {0}/sshd.pid\n",
            d.display()
        );
        fs::write(d.join("sshd_config"), config).unwrap();
        // The remote daemon: no binary cache (there is no network), its own store root.
        fs::write(d.join("remote-daemon"), "#!/bin/sh\nexec nix-daemon --option substituters '' \"$@\"\n").unwrap();
        run(Command::new("chmod").arg("+x").arg(d.join("remote-daemon")));
        let sshd = Command::new("/usr/sbin/sshd").args(["-D", "-e", "-f"]).arg(d.join("sshd_config")).stderr(fs::File::create(d.join("sshd.log")).unwrap()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not listen: {}", fs::read_to_string(d.join("sshd.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(50));
        }
        RemoteBuilder { dir, port, sshd }
    }

    /// The remote store as the local side names it in `--store`.
    fn store(&self) -> String {
        format!("local?root={}/store", self.dir.path().display())
    }

    /// The `--builders` line: this machine's system, the remote store and daemon in the URI.
    fn builders(&self) -> String {
        let d = self.dir.path().display();
        format!("ssh-ng://root@127.0.0.1?remote-store=local%3Froot%3D{d}/store&remote-program={d}/remote-daemon x86_64-linux - 2 1")
    }

    /// How Nix's ssh reaches it.
    fn ssh_opts(&self) -> String {
        format!(
            "-p {} -i {}/client_key -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR",
            self.port,
            self.dir.path().display()
        )
    }
}

impl Drop for RemoteBuilder {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
        // The chroot store's files are read-only, as in any store.
        let _ = Command::new("chmod").args(["-R", "u+w"]).arg(self.dir.path()).status();
    }
}

/// An image whose every derivation is built on a remote builder (`ssh-ng://` to an sshd on
/// 127.0.0.1 whose store is a separate root; `--max-jobs 0`, so nothing may build here): the
/// layers are in the remote store, the image is right, and Nix rebuilding each derivation here
/// gets the same bytes.
#[test]
fn an_image_built_on_a_remote_builder_is_byte_identical_to_a_local_build() {
    let t = "an_image_built_on_a_remote_builder_is_byte_identical_to_a_local_build";
    if !have_nix(t) || !common::have_tool("ssh-keygen", t) || !common::have_file(std::path::Path::new("/usr/sbin/sshd"), t) || !common::have_tool("sha256sum", t) {
        return;
    }
    if !common::is_root() {
        common::skip(t, "sshd logs in as root only when started by root");
        return;
    }
    let _building = building();
    let remote = RemoteBuilder::start();
    let expr = image(&format!("remote-{}", stamp()), r#"["hello", "busybox"]"#);
    let o = nix_build_cmd(&expr)
        .args(["--max-jobs", "0", "--builders", &remote.builders()])
        .env("NIX_SSHOPTS", remote.ssh_opts())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    blobs_match(&String::from_utf8_lossy(&o.stdout));
    let layers: Vec<String> = eval(&expr, "map (l: l.outPath) i.layers");
    let built_remotely = log.lines().filter(|l| l.contains(" on 'ssh-ng://")).count();
    let drvs: Vec<String> = eval(&expr, "[ i.drvPath i.grouping.drvPath i.customisationLayer.drvPath ] ++ map (l: l.drvPath) i.layers");
    assert!(built_remotely >= drvs.len(), "{built_remotely} builds on the remote builder, expected every one of {}:\n{log}", drvs.len());
    for l in &layers {
        let o = Command::new("nix-store").args(["--store", &remote.store(), "--check-validity", l]).output().unwrap();
        assert!(o.status.success(), "{l} is not in the remote store: {}", String::from_utf8_lossy(&o.stderr));
    }
    // Here, with no remote builder: the same bytes.
    let o = Command::new("nix-store")
        .args(["--realise", "--check", "--max-jobs", "2", "--builders", "", "--option", "substituters", ""])
        .args(&drvs)
        .output()
        .unwrap();
    assert!(o.status.success(), "a local rebuild differs from the remote build: {}", String::from_utf8_lossy(&o.stderr));
    eprintln!("{} derivations built on the remote builder ({} layers); each rebuilt here byte-identical", drvs.len(), layers.len());
}
