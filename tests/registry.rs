//! The proof that an image works: push it to a real registry with skopeo, pull it back, unpack it
//! with umoci (which checks sizes and diff_ids), validate it with oci-image-tool, compare the
//! unpacked root with the store, and run it with podman.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::registry::Registry;
use common::{have_nix, have_tool, nix_build, repo, run, static_tools};
use nix_image_layers::manifest::ManifestOutput;

/// Unpacks the one image of the OCI layout `oci` into `rootfs` with GNU tar, bottom layer first.
fn unpack_with_tar(oci: &Path, rootfs: &Path) {
    let blob = |digest: &str| oci.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap());
    let index: serde_json::Value = serde_json::from_slice(&fs::read(oci.join("index.json")).unwrap()).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap()).unwrap();
    fs::create_dir_all(rootfs).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        run(Command::new("tar").args(["--zstd", "-xpf"]).arg(blob(layer["digest"].as_str().unwrap())).arg("-C").arg(rootfs));
    }
}

/// Every file, directory and symlink below `root`, relative.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.insert(p.strip_prefix(root).unwrap().to_path_buf());
        }
    }
    out
}

/// For gzip in Docker's format (the default) and in OCI's, and for zstd (OCI's format).
#[test]
fn pushed_pulled_unpacked_and_run_with_real_clients() {
    let t = "pushed_pulled_unpacked_and_run_with_real_clients";
    if !have_nix(t) || !have_tool("skopeo", t) || !have_tool("docker-registry", t) || !have_tool("umoci", t) || !have_tool("oci-image-tool", t) {
        return;
    }
    for (more, media) in [
        ("", "application/vnd.docker.image.rootfs.diff.tar.gzip"),
        (r#"format = "oci";"#, "application/vnd.oci.image.layer.v1.tar+gzip"),
        (r#"compression = "zstd";"#, "application/vnd.oci.image.layer.v1.tar+zstd"),
    ] {
        round_trip(t, more, media);
    }
}

/// The image of `more` (arguments of build-image.nix), whose layers are of type `media`, through
/// the registry and every client.
fn round_trip(t: &str, more: &str, media: &str) {
    let image = |attr: &str| {
        format!(
            "(import ./build-image.nix {{ pkgs = import ./examples/pkgs.nix {{}}; tools = {}; name = \"hello\"; packages = ''[\"hello\", \"busybox\", \"oddities\", \"xorg.xev\"]''; {more} }}){attr}",
            common::static_tools().display()
        )
    };
    let manifest_path = nix_build(&["--expr", &image("")]).trim().to_string();
    let layout = nix_build(&["--expr", &image(".layout")]).trim().to_string();
    let grouping = nix_build(&["--expr", &image(".grouping")]).trim().to_string();
    let tag = {
        let o = run(Command::new("nix-instantiate").args(["--eval", "--read-write-mode", "--option", "substituters", "", "--expr", &image(".imageTag")]).current_dir(repo()));
        String::from_utf8(o.stdout).unwrap().trim().trim_matches('"').to_string()
    };
    assert_eq!(tag.len(), 32, "the default tag is the output hash: {tag}");
    assert!(manifest_path.contains(&tag), "{manifest_path} / {tag}");
    let ours: ManifestOutput = serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();

    let reg = Registry::start();
    let dest = format!("docker://127.0.0.1:{}/hello:{tag}", reg.port);
    run(Command::new("skopeo").args(["copy", "--preserve-digests", "--dest-tls-verify=false"]).arg(format!("dir:{layout}")).arg(&dest));

    // The registry holds exactly our manifest bytes.
    let raw = run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(&dest)).stdout;
    assert_eq!(raw, fs::read(Path::new(&layout).join("manifest.json")).unwrap());
    oci_layout_reads_back(&image, &tag, media, &format!("sha256:{}", common::outside_digests_of_bytes(&raw)), more);
    let served: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(served, serde_json::to_value(&ours.manifest).unwrap());
    assert!(ours.manifest.layers.iter().all(|l| l.media_type == media), "{more}: {:?}", ours.manifest.layers);

    // Pull into an OCI layout, validate it and unpack it (umoci checks sizes and diff_ids).
    let work = tempfile::tempdir().unwrap();
    let oci = work.path().join("oci");
    run(Command::new("skopeo").args(["copy", "--src-tls-verify=false"]).arg(&dest).arg(format!("oci:{}:{tag}", oci.display())));
    // Debian's oci-image-tool predates zstd in the image spec (1.1) and refuses its media type.
    if !media.ends_with("+zstd") {
        let v = run(Command::new("oci-image-tool").args(["validate", "--type", "image", "--ref"]).arg(format!("name={tag}")).arg(&oci));
        assert!(String::from_utf8_lossy(&v.stdout).contains("Validation succeeded"));
    }
    let bundle = work.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    if media.ends_with("+zstd") {
        // umoci 0.4.7 (Debian's) cannot read zstd layers: GNU tar unpacks the pulled layout's
        // layers in order instead, and podman below runs the image.
        unpack_with_tar(&oci, &rootfs);
    } else {
        run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:{tag}", oci.display())).arg(&bundle));
    }

    // Every file of the closure is there and identical; the customisation symlinks are in place.
    // The image's closure is what the grouping put in its layers.
    let groups: Vec<serde_json::Value> = serde_json::from_slice(&fs::read(&grouping).unwrap()).unwrap();
    let closure: BTreeSet<String> = groups.iter().flat_map(|g| g["contents"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned())).collect();
    let mut checked = 0;
    for store_path in &closure {
        let src = Path::new(store_path);
        let dst = rootfs.join(store_path.strip_prefix('/').unwrap());
        let entries = if src.is_dir() && !fs::symlink_metadata(src).unwrap().file_type().is_symlink() { tree(src) } else { BTreeSet::from([PathBuf::new()]) };
        assert_eq!(if dst.is_dir() { tree(&dst) } else { BTreeSet::from([PathBuf::new()]) }, entries, "{store_path}");
        for rel in entries {
            let (a, b) = (src.join(&rel), dst.join(&rel));
            let (ma, mb) = (fs::symlink_metadata(&a).unwrap(), fs::symlink_metadata(&b).unwrap());
            assert_eq!(ma.file_type(), mb.file_type(), "{}", a.display());
            assert_eq!(ma.mode() & 0o777, mb.mode() & 0o777, "{}", a.display());
            if ma.file_type().is_symlink() {
                assert_eq!(fs::read_link(&a).unwrap(), fs::read_link(&b).unwrap());
            } else if ma.is_file() {
                assert!(fs::read(&a).unwrap() == fs::read(&b).unwrap(), "{} differs", a.display());
            }
            checked += 1;
        }
    }
    assert!(closure.len() >= 5 && checked > 20, "{} paths, {checked} entries", closure.len());
    let hello_link = fs::read_link(rootfs.join("bin/hello")).unwrap();
    assert!(hello_link.starts_with("/nix/store") && hello_link.ends_with("bin/hello"), "{}", hello_link.display());
    assert_eq!(fs::read_link(rootfs.join("bin/sh")).unwrap(), PathBuf::from("busybox"), "busybox's own relative link");
    assert!(rootfs.join("bin/xev").exists());

    // Run it.
    if !have_tool("podman", t) {
        return;
    }
    let conf = common::shared().join("tools/podman/containers.conf");
    let pull = Command::new("podman").env("CONTAINERS_CONF", &conf).args(["pull", "--tls-verify=false"]).arg(dest.trim_start_matches("docker://")).output().unwrap();
    assert!(pull.status.success(), "podman pull: {}", String::from_utf8_lossy(&pull.stderr));
    let pulled = dest.trim_start_matches("docker://").to_string();
    let out = Command::new("podman").env("CONTAINERS_CONF", &conf).args(["run", "--rm", &pulled, "/bin/hello"]).output().unwrap();
    assert!(out.status.success(), "podman run: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Hello from libgreeting 1.0, and hello, world!");
    let out = Command::new("podman").env("CONTAINERS_CONF", &conf).args(["run", "--rm", &pulled, "/bin/sh", "-c", "ls /nix/store | wc -l"]).output().unwrap();
    assert!(out.status.success(), "podman run sh: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), closure.len().to_string());
    let _ = Command::new("podman").env("CONTAINERS_CONF", &conf).args(["rmi", "-f", &pulled]).output();

    // Without a registry: the stream result piped into `podman load`, then run.
    let stream = nix_build(&["--expr", &image(".stream")]).trim().to_string();
    let load = Command::new("sh").arg("-c").arg(format!("{stream} | podman load")).env("CONTAINERS_CONF", &conf).output().unwrap();
    assert!(load.status.success(), "{more}: stream | podman load: {}", String::from_utf8_lossy(&load.stderr));
    let loaded = format!("localhost/hello:{tag}");
    assert!(String::from_utf8_lossy(&load.stdout).contains(&loaded), "{}", String::from_utf8_lossy(&load.stdout));
    let out = Command::new("podman").env("CONTAINERS_CONF", &conf).args(["run", "--rm", &loaded, "/bin/hello"]).output().unwrap();
    assert!(out.status.success(), "{more}: podman run after load: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Hello from libgreeting 1.0, and hello, world!");
    let _ = Command::new("podman").env("CONTAINERS_CONF", &conf).args(["rmi", "-f", &loaded]).output();
    if more.is_empty() {
        // What goes inside an image (users, /tmp, dirs, perms, labels, history): podman shows it.
        let stream = nix_build(&["--expr", &common::contents::expr(&static_tools(), "", ".stream")]).trim().to_string();
        run(Command::new("sh").arg("-c").arg(format!("{stream} | podman load")).env("CONTAINERS_CONF", &conf));
        let podman = || {
            let mut c = Command::new("podman");
            c.env("CONTAINERS_CONF", &conf);
            c
        };
        common::contents::check(&podman, "localhost/contents:v1", &static_tools());
        let _ = podman().args(["rmi", "-f", "localhost/contents:v1"]).output();
    }
}

/// The ociLayout result: skopeo reads it as the image (same manifest digest as the registry
/// holds), and for OCI's gzip media types umoci unpacks it and oci-image-tool validates it.
fn oci_layout_reads_back(image: &dyn Fn(&str) -> String, tag: &str, media: &str, manifest_digest: &str, more: &str) {
    if !media.contains(".oci.") {
        // Docker's format has no OCI layout: asking says why and what to use.
        let o = Command::new("nix-instantiate").args(["--eval", "--read-write-mode", "--expr", &image(".ociLayout.drvPath")]).current_dir(repo()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("`ociLayout` needs format = \"oci\""), "{more}: {err}");
        return;
    }
    let layout = nix_build(&["--expr", &image(".ociLayout")]).trim().to_string();
    let inspect = run(Command::new("skopeo").args(["inspect", "--raw"]).arg(format!("oci:{layout}:{tag}")));
    let digest = format!("sha256:{}", common::outside_digests_of_bytes(&inspect.stdout));
    assert_eq!(digest, manifest_digest, "{more}: the layout's manifest is the registry's");
    if media.ends_with("+gzip") {
        let v = run(Command::new("oci-image-tool").args(["validate", "--type", "image", "--ref"]).arg(format!("name={tag}")).arg(&layout));
        assert!(String::from_utf8_lossy(&v.stdout).contains("Validation succeeded"));
        let work = tempfile::tempdir().unwrap();
        // umoci wants to write into the layout (a lock): it gets a copy, its symlinks kept.
        let copy = work.path().join("layout");
        run(Command::new("cp").args(["-a"]).arg(&layout).arg(&copy));
        run(Command::new("chmod").args(["-R", "u+w"]).arg(&copy));
        let bundle = work.path().join("bundle");
        run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:{tag}", copy.display())).arg(&bundle));
        assert!(bundle.join("rootfs/bin/hello").exists());
    }
}
