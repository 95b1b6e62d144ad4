//! build-index.nix: one tag for the example image built for x86_64 and for aarch64 (the example
//! package set with Debian's arm64 busybox-static, which tests/run.sh unpacks into
//! target/arm64-busybox). The index is pushed whole with `skopeo copy --all`, read back raw,
//! pulled per architecture by skopeo and podman, and the arm64 image's binaries are aarch64 ELF
//! (no qemu-user binfmt here to run them). Bad combinations are evaluation errors.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::registry::Registry;
use common::{have_file, have_nix, have_tool, nix_build, repo, run, static_tools};

fn arm64_busybox(test: &str) -> Option<PathBuf> {
    let dir = repo().join("target/arm64-busybox/bin");
    have_file(&dir.join("busybox"), test).then_some(dir)
}

/// The example image for `system` ("x86_64-linux" or "aarch64-linux") with `more` arguments.
fn image(system: &str, more: &str, arm: &Path) -> String {
    let pkgs = if system == "x86_64-linux" {
        "import ./examples/pkgs.nix { }".to_string()
    } else {
        format!("import ./examples/pkgs.nix {{ hostSystem = \"{system}\"; targetBusyboxDir = {}; }}", arm.display())
    };
    format!(
        "(import ./build-image.nix {{ pkgs = {pkgs}; tools = {}; name = \"multi\"; packages = ''[\"hello\", \"busybox\"]''; {more} }})",
        static_tools().display()
    )
}

fn index(images: &[String], more: &str) -> String {
    format!("(import ./build-index.nix {{ tools = {}; name = \"multi\"; images = [ {} ]; {more} }})", static_tools().display(), images.join(" "))
}

/// ELF header: 64-bit, and e_machine (bytes 18-19, little-endian) 0xB7, AArch64.
fn is_aarch64_elf(bytes: &[u8]) -> bool {
    bytes.len() > 20 && &bytes[..4] == b"\x7fELF" && bytes[4] == 2 && u16::from_le_bytes([bytes[18], bytes[19]]) == 0xB7
}

#[test]
fn an_index_of_two_architectures_is_pushed_whole_and_pulled_per_architecture() {
    let t = "an_index_of_two_architectures_is_pushed_whole_and_pulled_per_architecture";
    let Some(arm) = arm64_busybox(t) else { return };
    if !have_nix(t) || !have_tool("skopeo", t) || !have_tool("docker-registry", t) || !have_tool("podman", t) {
        return;
    }
    let reg = Registry::start();
    for (format, media) in [(r#"format = "oci";"#, "application/vnd.oci.image.index.v1+json"), ("", "application/vnd.docker.distribution.manifest.list.v2+json")] {
        let images = [image("aarch64-linux", format, &arm), image("x86_64-linux", format, &arm)];
        let idx = index(&images, "tag = \"v1\";");
        let out = PathBuf::from(nix_build(&["--expr", &idx]).trim());
        let bytes = fs::read(&out).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed["mediaType"], media);
        let platforms: Vec<String> = parsed["manifests"].as_array().unwrap().iter().map(|m| format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())).collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "sorted by platform whatever the order given");
        // Each entry is its image's manifest, and the platform is its config's.
        for (m, img) in parsed["manifests"].as_array().unwrap().iter().zip([&images[1], &images[0]]) {
            let mo: serde_json::Value = serde_json::from_slice(&fs::read(nix_build(&["--expr", img]).trim()).unwrap()).unwrap();
            let manifest_bytes = serde_json::to_vec(&mo["manifest"]).unwrap();
            assert_eq!(m["digest"].as_str().unwrap(), format!("sha256:{}", common::outside_digests_of_bytes(&manifest_bytes)));
            let cfg: serde_json::Value = serde_json::from_slice(&fs::read(mo["layerLocations"][mo["manifest"]["config"]["digest"].as_str().unwrap().trim_start_matches("sha256:")]["path"].as_str().unwrap()).unwrap()).unwrap();
            assert_eq!(m["platform"]["architecture"], cfg["architecture"]);
        }
        // Pushed whole; the registry serves the same bytes.
        let layout = nix_build(&["--expr", &format!("{idx}.layout")]).trim().to_string();
        let reference = format!("127.0.0.1:{}/multi:{}", reg.port, if format.is_empty() { "docker" } else { "oci" });
        run(Command::new("skopeo").args(["copy", "--all", "--preserve-digests", "--dest-tls-verify=false"]).arg(format!("dir:{layout}")).arg(format!("docker://{reference}")));
        let raw = run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{reference}"))).stdout;
        assert_eq!(raw, bytes, "skopeo inspect --raw gives the index");
        // Pulled per architecture.
        for arch in ["arm64", "amd64"] {
            let d = tempfile::tempdir().unwrap();
            let dest = d.path().join("img");
            run(Command::new("skopeo").args(["copy", "--override-arch", arch, "--src-tls-verify=false"]).arg(format!("docker://{reference}")).arg(format!("dir:{}", dest.display())));
            let m: serde_json::Value = serde_json::from_slice(&fs::read(dest.join("manifest.json")).unwrap()).unwrap();
            let cfg: serde_json::Value = serde_json::from_slice(&fs::read(dest.join(m["config"]["digest"].as_str().unwrap().trim_start_matches("sha256:"))).unwrap()).unwrap();
            assert_eq!(cfg["architecture"], arch);
            // The busybox binary of each image is of its architecture.
            let root = d.path().join("root");
            fs::create_dir(&root).unwrap();
            for l in m["layers"].as_array().unwrap() {
                run(Command::new("tar").args(["-xzf"]).arg(dest.join(l["digest"].as_str().unwrap().trim_start_matches("sha256:"))).arg("-C").arg(&root));
            }
            let target = fs::read_link(root.join("bin/busybox")).unwrap();
            let elf = fs::read(root.join(target.strip_prefix("/").unwrap())).unwrap();
            assert_eq!(is_aarch64_elf(&elf), arch == "arm64", "{arch}: {}", target.display());
        }
        if format.is_empty() {
            continue;
        }
        // podman: pull each architecture, run the one this machine runs.
        let conf = common::shared().join("tools/podman/containers.conf");
        let podman = || {
            let mut c = Command::new("podman");
            c.env("CONTAINERS_CONF", &conf);
            c
        };
        run(podman().args(["pull", "--tls-verify=false", "--arch", "arm64", &reference]));
        let arch = run(podman().args(["image", "inspect", "--format", "{{.Architecture}}", &reference])).stdout;
        assert_eq!(String::from_utf8_lossy(&arch).trim(), "arm64");
        run(podman().args(["pull", "--tls-verify=false", "--arch", "amd64", &reference]));
        let out = run(podman().args(["run", "--rm", &reference, "/bin/hello"])).stdout;
        assert_eq!(String::from_utf8_lossy(&out).trim(), common::contents::HELLO);
        let _ = podman().args(["rmi", "-f", &reference]).output();
        // The OCI layout of the index: skopeo pushes the same index from it.
        let oci = nix_build(&["--expr", &format!("{idx}.ociLayout")]).trim().to_string();
        let again = format!("127.0.0.1:{}/multi:from-oci-layout", reg.port);
        run(Command::new("skopeo").args(["copy", "--all", "--preserve-digests", "--dest-tls-verify=false"]).arg(format!("oci:{oci}:v1")).arg(format!("docker://{again}")));
        let raw = run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{again}"))).stdout;
        assert_eq!(raw, bytes);
    }
}

/// Images of different formats, two for one platform, or no images: evaluation errors naming the
/// argument. The same images in another order give the same index derivation; a rebuild is
/// byte-identical.
#[test]
fn index_arguments_are_checked_and_the_order_of_images_does_not_matter() {
    let t = "index_arguments_are_checked_and_the_order_of_images_does_not_matter";
    let Some(arm) = arm64_busybox(t) else { return };
    if !have_nix(t) {
        return;
    }
    let (a, x) = (image("aarch64-linux", r#"format = "oci";"#, &arm), image("x86_64-linux", r#"format = "oci";"#, &arm));
    let docker = image("x86_64-linux", "", &arm);
    for (images, says) in [
        (vec![a.clone(), docker], "images of different formats"),
        (vec![x.clone(), image("x86_64-linux", r#"format = "oci"; maxLayers = 3;"#, &arm)], "are both for x86_64-linux"),
        (vec![], "a non-empty list of results of build-image.nix"),
    ] {
        let o = Command::new("nix-instantiate").args(["--eval", "--read-write-mode", "--option", "substituters", "", "--expr", &format!("{}.drvPath", index(&images, ""))]).current_dir(repo()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("argument `images`") && err.contains(says), "{says}: {err}");
    }
    let drv = |images: &[String]| String::from_utf8(run(Command::new("nix-instantiate").args(["--option", "substituters", "", "--expr", &index(images, "")]).current_dir(repo())).stdout).unwrap();
    let first = drv(&[a.clone(), x.clone()]);
    assert_eq!(first, drv(&[x, a]));
    nix_build(&[first.trim()]);
    let o = Command::new("nix-store").args(["--realise", "--check", "--option", "substituters", ""]).arg(first.trim()).output().unwrap();
    assert!(o.status.success(), "a rebuild of the index differs: {}", String::from_utf8_lossy(&o.stderr));
}
