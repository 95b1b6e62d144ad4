//! The images in the engines users run them with: Docker (dockerd) and containerd, each started
//! by the test on its own socket in a temporary directory and stopped by its PID. Docker pulls
//! and loads gzip images (Debian's Docker 20.10 reads no zstd); containerd pulls gzip and zstd.
//! Podman, skopeo, umoci and oci-image-tool are in tests/registry.rs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::registry::Registry;
use common::{have_nix, have_tool, nix_build, repo, run, static_tools};

use common::contents::HELLO;

/// An engine daemon in its own directory, killed (by PID) and waited for on drop.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    name: &'static str,
}

impl Daemon {
    /// Starts `program` with `args` (in which `{D}` is the daemon's directory), logging to
    /// `D/log`, and waits until `ready` (given D) succeeds.
    fn start(name: &'static str, program: &str, args: &[&str], ready: impl Fn(&Path) -> bool) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let log = fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(program)
            .args(args.iter().map(|a| a.replace("{D}", &d)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let daemon = Daemon { child, dir, name };
        let start = Instant::now();
        while !ready(daemon.dir.path()) {
            assert!(start.elapsed() < Duration::from_secs(90), "{name} did not start:\n{}", daemon.log());
            std::thread::sleep(Duration::from_millis(250));
        }
        daemon
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example image with `more` (arguments of build-image.nix): `attr` of it, built.
fn image(more: &str, attr: &str) -> String {
    let expr = format!(
        "(import ./build-image.nix {{ pkgs = import ./examples/pkgs.nix {{}}; tools = {}; name = \"hello\"; packages = ''[\"hello\", \"busybox\"]''; {more} }}){attr}",
        static_tools().display()
    );
    nix_build(&["--expr", &expr]).trim().to_string()
}

fn tag_of(more: &str) -> String {
    let expr = format!(
        "(import ./build-image.nix {{ pkgs = import ./examples/pkgs.nix {{}}; tools = {}; name = \"hello\"; packages = ''[\"hello\", \"busybox\"]''; {more} }}).imageTag",
        static_tools().display()
    );
    let o = run(Command::new("nix-instantiate").args(["--eval", "--read-write-mode", "--option", "substituters", "", "--expr", &expr]).current_dir(repo()));
    String::from_utf8(o.stdout).unwrap().trim().trim_matches('"').to_string()
}

/// Pushes the image of `more` to `reg`; returns its reference there.
fn push(reg: &Registry, more: &str) -> String {
    let layout = image(more, ".layout");
    let reference = format!("127.0.0.1:{}/hello:{}", reg.port, tag_of(more));
    run(Command::new("skopeo").args(["copy", "--preserve-digests", "--dest-tls-verify=false"]).arg(format!("dir:{layout}")).arg(format!("docker://{reference}")));
    reference
}

#[test]
fn docker_pulls_and_loads_gzip_images_and_runs_them() {
    let t = "docker_pulls_and_loads_gzip_images_and_runs_them";
    if !have_nix(t) || !have_tool("dockerd", t) || !have_tool("docker", t) || !have_tool("skopeo", t) || !have_tool("docker-registry", t) {
        return;
    }
    let reg = Registry::start();
    let reference = push(&reg, "");
    let docker = Daemon::start(
        "dockerd",
        "dockerd",
        &[
            "--data-root", "{D}/data", "--exec-root", "{D}/exec", "--pidfile", "{D}/pid", "-H", "unix://{D}/sock",
            "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
            "--default-ulimit", "nofile=1024:1024", "--default-ulimit", "nproc=1024:1024",
        ],
        |d| Command::new("docker").arg("-H").arg(format!("unix://{}", d.join("sock").display())).arg("version").output().is_ok_and(|o| o.status.success()),
    );
    let host = format!("unix://{}", docker.socket().display());
    let docker_cmd = || {
        let mut c = Command::new("docker");
        c.arg("-H").arg(&host);
        c
    };
    // From the registry (127.0.0.0/8 registries are insecure by default: plain HTTP).
    run(docker_cmd().args(["pull", &reference]));
    let out = run(docker_cmd().args(["run", "--rm", "--network", "none", &reference, "/bin/hello"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), HELLO);
    // Without a registry: the stream, piped into docker load.
    let stream = image("", ".stream");
    let load = Command::new("sh").arg("-c").arg(format!("{stream} | docker -H {host} load")).output().unwrap();
    assert!(load.status.success(), "stream | docker load: {}\n{}", String::from_utf8_lossy(&load.stderr), docker.log());
    let loaded = format!("hello:{}", tag_of(""));
    assert!(String::from_utf8_lossy(&load.stdout).contains(&loaded), "{}", String::from_utf8_lossy(&load.stdout));
    let out = run(docker_cmd().args(["run", "--rm", "--network", "none", &loaded, "/bin/hello"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), HELLO);
    // The loaded image is the pulled one: the same config, so the same image ID.
    let id = |r: &str| String::from_utf8(run(docker_cmd().args(["image", "inspect", "--format", "{{.Id}}", r])).stdout).unwrap();
    assert_eq!(id(&reference), id(&loaded));
    // What goes inside an image (users, /tmp, dirs, perms, labels, history): docker shows it.
    let stream = nix_build(&["--expr", &common::contents::expr(&static_tools(), "", ".stream")]).trim().to_string();
    run(Command::new("sh").arg("-c").arg(format!("{stream} | docker -H {host} load")));
    common::contents::check(&docker_cmd, "contents:v1", &static_tools());
}

#[test]
fn containerd_pulls_gzip_and_zstd_images_and_runs_them() {
    let t = "containerd_pulls_gzip_and_zstd_images_and_runs_them";
    if !have_nix(t) || !have_tool("containerd", t) || !have_tool("ctr", t) || !have_tool("runc", t) || !have_tool("skopeo", t) || !have_tool("docker-registry", t) {
        return;
    }
    let reg = Registry::start();
    let references = [push(&reg, ""), push(&reg, r#"compression = "zstd";"#)];
    let containerd = Daemon::start(
        "containerd",
        "sh",
        &["-c", "printf 'version = 2\\nroot = \"{D}/root\"\\nstate = \"{D}/state\"\\n[grpc]\\n  address = \"{D}/sock\"\\n' > {D}/config.toml && exec containerd --config {D}/config.toml"],
        |d| Command::new("ctr").arg("-a").arg(d.join("sock")).arg("version").output().is_ok_and(|o| o.status.success()),
    );
    for (i, reference) in references.iter().enumerate() {
        run(Command::new("ctr").arg("-a").arg(containerd.socket()).args(["images", "pull", "--plain-http", "--snapshotter", "native", reference]));
        let out = run(Command::new("ctr").arg("-a").arg(containerd.socket()).args(["run", "--rm", "--snapshotter", "native", reference, &format!("hello-{i}"), "/bin/hello"]));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), HELLO, "{reference}");
    }
    // The image of every content argument: its command, a store path only imageConfig names, runs
    // as the declared user, whose groups containerd reads from the image's /etc/group.
    let layout = nix_build(&["--expr", &common::contents::expr(&static_tools(), "", ".layout")]).trim().to_string();
    let reference = format!("127.0.0.1:{}/contents:v1", reg.port);
    run(Command::new("skopeo").args(["copy", "--preserve-digests", "--dest-tls-verify=false"]).arg(format!("dir:{layout}")).arg(format!("docker://{reference}")));
    let ctr = || {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(containerd.socket());
        c
    };
    run(ctr().args(["images", "pull", "--plain-http", "--snapshotter", "native", &reference]));
    let out = run(ctr().args(["run", "--rm", "--snapshotter", "native", &reference, "contents-cmd"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), HELLO);
    let out = run(ctr().args(["run", "--rm", "--snapshotter", "native", &reference, "contents-id", "/bin/busybox", "id"]));
    let id = String::from_utf8_lossy(&out.stdout);
    assert!(id.starts_with("uid=1000(app) gid=1000(app)") && id.contains("2000(staff)"), "{id}");
}
