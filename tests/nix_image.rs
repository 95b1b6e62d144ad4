//! build-image.nix, default.nix, overlay.nix and flake.nix under real Nix, with the example
//! package set (no nixpkgs). The tests share one Nix store and some delete outputs, so they
//! take turns.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use common::{eval_json, have_nix, image_args, nix_build, nix_build_output, repo, run, static_tools};
use nix_image_layers::manifest::{ImageConfig, ManifestOutput};

static NIX: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    NIX.lock().unwrap_or_else(|e| e.into_inner())
}

fn build(name: &str, packages: &str, pkgs_args: &str, extra: &[&str]) -> String {
    let args = image_args(name, packages, pkgs_args);
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(extra);
    nix_build(&all).trim().to_string()
}

/// The image of the example package set as a Nix expression, with `more` arguments of
/// build-image.nix (Nix attributes, `compression = "zstd";`).
fn image_expr_with(packages: &str, pkgs_args: &str, more: &str) -> String {
    format!(
        "import ./build-image.nix {{ pkgs = import ./examples/pkgs.nix {{ {pkgs_args} }}; tools = {}; name = \"t\"; packages = ''{packages}''; {more} }}",
        static_tools().display()
    )
}

/// The nixpkgs stand-in (tests/nix/stand-in-nixpkgs) with the static programs prebuilt and
/// `args` (Nix attributes such as `crossSystem = "aarch64-linux";`), as an expression.
fn stand_in(args: &str) -> String {
    format!("(import ./tests/nix/stand-in-nixpkgs {{ prebuilt = {}; {args} }})", static_tools().display())
}

/// Each store layer: its out path and the store paths it packs.
fn layers_of(packages: &str, pkgs_args: &str) -> Vec<(String, BTreeSet<String>)> {
    layers_of_with(packages, pkgs_args, "")
}

/// [`layers_of`] with more arguments of build-image.nix.
fn layers_of_with(packages: &str, pkgs_args: &str, more: &str) -> Vec<(String, BTreeSet<String>)> {
    let v = eval_json(&format!(
        "map (l: {{ out = l.outPath; paths = l.drvAttrs.paths; }}) ({}).layers",
        image_expr_with(packages, pkgs_args, more)
    ));
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| (l["out"].as_str().unwrap().to_string(), serde_json::from_value(l["paths"].clone()).unwrap()))
        .collect()
}

/// With `compression = "none"` the image is the one of Nixery (2019): uncompressed layers, Docker
/// media types, diff_ids equal to the layers' digests. By default layers are gzipped; with zstd
/// the manifest is OCI's. Every blob matches its file, checked with outside tools.
#[test]
fn manifest_has_the_shape_of_nixery_2019_and_every_blob_matches_its_file() {
    let t = "manifest_has_the_shape_of_nixery_2019";
    if !have_nix(t) || !common::have_tool("sha256sum", t) || !common::have_tool("openssl", t) || !common::have_tool("zstd", t) {
        return;
    }
    let _g = lock();
    let packages = r#"["hello", "xorg.xev", "haskellpackages.stylish-haskell", "oddities"]"#;
    let docker = "application/vnd.docker.image.rootfs.diff.tar";
    let oci = "application/vnd.oci.image.layer.v1.tar";
    // (extra arguments, manifest media type, layers' media type, file suffix, decompress)
    for (extra, manifest_type, layer_type, suffix, decompress) in [
        (r#"compression = "none";"#, "application/vnd.docker.distribution.manifest.v2+json", docker.to_string(), "", "cat"),
        ("", "application/vnd.docker.distribution.manifest.v2+json", format!("{docker}.gzip"), ".gz", "gzip -dc"),
        (r#"compression = "zstd";"#, "application/vnd.oci.image.manifest.v1+json", format!("{oci}+zstd"), ".zst", "zstd -dc"),
    ] {
        let out = nix_build(&["--expr", &image_expr_with(packages, "", extra)]).trim().to_string();
        let text = fs::read_to_string(&out).unwrap();
        let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&String> = raw.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["layerLocations", "manifest"]);
        let m: ManifestOutput = serde_json::from_str(&text).unwrap();
        assert_eq!(m.manifest.schema_version, 2);
        assert_eq!(m.manifest.media_type, manifest_type, "{extra}");
        assert!(m.manifest.layers.len() >= 2 && m.manifest.layers.len() <= 96);
        assert!(m.manifest.layers.iter().all(|l| l.media_type == layer_type), "{extra}: {:?}", m.manifest.layers);
        assert_eq!(m.layer_locations.len(), m.manifest.layers.len() + 1);
        let mut diff_ids = Vec::new();
        for desc in m.manifest.layers.iter().chain([&m.manifest.config]) {
            let hex = desc.digest.strip_prefix("sha256:").unwrap();
            let loc = &m.layer_locations[hex];
            assert!(Path::new(&loc.path).is_file(), "{} exists", loc.path);
            let (sha256, md5, size) = common::outside_digests(Path::new(&loc.path));
            assert_eq!((sha256.as_str(), md5.as_str(), size), (hex, loc.md5.as_str(), desc.size), "{}", loc.path);
            if desc.media_type == layer_type {
                assert!(loc.path.ends_with(&format!(".tar{suffix}")), "{}", loc.path);
                diff_ids.push(format!("sha256:{}", common::outside_diff_id(Path::new(&loc.path), decompress)));
            }
        }
        let cfg_hex = m.manifest.config.digest.strip_prefix("sha256:").unwrap();
        let cfg: ImageConfig = serde_json::from_slice(&fs::read(&m.layer_locations[cfg_hex].path).unwrap()).unwrap();
        assert_eq!(cfg.architecture, "amd64");
        assert_eq!(cfg.os, "linux");
        assert_eq!(cfg.rootfs.diff_ids, diff_ids, "{extra}");
        if extra.contains("none") {
            assert_eq!(cfg.rootfs.diff_ids, m.manifest.layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>());
        }
        // The customisation layer is the top one.
        let top = &m.layer_locations[m.manifest.layers.last().unwrap().digest.strip_prefix("sha256:").unwrap()];
        assert!(top.path.ends_with(&format!("-customisation-layer.tar{suffix}")), "{}", top.path);
    }
}

#[test]
fn the_architecture_comes_from_the_package_sets_host_platform() {
    if !have_nix("the_architecture_comes_from_the_package_sets_host_platform") {
        return;
    }
    let _g = lock();
    // Packages built here, labelled for another host: only the config's architecture changes.
    let expr = format!(
        "let p = import ./examples/pkgs.nix {{}}; in (import ./build-image.nix {{ pkgs = p // {{ stdenv = {{ hostPlatform.system = \"aarch64-linux\"; buildPlatform.system = builtins.currentSystem; }}; }}; tools = {}; name = \"arm\"; packages = ''[\"hello\"]''; }}).config",
        static_tools().display()
    );
    let out = nix_build(&["--expr", &expr]);
    let cfg: ImageConfig = serde_json::from_slice(&fs::read(out.trim()).unwrap()).unwrap();
    assert_eq!(cfg.architecture, "arm64");
}

#[test]
fn unknown_packages_give_not_found_listing_every_one() {
    if !have_nix("unknown_packages_give_not_found_listing_every_one") {
        return;
    }
    let _g = lock();
    let out = build("missing", r#"["hello", "nope", "xorg.nope", "HaskellPackages.stylish-haskell", "haskellpackages.Stylish-haskell", "libgreeting.lib"]"#, "", &[]);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"error": "not_found", "pkgs": ["nope", "xorg.nope", "haskellpackages.Stylish-haskell", "libgreeting.lib"]})
    );
    // Case-insensitive on the top level only (nested names stay exact): these are found.
    let ok = build("found", r#"["HaskellPackages.stylish-haskell", "haskellpackages.stylish-haskell", "XORG.xev"]"#, "", &[]);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&ok).unwrap()).unwrap();
    assert!(v.get("manifest").is_some(), "{v}");
}

#[test]
fn images_with_common_dependencies_share_layer_derivations() {
    if !have_nix("images_with_common_dependencies_share_layer_derivations") {
        return;
    }
    let _g = lock();
    let a = layers_of(r#"["hello", "oddities"]"#, "");
    let b = layers_of(r#"["hello", "xorg.xev"]"#, "");
    let by_contents_b: BTreeMap<&BTreeSet<String>, &String> = b.iter().map(|(o, p)| (p, o)).collect();
    let mut shared = 0;
    for (out, paths) in &a {
        if let Some(other) = by_contents_b.get(paths) {
            assert_eq!(out, *other, "the same group of paths is the same derivation");
            shared += 1;
        }
    }
    assert!(shared >= 1, "hello's dependencies form a group in both images: {a:?} / {b:?}");
    // Building the second image, with an xev never built before, packs the layers holding xev
    // and none of the shared ones: Nix finds those already built by the first image.
    build("share-a", r#"["hello", "oddities"]"#, "", &[]);
    let fresh = format!(r#"xevVersion = "1.2-{}";"#, stamp());
    let b = layers_of(r#"["hello", "xorg.xev"]"#, &fresh);
    let shared_outs: BTreeSet<&String> = a.iter().map(|(o, _)| o).filter(|o| b.iter().any(|(ob, _)| ob == *o)).collect();
    assert_eq!(shared_outs.len(), shared, "the fresh xev leaves hello's layers as they were");
    let with_xev: BTreeSet<String> = b.iter().filter(|(_, p)| p.iter().any(|p| p.contains("-xev-1.2-"))).map(|(o, _)| o.clone()).collect();
    assert!(!with_xev.is_empty());
    let packed = packed_layers(&image_args("share-b", r#"["hello", "xorg.xev"]"#, &fresh), &[]);
    assert!(with_xev.is_subset(&packed), "the new layers were packed: {with_xev:?} / {packed:?}");
    let again: Vec<&String> = packed.iter().filter(|o| shared_outs.contains(o)).collect();
    assert!(again.is_empty(), "shared layers packed again: {again:?}");
    assert!(packed.iter().all(|o| b.iter().any(|(ob, _)| ob == o)), "only the image's own layers: {packed:?}");
}

/// Nanoseconds since the epoch: a version or salt never built before, so that a test builds from
/// nothing whatever the store holds from earlier runs.
fn stamp() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// Builds an image (`args` from [`image_args`], then `extra`) and returns the store layers it
/// packed, read from layer-hash's "packing N store paths into OUT (COMPRESSION)" lines in the
/// build log.
fn packed_layers(args: &[String], extra: &[&str]) -> BTreeSet<String> {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(extra);
    let o = nix_build_output(&all);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    log.lines()
        .filter_map(|l| l.split_once("packing ").and_then(|(_, r)| r.split(" into ").nth(1)).and_then(|r| r.split(' ').next()).map(str::to_owned))
        .collect()
}

#[test]
fn after_one_package_changes_only_layers_holding_changed_paths_rebuild() {
    if !have_nix("after_one_package_changes_only_layers_holding_changed_paths_rebuild") {
        return;
    }
    let _g = lock();
    let pkgs = r#"["hello", "oddities", "xorg.xev", "haskellPackages.stylish-haskell"]"#;
    // A version never built before, so that the new layers really are new.
    let new_version = format!(r#"greetingVersion = "2.0-{}";"#, stamp());
    build("update", pkgs, r#"greetingVersion = "1.0";"#, &[]);
    let before = layers_of(pkgs, r#"greetingVersion = "1.0";"#);
    let after = layers_of(pkgs, &new_version);
    let old_paths: BTreeSet<&String> = before.iter().flat_map(|(_, p)| p).collect();
    let old_outs: BTreeSet<&String> = before.iter().map(|(o, _)| o).collect();
    let mut expect_rebuilt = BTreeSet::new();
    for (out, paths) in &after {
        let changed = paths.iter().any(|p| !old_paths.contains(p));
        if changed {
            expect_rebuilt.insert(out.clone());
        } else {
            assert!(old_outs.contains(out), "a layer with no changed path must be the old one: {paths:?}");
        }
    }
    assert!(!expect_rebuilt.is_empty() && expect_rebuilt.len() < after.len(), "{after:?}");
    let rebuilt = packed_layers(&image_args("update", pkgs, &new_version), &[]);
    assert_eq!(rebuilt, expect_rebuilt, "exactly the layers holding changed paths were packed");
}

#[test]
fn rebuilds_are_byte_identical_with_and_without_the_sandbox() {
    if !have_nix("rebuilds_are_byte_identical_with_and_without_the_sandbox") {
        return;
    }
    let _g = lock();
    // Default images, each compression, and the content arguments (no time of day anywhere).
    let contents = r#"users.app = { uid = 1000; }; dirs = [ { path = "/data"; user = "app"; } ]; labels.a = "b"; perms = [ { path = (import ./examples/pkgs.nix { }).hello; regex = "bin/.*"; mode = "0700"; } ];"#;
    for more in ["", r#"compression = "zstd";"#, r#"compression = "none";"#, contents] {
        rebuilds_are_byte_identical(more);
    }
}

/// The image of `more` (arguments of build-image.nix) rebuilt by Nix, derivation by derivation,
/// with and without the sandbox, and its own outputs deleted and built again.
fn rebuilds_are_byte_identical(more: &str) {
    let pkgs = r#"["hello", "oddities", "busybox"]"#;
    let expr = image_expr_with(pkgs, "", more);
    let out = nix_build(&["--expr", &expr]);
    let first = fs::read(out.trim()).unwrap();
    // Nix itself rebuilds every derivation of the image (grouping, each layer, the customisation
    // layer, the manifest, the layouts, the stream, the SBOMs) and fails if any output differs by
    // one byte.
    let oci = if more.contains("zstd") { " i.ociLayout.drvPath" } else { "" };
    let drvs: Vec<String> = serde_json::from_value(eval_json(&format!(
        "let i = {expr}; in [ i.drvPath i.grouping.drvPath i.customisationLayer.drvPath i.layout.drvPath i.stream.drvPath i.sbom.drvPath{oci} ] ++ map (l: l.drvPath) i.layers"
    )))
    .unwrap();
    let oci = if more.contains("zstd") { " i.ociLayout" } else { "" };
    nix_build(&["--expr", &format!("let i = {expr}; in [ i i.layout i.stream i.sbom{oci} ]")]);
    for sandbox in ["false", "true"] {
        let o = Command::new("nix-store")
            .args(["--realise", "--check", "--option", "substituters", "", "--option", "sandbox", sandbox, "--option", "sandbox-fallback", "false"])
            .args(&drvs)
            .output()
            .unwrap();
        assert!(o.status.success(), "{more}: a rebuild (sandbox {sandbox}) differs or failed:\n{}", String::from_utf8_lossy(&o.stderr));
    }
    // And the image's own outputs deleted and built again, in the sandbox, are the same bytes.
    let oci_out = if more.contains("zstd") { " i.ociLayout.outPath" } else { "" };
    let mine: Vec<String> = serde_json::from_value(eval_json(&format!("let i = {expr}; in [ i.layout.outPath i.stream.outPath{oci_out} i.out.outPath i.config.outPath ]"))).unwrap();
    let o = Command::new("nix-store").args(["--delete", "--ignore-liveness"]).args(&mine).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(mine.iter().all(|p| !Path::new(p).exists()), "outputs deleted");
    let again = nix_build(&["--option", "sandbox", "true", "--option", "sandbox-fallback", "false", "--expr", &expr]);
    assert_eq!(fs::read(again.trim()).unwrap(), first, "{more}");
}

/// An image built from nothing with two jobs, in the sandbox: every store layer is packed in
/// that build, and a rebuild of each derivation with one job gives the same bytes.
#[test]
fn builds_from_nothing_with_two_jobs_as_with_one() {
    if !have_nix("builds_from_nothing_with_two_jobs_as_with_one") {
        return;
    }
    let _g = lock();
    for (more, compression) in [("", "gzip"), (r#"compression = "zstd";"#, "zstd"), (r#"compression = "none";"#, "none")] {
        let (pkgs, salt) = (r#"["hello", "oddities", "xorg.xev"]"#, format!(r#"salt = "{}";"#, stamp()));
        let layers = layers_of_with(pkgs, &salt, more);
        assert!(layers.len() >= 2, "{layers:?}");
        let sandbox = ["--option", "sandbox", "true", "--option", "sandbox-fallback", "false"];
        let packed = packed_layers(&image_args("t", pkgs, &salt), &[&["--max-jobs", "2", "--argstr", "compression", compression][..], &sandbox].concat());
        let all: BTreeSet<String> = layers.iter().map(|(o, _)| o.clone()).collect();
        assert_eq!(packed, all, "{compression}: every layer was packed in this build");
        let expr = image_expr_with(pkgs, &salt, more);
        let drvs: Vec<String> = serde_json::from_value(eval_json(&format!(
            "let i = {expr}; in [ i.drvPath i.grouping.drvPath i.customisationLayer.drvPath ] ++ map (l: l.drvPath) i.layers"
        )))
        .unwrap();
        let o = Command::new("nix-store")
            .args(["--realise", "--check", "--max-jobs", "1", "--option", "substituters", ""])
            .args(sandbox)
            .args(&drvs)
            .output()
            .unwrap();
        assert!(o.status.success(), "{compression}: a one-job rebuild differs or failed:\n{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn an_empty_image_has_only_the_customisation_layer() {
    if !have_nix("an_empty_image_has_only_the_customisation_layer") {
        return;
    }
    let _g = lock();
    let out = build("empty", "[]", "", &[]);
    let m: ManifestOutput = serde_json::from_slice(&fs::read(&out).unwrap()).unwrap();
    assert_eq!(m.manifest.layers.len(), 1, "only the (empty) customisation layer");
    let top = &m.layer_locations[m.manifest.layers[0].digest.strip_prefix("sha256:").unwrap()];
    assert!(top.path.ends_with("-customisation-layer.tar.gz"), "{}", top.path);
}

#[test]
fn default_nix_and_the_overlay_wire_up_against_a_nixpkgs_stand_in() {
    if !have_nix("default_nix_and_the_overlay") {
        return;
    }
    let _g = lock();
    let standin = stand_in("");
    let args = eval_json(&format!(
        "let d = import ./default.nix {{ pkgs = {standin}; }}; a = d.tools.buildRustPackageArgs; in {{ inherit (a) pname version; lock = toString a.cargoLock.lockFile; src = builtins.attrNames (builtins.readDir a.src); }}"
    ));
    assert_eq!(args["pname"], "nix-image-layers");
    assert_eq!(args["lock"], repo().join("Cargo.lock").display().to_string());
    assert_eq!(args["src"], serde_json::json!(["Cargo.lock", "Cargo.toml", "src"]));
    let via_default = nix_build(&["--expr", &format!("(import ./default.nix {{ pkgs = {standin}; }}).buildImage {{ name = \"d\"; packages = ''[\"hello\"]''; }}")]);
    let via_overlay = nix_build(&[
        "--expr",
        &format!(
            "{}.buildRegistryImage {{ name = \"o\"; packages = ''[\"hello\"]''; }}",
            stand_in("overlays = [ (import ./overlay.nix) ];")
        ),
    ]);
    assert_eq!(via_default, via_overlay, "the same image either way");
    let m: ManifestOutput = serde_json::from_slice(&fs::read(via_default.trim()).unwrap()).unwrap();
    assert!(!m.manifest.layers.is_empty());
    // buildImageIndex: the same index from default.nix and from the overlay.
    let index_default = nix_build(&["--expr", &format!("let d = import ./default.nix {{ pkgs = {standin}; }}; in d.buildImageIndex {{ name = \"i\"; images = [ (d.buildImage {{ name = \"d\"; packages = ''[\"hello\"]''; }}) ]; }}")]);
    let index_overlay = nix_build(&["--expr", &format!("let p = {}; in p.buildImageIndex {{ name = \"i\"; images = [ (p.buildRegistryImage {{ name = \"d\"; packages = ''[\"hello\"]''; }}) ]; }}", stand_in("overlays = [ (import ./overlay.nix) ];"))]);
    assert_eq!(index_default, index_overlay);
    let tools = nix_build(&["--expr", &format!("{}.nix-image-layers", stand_in("overlays = [ (import ./overlay.nix) ];"))]);
    assert!(Path::new(tools.trim()).join("bin/layer-hash").exists());
}

#[test]
fn the_flake_exposes_packages_overlay_and_lib() {
    if !have_nix("the_flake_exposes_packages_overlay_and_lib") || !common::have_tool("nix", "the_flake") || !common::have_tool("git", "the_flake") {
        return;
    }
    let _g = lock();
    // flake.lock is committed and matches flake.nix's inputs: locking again, offline and without
    // writing, has nothing to fetch (a lock that no longer matched would need the network).
    let o = Command::new("nix")
        .args(["--extra-experimental-features", "nix-command flakes", "flake", "lock", "--no-update-lock-file", "--offline"])
        .arg(format!("path:{}", repo().display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "flake.lock does not match flake.nix: {}", String::from_utf8_lossy(&o.stderr));
    // The stand-in as a flake: pure evaluation sees only its own directory, so the package set,
    // busybox and the prebuilt programs are copied into it.
    let d = tempfile::tempdir().unwrap();
    let standin = d.path().join("nixpkgs");
    fs::create_dir_all(standin.join("busybox")).unwrap();
    fs::create_dir_all(standin.join("prebuilt/bin")).unwrap();
    for f in ["default.nix", "flake.nix"] {
        fs::copy(repo().join("tests/nix/stand-in-nixpkgs").join(f), standin.join(f)).unwrap();
    }
    fs::copy(repo().join("examples/pkgs.nix"), standin.join("pkgs.nix")).unwrap();
    fs::copy("/usr/bin/busybox", standin.join("busybox/busybox")).unwrap();
    for b in ["group-layers", "layer-hash"] {
        fs::copy(static_tools().join("bin").join(b), standin.join("prebuilt/bin").join(b)).unwrap();
    }
    let consumer = d.path().join("consumer");
    fs::create_dir_all(&consumer).unwrap();
    fs::write(
        consumer.join("flake.nix"),
        format!(
            r#"{{
  inputs.nixpkgs.url = "path:{}";
  inputs.layers.url = "git+file://{}";
  inputs.layers.inputs.nixpkgs.follows = "nixpkgs";
  outputs = {{ self, nixpkgs, layers }}: let system = "x86_64-linux"; pkgs = nixpkgs.legacyPackages.${{system}}; in {{
    packages.${{system}} = {{
      tools = layers.packages.${{system}}.default;
      image = layers.lib.buildImage {{ inherit pkgs; name = "flaky"; packages = ''["hello"]''; }};
      viaOverlay = (import nixpkgs {{ inherit system; overlays = [ layers.overlays.default ]; }}).buildRegistryImage {{ name = "ov"; contents = [ pkgs.hello ]; }};
      index = layers.lib.buildImageIndex {{ inherit pkgs; name = "flaky"; images = [ self.packages.${{system}}.image ]; }};
    }};
  }};
}}"#,
            standin.display(),
            repo().display()
        ),
    )
    .unwrap();
    let o = Command::new("nix")
        .args(["--extra-experimental-features", "nix-command flakes", "build", "--option", "substituters", "", "--no-write-lock-file", "--no-link", "--json"])
        .args([".#tools", ".#image", ".#viaOverlay", ".#index"])
        .current_dir(&consumer)
        .output()
        .unwrap();
    assert!(o.status.success(), "nix build: {}", String::from_utf8_lossy(&o.stderr));
    let built: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let outs: Vec<String> = built.as_array().unwrap().iter().map(|b| b["outputs"]["out"].as_str().unwrap().to_owned()).collect();
    assert_eq!(outs.len(), 4);
    let (index, outs): (Vec<&String>, Vec<&String>) = outs.iter().partition(|o| o.ends_with("-flaky-index.json"));
    let listed: serde_json::Value = serde_json::from_slice(&fs::read(index[0]).unwrap()).unwrap();
    assert_eq!(listed["manifests"][0]["platform"]["architecture"], "amd64", "lib.buildImageIndex: {listed}");
    let (tools, images): (Vec<&String>, Vec<&String>) = outs.into_iter().partition(|o| o.ends_with("-nix-image-layers-0.1.0"));
    assert!(Path::new(tools[0]).join("bin/group-layers").exists());
    assert_eq!(images.len(), 2);
    for img in &images {
        let m: ManifestOutput = serde_json::from_slice(&fs::read(img).unwrap()).unwrap();
        assert!(!m.manifest.layers.is_empty());
    }
}

/// Each bad argument of build-image.nix is an evaluation error that names the argument and what
/// is allowed, and nothing is built first (not even the grouping, the one import-from-derivation).
#[test]
fn bad_arguments_are_evaluation_errors_naming_the_argument_and_build_nothing() {
    if !have_nix("bad_arguments_are_evaluation_errors") {
        return;
    }
    let _g = lock();
    let tools = static_tools();
    // (arguments as Nix, the argument named, a word of what is allowed)
    let strategies: Vec<&str> = nix_image_layers::layering::Strategy::ALL.iter().map(|s| s.name()).collect();
    let known = strategies.join(", ");
    let cases: Vec<(&str, &str, &str)> = vec![
        (r#"name = "t"; packages = "not json";"#, "packages", "JSON list"),
        (r#"name = "t"; packages = ''["hello" "busybox"]'';"#, "packages", "JSON list"),
        (r#"name = "t"; packages = [ 1 ];"#, "packages", "list of strings"),
        (r#"name = "Bad/Name:x";"#, "name", "lower-case"),
        (r#"name = "t"; tag = "bad tag!";"#, "tag", "128"),
        (r#"name = "t"; maxLayers = 1;"#, "maxLayers", "2 to 125"),
        (r#"name = "t"; maxLayers = 300;"#, "maxLayers", "2 to 125"),
        (r#"name = "t"; popularity = ./examples/pkgs.nix; popularityUrl = "http://127.0.0.1/p.json";"#, "popularity", "one of the two"),
        (r#"name = "t"; strategy = "bogus";"#, "strategy", &known),
        (r#"name = "t"; imageConfig = [ ];"#, "imageConfig", "attribute set"),
        (r#"name = "t"; compression = "xz";"#, "compression", "none, gzip, zstd"),
        (r#"name = "t"; format = "v1";"#, "format", "docker, oci"),
        (r#"name = "t"; format = "docker"; compression = "zstd";"#, "format", "no media type for zstd"),
    ];
    for (args, arg, allowed) in cases {
        let expr = format!(
            "import ./build-image.nix ({{ pkgs = import ./examples/pkgs.nix {{ }}; tools = {}; packages = ''[\"hello\"]''; }} // {{ {args} }})",
            tools.display()
        );
        let o = Command::new("nix-build")
            .args(["--option", "substituters", "", "--no-out-link", "--expr", &expr])
            .current_dir(repo())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args}: accepted");
        assert!(err.contains(&format!("argument `{arg}`")) && err.contains(allowed), "{args}: {err}");
        assert!(!err.contains("building '"), "{args}: built something before the error: {err}");
    }
    // The good forms of the same arguments are accepted: a Nix list for `packages`, the largest
    // maxLayers, a tag of every allowed kind of character.
    let ok = eval_json(&format!(
        "(import ./build-image.nix {{ pkgs = import ./examples/pkgs.nix {{ }}; tools = {}; name = \"team/hello-world.v2\"; tag = \"v1.2_3-x\"; packages = [ \"hello\" ]; maxLayers = 125; strategy = \"nixery\"; }}).imageName",
        tools.display()
    ));
    assert_eq!(ok, "hello-world.v2");
}

/// Names whose value throws in real nixpkgs (a removed alias, a package set of another platform,
/// an unfree package refused by the meta check) and a plain string attribute (`system`) are
/// `not_found`, all of them, instead of aborting the evaluation or landing in the image; the
/// other names are unaffected. The stand-in nixpkgs has one of each.
#[test]
fn names_that_throw_or_are_plain_strings_are_not_found_and_abort_nothing() {
    if !have_nix("names_that_throw_or_are_plain_strings") {
        return;
    }
    let _g = lock();
    let standin = stand_in("");
    let image = |packages: &str| {
        format!("import ./build-image.nix {{ pkgs = {standin}; tools = {}; name = \"t\"; packages = ''{packages}''; }}", static_tools().display())
    };
    let bad = r#"["hello", "atom", "system", "unfreeTool", "pkgsi686Linux.hello", "nosuch"]"#;
    let out = nix_build(&["--expr", &image(bad)]);
    let result: serde_json::Value = serde_json::from_str(&fs::read_to_string(out.trim()).unwrap()).unwrap();
    assert_eq!(
        result,
        serde_json::json!({"error": "not_found", "pkgs": ["atom", "system", "unfreeTool", "pkgsi686Linux.hello", "nosuch"]})
    );
    // The good name alone still gives an image.
    let ok = eval_json(&format!("({}).imageName", image(r#"["hello"]"#)));
    assert_eq!(ok, "t");
}

/// A cross package set (host aarch64-linux, built here): the programs are built with its
/// `buildPackages`, so the builders run on this machine, and the image's config names the host
/// architecture; through default.nix and through the overlay. With the host set's rustPlatform
/// the programs would be aarch64 derivations this machine cannot build.
#[test]
fn cross_package_sets_build_the_programs_for_this_machine_and_the_image_for_the_host() {
    if !have_nix("cross_package_sets_build_the_programs_for_this_machine") {
        return;
    }
    let _g = lock();
    let cross = |overlays: &str| stand_in(&format!("crossSystem = \"aarch64-linux\"; overlays = [ {overlays} ];"));
    let tools = eval_json(&format!(
        "let t = (import ./default.nix {{ pkgs = {}; }}).tools; in {{ inherit (t) system; here = builtins.currentSystem; }}",
        cross("")
    ));
    assert_eq!(tools["system"], tools["here"], "the programs are built for the build machine");
    let via_default = format!("((import ./default.nix {{ pkgs = {}; }}).buildImage {{ name = \"cross\"; packages = ''[\"hello\"]''; }}).config", cross(""));
    let via_overlay = format!("(({}).buildRegistryImage {{ name = \"cross\"; packages = ''[\"hello\"]''; }}).config", cross("(import ./overlay.nix)"));
    for expr in [via_default, via_overlay] {
        let out = nix_build(&["--expr", &expr]);
        let cfg: ImageConfig = serde_json::from_slice(&fs::read(out.trim()).unwrap()).unwrap();
        assert_eq!(cfg.architecture, "arm64", "{expr}");
    }
}

/// Cargo.toml says which rustc the programs need, and it is the truth: no dependency needs a newer
/// one (cargo metadata), and a rustPlatform older than that refuses to build them with a message
/// that says so, while one of that version builds them.
#[test]
fn the_programs_declare_the_rustc_they_need() {
    let o = Command::new("cargo").args(["metadata", "--format-version", "1", "--offline", "--locked"]).current_dir(repo()).output().unwrap();
    assert!(o.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&o.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let version = |v: &str| v.split('.').map(|p| p.parse::<u32>().unwrap()).collect::<Vec<_>>();
    let ours = meta["packages"].as_array().unwrap().iter().find(|p| p["name"] == "nix-image-layers").unwrap();
    let declared = ours["rust_version"].as_str().expect("Cargo.toml declares rust-version");
    // The packages the programs are built from: the root's normal dependencies, transitively.
    let nodes: BTreeMap<&str, &serde_json::Value> =
        meta["resolve"]["nodes"].as_array().unwrap().iter().map(|n| (n["id"].as_str().unwrap(), n)).collect();
    let (mut seen, mut stack) = (BTreeSet::new(), vec![meta["resolve"]["root"].as_str().unwrap()]);
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            for d in nodes[id]["deps"].as_array().unwrap() {
                if d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null() || k["kind"] == "build") {
                    stack.push(d["pkg"].as_str().unwrap());
                }
            }
        }
    }
    for p in meta["packages"].as_array().unwrap().iter().filter(|p| seen.contains(p["id"].as_str().unwrap())) {
        if let Some(needed) = p["rust_version"].as_str() {
            assert!(version(needed) <= version(declared), "{} {} needs rustc {needed}, Cargo.toml says {declared}", p["name"], p["version"]);
        }
    }
    if !have_nix("the_programs_declare_the_rustc_they_need") {
        return;
    }
    let _g = lock();
    let tools = |rustc: &str| format!("(import ./default.nix {{ pkgs = {}; }}).tools.drvPath", stand_in(&format!("rustcVersion = \"{rustc}\";")));
    let older = format!("{}.{}.0", version(declared)[0], version(declared)[1] - 1);
    let o = Command::new("nix-instantiate").args(["--eval", "--read-write-mode", "--expr", &tools(&older)]).current_dir(repo()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains(&format!("requires rustc {declared}")), "rustc {older}: {err}");
    let o = Command::new("nix-instantiate").args(["--eval", "--read-write-mode", "--expr", &tools(&format!("{declared}.0"))]).current_dir(repo()).output().unwrap();
    assert!(o.status.success(), "rustc {declared}.0: {}", String::from_utf8_lossy(&o.stderr));
}

/// The derivations of an image: each store layer's (with the store paths it packs) and the
/// customisation layer's.
fn layer_drvs(expr: &str) -> (Vec<(String, Vec<String>)>, String) {
    let v = eval_json(&format!(
        "let i = {expr}; in {{ store = map (l: {{ drv = l.drvPath; paths = l.drvAttrs.paths; }}) i.layers; custom = i.customisationLayer.drvPath; }}"
    ));
    let store = v["store"].as_array().unwrap().iter().map(|l| (l["drv"].as_str().unwrap().to_string(), serde_json::from_value(l["paths"].clone()).unwrap())).collect();
    (store, v["custom"].as_str().unwrap().to_string())
}

/// A store path that only `imageConfig` names is in the image (its layers hold its closure) but
/// not linked at `/`; and each content argument changes only the layers it must: a user, a group
/// or a directory only the customisation layer, a `perms` entry only the layer holding its path.
#[test]
fn content_arguments_change_only_the_layers_they_must() {
    if !have_nix("content_arguments_change_only_the_layers_they_must") {
        return;
    }
    let _g = lock();
    let tools = static_tools();
    let image = |more: &str| {
        format!(
            "(let pkgs = import ./examples/pkgs.nix {{ }}; in import ./build-image.nix {{ inherit pkgs; tools = {}; name = \"t\"; packages = ''[\"busybox\"]''; imageConfig.Cmd = [ \"${{pkgs.hello}}/bin/hello\" ]; {more} }})",
            tools.display()
        )
    };
    let hello = common::contents::hello_path();
    let (base, base_custom) = layer_drvs(&image(""));
    let packed: BTreeSet<&String> = base.iter().flat_map(|(_, p)| p).collect();
    assert!(packed.contains(&hello), "hello, named only by imageConfig, has a layer: {packed:?}");
    // Not linked at /: the customisation layer links busybox's files only.
    let out = nix_build(&["--expr", &format!("{}.customisationLayer", image(""))]).trim().to_string();
    let listing = String::from_utf8(run(Command::new("sh").arg("-c").arg(format!("gzip -dc {out} | tar -tvf -"))).stdout).unwrap();
    assert!(listing.contains("bin/busybox -> ") && !listing.contains("hello"), "{listing}");
    assert!(listing.contains("drwxrwxrwt 0/0") && listing.contains(" tmp/"), "/tmp, mode 1777, by default: {listing}");

    let changed = |more: &str| {
        let (store, custom) = layer_drvs(&image(more));
        let new: Vec<(String, Vec<String>)> = store.into_iter().filter(|l| !base.contains(l)).collect();
        (new, custom != base_custom)
    };
    for more in ["users.app = { uid = 1000; };", "groups.staff = { gid = 50; };", r#"dirs = [ { path = "/data"; } ];"#, "tmp = false;"] {
        let (new_store, custom) = changed(more);
        eprintln!("{more}: {} store layer derivations changed, customisation layer changed: {custom}", new_store.len());
        assert!(new_store.is_empty() && custom, "{more}: only the customisation layer changes ({new_store:?})");
    }
    let (new_store, custom) = changed(&format!(r#"perms = [ {{ path = "{hello}"; regex = "bin/.*"; mode = "0700"; }} ];"#));
    eprintln!("perms on hello: changed store layer derivations {:?}, customisation layer changed: {custom}", new_store.iter().map(|(d, p)| (d, p)).collect::<Vec<_>>());
    assert_eq!(new_store.len(), 1, "one layer changes: {new_store:?}");
    assert!(new_store[0].1.contains(&hello) && !custom, "the layer holding hello, nothing else");
    // That layer really has the owner and mode.
    let img = nix_build(&["--expr", &image(&format!(r#"perms = [ {{ path = "{hello}"; regex = "bin/.*"; mode = "0700"; uid = 7; }} ];"#))]).trim().to_string();
    let m: ManifestOutput = serde_json::from_slice(&fs::read(&img).unwrap()).unwrap();
    let listings: Vec<String> = m.manifest.layers.iter().map(|l| {
        let p = &m.layer_locations[l.digest.trim_start_matches("sha256:")].path;
        String::from_utf8(run(Command::new("sh").arg("-c").arg(format!("gzip -dc {p} | tar -tvf -"))).stdout).unwrap()
    }).collect();
    let line = listings.iter().flat_map(|l| l.lines()).find(|l| l.ends_with(&format!("{}/bin/hello", &hello[1..]))).unwrap().to_string();
    assert!(line.starts_with("-rwx------ 7/0 "), "{line}");
    let doc = listings.iter().flat_map(|l| l.lines()).find(|l| l.ends_with("share/doc/hello/README")).unwrap().to_string();
    assert!(doc.starts_with("-r--r--r-- 0/0 "), "outside the regex, as in the store: {doc}");
}

/// Every clash and bad value of the content arguments is an evaluation error naming the argument
/// (and, for a clash, both sides); what only the build can see (a directory over a symlink of
/// `contents`, a `perms` regex that matches nothing) fails the build with both named.
#[test]
fn content_argument_clashes_are_errors_naming_both_sides() {
    if !have_nix("content_argument_clashes_are_errors_naming_both_sides") {
        return;
    }
    let _g = lock();
    let tools = static_tools();
    let hello = common::contents::hello_path();
    let not_in_image = format!(r#"perms = [ {{ path = "{hello}"; mode = "0700"; }} ]; packages = ''["busybox"]'';"#);
    let subpath = format!(r#"perms = [ {{ path = "{hello}/bin"; mode = "0700"; }} ];"#);
    // (arguments, fragments the error must hold)
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (r#"imageConfig.User = "ghost";"#, vec!["argument `imageConfig`", "\"ghost\"", "not declared in `users`"]),
        (r#"users.app = { uid = 1000; }; imageConfig.User = "app:ghosts";"#, vec!["argument `imageConfig`", "group \"ghosts\""]),
        (r#"users = { a = { uid = 1000; }; b = { uid = 1000; }; };"#, vec!["argument `users`", "a and b both have uid 1000"]),
        (r#"users.app = { uid = 1000; }; groups.other = { gid = 1000; }; groups.third = { gid = 1000; };"#, vec!["argument `groups`", "other and third both have gid 1000"]),
        (r#"users.app = { uid = 1000; }; groups.app = { gid = 2000; };"#, vec!["user app has gid 1000, but group app has gid 2000"]),
        (r#"users.app = { uid = 1000; }; groups.staff = { gid = 50; members = [ "bob" ]; };"#, vec!["argument `groups`", "member \"bob\""]),
        (r#"users.app = { uid = "x"; };"#, vec!["argument `users`", "needs `uid`"]),
        (r#"users.root = { uid = 5; };"#, vec!["argument `users`", "root must have uid 0"]),
        (r#"users.App = { uid = 5; };"#, vec!["argument `users`", "not a user name"]),
        (r#"dirs = [ { path = "/data"; user = "nobody"; } ];"#, vec!["argument `dirs`", "user \"nobody\" is not declared"]),
        (r#"dirs = [ { path = "data"; } ];"#, vec!["argument `dirs`", "absolute path"]),
        (r#"dirs = [ { path = "/tmp"; mode = "0700"; } ];"#, vec!["/tmp is declared twice"]),
        (r#"dirs = [ { path = "/x"; mode = "755x"; } ];"#, vec!["argument `dirs`", "octal"]),
        (r#"tmp = "yes";"#, vec!["argument `tmp`"]),
        (&not_in_image, vec!["argument `perms`", &hello, "not in the image"]),
        (&subpath, vec!["argument `perms`", "not a path inside one"]),
        (r#"perms = [ { path = "/nix/store/x"; } ];"#, vec!["argument `perms`", "sets nothing"]),
        (r#"created = "yesterday";"#, vec!["argument `created`", "RFC 3339"]),
        (r#"created = "2024-13-01T00:00:00Z";"#, vec!["argument `created`"]),
        (r#"labels = { a = 1; };"#, vec!["argument `labels`", "strings"]),
        (r#"labels = { a = "b"; }; imageConfig.Labels = { c = "d"; };"#, vec!["argument `labels`", "imageConfig.Labels"]),
        (r#"annotations = { a = "b"; };"#, vec!["argument `annotations`", "format = \"oci\""]),
    ];
    let build = |args: &str| {
        let expr = format!(
            "import ./build-image.nix ({{ pkgs = import ./examples/pkgs.nix {{ }}; tools = {}; name = \"t\"; packages = ''[\"hello\"]''; }} // {{ {args} }})",
            tools.display()
        );
        Command::new("nix-build").args(["--option", "substituters", "", "--no-out-link", "--expr", &expr]).current_dir(repo()).output().unwrap()
    };
    for (args, fragments) in &cases {
        let o = build(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args}: accepted");
        for f in fragments {
            assert!(err.contains(f), "{args}: the error lacks {f:?}:\n{err}");
        }
        assert!(!err.contains("layer.tar"), "{args}: a layer was built before the error:\n{err}");
    }
    // Only the build sees the contents' files: a declared directory over a package's symlink
    // (hello's bin/hello is linked at /bin/hello), a perms regex that matches nothing.
    for (args, fragments) in [
        (r#"dirs = [ { path = "/bin/hello"; } ];"#.to_string(), vec!["dirs entry /bin/hello", "also a symlink to", "-hello-2.12/bin/hello"]),
        (format!(r#"perms = [ {{ path = "{hello}"; regex = "sbin/.*"; mode = "0700"; }} ];"#), vec!["perms entry for", "regex `sbin/.*`", "matched no entry"]),
    ] {
        let o = build(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args}: accepted");
        for f in fragments {
            assert!(err.contains(f), "{args}: the error lacks {f:?}:\n{err}");
        }
    }
}

/// `created`: the default is the epoch's first second, in the config and its history; a given
/// time lands in the config and, in OCI manifests, in `org.opencontainers.image.created`; "now"
/// is the time of evaluation.
#[test]
fn created_reaches_the_config_the_history_and_the_oci_annotation() {
    if !have_nix("created_reaches_the_config_the_history_and_the_oci_annotation") {
        return;
    }
    let _g = lock();
    let config_of = |more: &str| -> (ManifestOutput, serde_json::Value) {
        let out = nix_build(&["--expr", &image_expr_with(r#"["hello"]"#, "", more)]).trim().to_string();
        let m: ManifestOutput = serde_json::from_slice(&fs::read(&out).unwrap()).unwrap();
        let cfg = serde_json::from_slice(&fs::read(&m.layer_locations[m.manifest.config.digest.trim_start_matches("sha256:")].path).unwrap()).unwrap();
        (m, cfg)
    };
    let (m, cfg) = config_of("");
    assert_eq!(cfg["created"], "1970-01-01T00:00:01Z");
    assert!(cfg["history"].as_array().unwrap().iter().all(|h| h["created"] == "1970-01-01T00:00:01Z"));
    assert!(m.manifest.annotations.is_empty(), "Docker's format has no annotations");
    let (m, cfg) = config_of(r#"created = "2024-05-01T12:00:00+02:00"; format = "oci"; annotations."org.example.a" = "b";"#);
    assert_eq!(cfg["created"], "2024-05-01T12:00:00+02:00");
    assert_eq!(m.manifest.annotations["org.opencontainers.image.created"], "2024-05-01T12:00:00+02:00");
    assert_eq!(m.manifest.annotations["org.example.a"], "b");
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (_, cfg) = config_of(r#"created = "now";"#);
    let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let now = cfg["created"].as_str().unwrap().to_string();
    let within = (before..=after).any(|s| nix_image_layers::created::from_epoch(s) == now);
    assert!(within, "{now} is not between {before} and {after}");
}
