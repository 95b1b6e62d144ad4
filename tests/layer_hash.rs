//! `layer-hash`: tarball fidelity (checked by GNU tar), determinism, hashes against the system's
//! tools, the manifest, builder mode, and every error case.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix_image_layers::manifest::{BlobRecord, ImageConfig, ManifestOutput};

const BIN: &str = env!("CARGO_BIN_EXE_layer-hash");

fn run(dir: &Path, args: &[&OsStr]) -> Output {
    Command::new(BIN).args(args).current_dir(dir).env_remove("NIX_ATTRS_JSON_FILE").env_remove("NIX_STORE_DIR").output().unwrap()
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Builds the fixture store under `store`; `reverse` creates everything in the opposite order,
/// and `variant` changes owners, times and the hard-link layout, none of which may show.
fn fixture(store: &Path, reverse: bool, variant: bool) -> Vec<PathBuf> {
    fs::create_dir_all(store).unwrap();
    let a = store.join("0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-fixture-1.0");
    let b = store.join("1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-plain-file");
    let c = store.join("2ccccccccccccccccccccccccccccccc-top-symlink");
    let long_component = "n".repeat(200);
    let mut steps: Vec<Box<dyn Fn()>> = vec![
        Box::new({ let a = a.clone(); move || fs::create_dir_all(a.join("bin")).unwrap() }),
        Box::new({ let a = a.clone(); move || fs::create_dir_all(a.join("share/empty-dir")).unwrap() }),
        Box::new({ let a = a.clone(); let l = long_component.clone(); move || fs::create_dir_all(a.join(format!("share/{l}/{l}"))).unwrap() }),
        Box::new({ let a = a.clone(); move || fs::create_dir_all(a.join("lib")).unwrap() }),
    ];
    let files: Vec<(PathBuf, Vec<u8>, u32)> = vec![
        (a.join("bin/tool"), b"#!/bin/sh\necho tool\n".to_vec(), 0o555),
        (a.join("share/empty-file"), Vec::new(), 0o444),
        (a.join(format!("share/{long_component}/{long_component}/deep-file-beyond-255-bytes")), b"deep".to_vec(), 0o444),
        (a.join(format!("share/{}", "f".repeat(150))), b"long name".to_vec(), 0o644),
        (a.join(OsStr::from_bytes(b"share/latin1-\xe9t\xe9")), b"not utf-8".to_vec(), 0o444),
        (a.join(OsStr::from_bytes(&[b"share/long-latin1-".as_slice(), &[0xe9u8; 130]].concat())), b"long, not utf-8".to_vec(), 0o444),
        (a.join("lib/large.bin"), (0..3_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect(), 0o444),
        (b.clone(), b"a store path that is a file\n".to_vec(), 0o444),
    ];
    for (p, data, mode) in files.iter().cloned() {
        steps.push(Box::new(move || {
            fs::write(&p, &data).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        }));
    }
    let a2 = a.clone();
    steps.push(Box::new(move || {
        symlink("../share", a2.join("bin/share-dir-link")).unwrap();
        symlink("/nonexistent/dangling/target", a2.join("bin/dangling")).unwrap();
        symlink(format!("../share/{}", "t".repeat(120)), a2.join("bin/long-target")).unwrap();
    }));
    let (a3, c2) = (a.clone(), c.clone());
    steps.push(Box::new(move || symlink(&a3, &c2).unwrap()));
    if reverse {
        // Directories must exist first; reverse only the order of everything inside them.
        let dirs: Vec<_> = steps.drain(..4).collect();
        steps.reverse();
        for (i, d) in dirs.into_iter().enumerate() {
            steps.insert(i, d);
        }
    }
    for s in steps {
        s();
    }
    // Hard links: the same content twice, linked or not depending on the variant.
    let tool = a.join("bin/tool");
    if variant {
        fs::hard_link(&tool, a.join("lib/tool-hardlink")).unwrap();
        // Other owners need root; without it the variant has the test's own owner, said loudly.
        if common::is_root() {
            let st = Command::new("chown").args(["-R", "-h", "12345:54321"]).arg(&a).status().unwrap();
            assert!(st.success(), "chown in the fixture failed");
            assert_eq!(fs::symlink_metadata(a.join("bin/dangling")).unwrap().uid(), 12345, "chown -h reached the symlinks");
        } else {
            common::skip("fixture's owner variation", "chown to another user needs root");
        }
        let st = Command::new("touch").args(["-h", "-d", "2001-02-03 04:05:06"]).arg(&tool).arg(a.join("bin")).status().unwrap();
        assert!(st.success(), "touch in the fixture failed");
        assert_eq!(fs::metadata(&tool).unwrap().mtime(), fs::metadata(a.join("bin")).unwrap().mtime());
    } else {
        fs::copy(&tool, a.join("lib/tool-hardlink")).unwrap();
        fs::set_permissions(a.join("lib/tool-hardlink"), fs::Permissions::from_mode(0o555)).unwrap();
    }
    vec![c, a, b]
}

fn pack(dir: &Path, store: &Path, paths: &[PathBuf], out: &str) -> Output {
    pack_as(dir, store, paths, out, "gzip")
}

/// `layer-hash layer` with `--compression compression`.
fn pack_as(dir: &Path, store: &Path, paths: &[PathBuf], out: &str, compression: &str) -> Output {
    let mut args: Vec<&OsStr> = vec![os("layer"), os("--compression"), os(compression), os("--store-dir"), store.as_os_str(), os("--out"), os(out)];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    run(dir, &args)
}

use common::{outside_diff_id, COMPRESSIONS};

#[derive(Debug, PartialEq)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

/// Every entry below `root`: relative name -> (kind, permission bits).
fn walk(root: &Path) -> BTreeMap<Vec<u8>, (Kind, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let md = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec();
            let kind = if md.is_dir() {
                stack.push(path.clone());
                Kind::Dir
            } else if md.file_type().is_symlink() {
                Kind::Link(fs::read_link(&path).unwrap())
            } else {
                Kind::File(fs::read(&path).unwrap())
            };
            out.insert(rel, (kind, md.mode() & 0o7777));
        }
    }
    out
}

#[test]
fn gnu_tar_extracts_exactly_the_store() {
    if !common::have_tool("tar", "gnu_tar_extracts_exactly_the_store") {
        return;
    }
    for (compression, _) in COMPRESSIONS {
        if compression == "zstd" && !common::have_tool("zstd", "gnu_tar_extracts_exactly_the_store, zstd") {
            continue;
        }
        gnu_tar_extracts(compression);
    }
}

/// GNU tar (which recognises gzip and zstd by their magic) extracts exactly the store.
fn gnu_tar_extracts(compression: &str) {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("root/nix/store");
    let paths = fixture(&store, false, true);
    let o = pack_as(d.path(), &store, &paths, "layer.tar", compression);
    assert!(o.status.success(), "{}", stderr(&o));
    let x = d.path().join("x");
    fs::create_dir(&x).unwrap();
    let t = Command::new("tar").args(["-xpf", "../layer.tar"]).current_dir(&x).output().unwrap();
    assert!(t.status.success(), "GNU tar: {}", String::from_utf8_lossy(&t.stderr));
    // Inside the store: every entry, its type, permission bits, content and link target.
    let expected = walk(&store);
    let got = walk(&x.join(store.strip_prefix("/").unwrap()));
    let missing: Vec<_> = expected.keys().filter(|k| !got.contains_key(*k)).map(|k| String::from_utf8_lossy(k).into_owned()).collect();
    let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).map(|k| String::from_utf8_lossy(k).into_owned()).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, extra {extra:?}");
    for (k, v) in &expected {
        assert_eq!(&got[k], v, "{}", String::from_utf8_lossy(k));
    }
    assert!(expected.len() > 15, "the fixture is all there");
    // Outside it: only the store directory's ancestors, each a directory of mode 0755.
    let mut dir = x.clone();
    for component in store.strip_prefix("/").unwrap().components() {
        let entries: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(entries, vec![component.as_os_str().to_os_string()], "only the store's ancestors in {}", dir.display());
        dir = dir.join(component);
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o755, "{}", dir.display());
    }
    // The listing shows owners 0/0, the fixed mtime, directories first and names in byte order.
    let list = Command::new("tar").args(["--numeric-owner", "--full-time", "-tvf", "layer.tar"]).current_dir(d.path()).output().unwrap();
    assert!(list.status.success(), "tar -tvf: {}", String::from_utf8_lossy(&list.stderr));
    let list = String::from_utf8_lossy(&list.stdout);
    let ancestors = store.strip_prefix("/").unwrap().components().count();
    assert_eq!(list.lines().count(), ancestors + expected.len(), "one line per entry: the store directory, its ancestors and its contents");
    assert!(list.lines().all(|l| l.contains(" 0/0 ") && l.contains("1970-01-01 00:00:01")), "{list}");
    let names = Command::new("tar").args(["-tf", "layer.tar"]).current_dir(d.path()).output().unwrap();
    assert!(names.status.success(), "tar -tf: {}", String::from_utf8_lossy(&names.stderr));
    let names = names.stdout;
    let names: Vec<&[u8]> = names.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    assert_eq!(names[0], b"tmp/");
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| a.strip_suffix(b"/").unwrap_or(a).split(|&c| c == b'/').cmp(b.strip_suffix(b"/").unwrap_or(b).split(|&c| c == b'/')));
    assert_eq!(names, sorted, "depth-first, each directory before its contents, in byte order");
}

#[test]
fn same_store_same_bytes_whatever_the_disk_layout() {
    let d = tempfile::tempdir().unwrap();
    let (s1, s2) = (d.path().join("one/nix/store"), d.path().join("two/nix/store"));
    let p1 = fixture(&s1, false, false);
    let p2 = fixture(&s2, true, true);
    // Names in a layer include the store directory, so the second tree is moved to where the
    // first was before it is packed.
    let o = pack(d.path(), &s1, &p1, "one.tar");
    assert!(o.status.success(), "{}", stderr(&o));
    fs::rename(d.path().join("one"), d.path().join("one-kept")).unwrap();
    fs::rename(d.path().join("two"), d.path().join("one")).unwrap();
    let p2: Vec<PathBuf> = p2.iter().rev().map(|p| s1.join(p.file_name().unwrap())).collect();
    // The top-level symlink pointed into the second tree's old place: give it the same target.
    let link = s1.join("2ccccccccccccccccccccccccccccccc-top-symlink");
    fs::remove_file(&link).unwrap();
    symlink(s1.join("0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-fixture-1.0"), &link).unwrap();
    let o = pack(d.path(), &s1, &p2, "two.tar");
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (fs::read(d.path().join("one.tar")).unwrap(), fs::read(d.path().join("two.tar")).unwrap());
    assert_eq!(a.len(), b.len());
    assert!(a == b, "layers differ");
    // And the same paths listed twice, or with trailing slashes, change nothing.
    let mut again: Vec<PathBuf> = p2.iter().map(|p| PathBuf::from(format!("{}/", p.display()))).collect();
    again.extend(p2.clone());
    let o = pack(d.path(), &s1, &again, "three.tar");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(fs::read(d.path().join("three.tar")).unwrap() == a);
}

#[test]
fn digests_agree_with_sha256sum_openssl_and_stat() {
    if !common::have_tool("sha256sum", "digests_agree") || !common::have_tool("openssl", "digests_agree") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("nix/store");
    let paths = fixture(&store, false, false);
    let mut diff_ids = Vec::new();
    for (compression, decompress) in COMPRESSIONS {
        if compression == "zstd" && !common::have_tool("zstd", "digests_agree, zstd") {
            continue;
        }
        let o = pack_as(d.path(), &store, &paths, "layer.tar", compression);
        assert!(o.status.success(), "{}", stderr(&o));
        let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let blob = d.path().join("layer.tar");
        let (sha256, md5, size) = common::outside_digests(&blob);
        assert_eq!((printed["sha256"].as_str(), printed["md5"].as_str(), printed["size"].as_u64()), (Some(sha256.as_str()), Some(md5.as_str()), Some(size)), "{compression}");
        let diff_id = outside_diff_id(&blob, decompress);
        if compression == "none" {
            // Nixery (2019)'s three keys, and the blob is the tar stream.
            assert_eq!(printed.as_object().unwrap().len(), 3);
            assert_eq!(diff_id, sha256);
        } else {
            assert_eq!(printed["diffId"].as_str(), Some(diff_id.as_str()), "{compression}");
        }
        diff_ids.push(diff_id);
    }
    assert!(diff_ids.windows(2).all(|w| w[0] == w[1]), "the same tar stream under every compression: {diff_ids:?}");
    let o = pack_as(d.path(), &store, &paths, "layer.tar", "none");
    assert!(o.status.success(), "{}", stderr(&o));
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // `hash` prints the record of Nixery (2019) for existing files.
    let o = run(d.path(), &[os("hash"), os("layer.tar")]);
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with(r#"[{"size":"#), "{text}");
    let recs: Vec<BlobRecord> = serde_json::from_str(&text).unwrap();
    assert_eq!((recs[0].sha256.as_str(), recs[0].path.as_str()), (printed["sha256"].as_str().unwrap(), "layer.tar"));
}

#[test]
fn customisation_layer_is_the_symlink_join_first_package_wins() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("nix/store");
    let (p1, p2) = (store.join("aaa-one"), store.join("bbb-two"));
    fs::create_dir_all(p1.join("bin")).unwrap();
    fs::create_dir_all(p2.join("bin")).unwrap();
    fs::create_dir_all(p2.join("share/man")).unwrap();
    fs::write(p1.join("bin/hello"), "one").unwrap();
    fs::write(p2.join("bin/hello"), "two").unwrap();
    fs::write(p2.join("bin/other"), "two").unwrap();
    fs::write(p2.join("share/man/page"), "man").unwrap();
    symlink("other", p2.join("bin/alias")).unwrap();
    let o = run(d.path(), &[os("customisation"), os("--out"), os("c.tar"), os("--record"), os("c.json"), p1.as_os_str(), p2.as_os_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // bin/{alias,hello,other} and share/man/page; bin, share and share/man; p2's bin/hello left out.
    assert!(stderr(&o).contains("/bin/hello") && stderr(&o).contains("4 symlinks in 3 directories, 1 conflicts"), "{}", stderr(&o));
    let x = d.path().join("x");
    fs::create_dir(&x).unwrap();
    assert!(Command::new("tar").args(["-xf", "../c.tar"]).current_dir(&x).status().unwrap().success());
    let got = walk(&x);
    let names: Vec<String> = got.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
    assert_eq!(names, ["bin", "bin/alias", "bin/hello", "bin/other", "share", "share/man", "share/man/page"]);
    assert_eq!(got[&b"bin/hello"[..]].0, Kind::Link(p1.join("bin/hello")));
    assert_eq!(got[&b"bin/other"[..]].0, Kind::Link(p2.join("bin/other")));
    assert_eq!(got[&b"bin/alias"[..]].0, Kind::Link(PathBuf::from("other")));
    assert_eq!(got[&b"share/man"[..]], (Kind::Dir, 0o755));
    let rec: BlobRecord = serde_json::from_slice(&fs::read(d.path().join("c.json")).unwrap()).unwrap();
    assert_eq!(rec.path, d.path().join("c.tar").display().to_string());
    assert_eq!(rec.size, fs::metadata(d.path().join("c.tar")).unwrap().len());
    // A file cannot be merged into /.
    fs::write(store.join("ccc-file"), "x").unwrap();
    let o = run(d.path(), &[os("customisation"), os("--out"), os("bad.tar"), store.join("ccc-file").as_os_str()]);
    assert!(!o.status.success() && stderr(&o).contains("ccc-file") && stderr(&o).contains("not a directory"));
    assert!(!d.path().join("bad.tar").exists());
}

#[test]
fn manifest_and_config_match_the_files_they_name() {
    let t = "manifest_and_config_match_the_files_they_name";
    if !common::have_tool("sha256sum", t) || !common::have_tool("openssl", t) || !common::have_tool("zstd", t) {
        return;
    }
    // (format, compression, the layers' media type): the media types are those of the specs.
    let docker = "application/vnd.docker.image.rootfs.diff.tar";
    let oci = "application/vnd.oci.image.layer.v1.tar";
    for (format, compression, layer_type) in [
        ("docker", "none", docker.to_string()),
        ("docker", "gzip", format!("{docker}.gzip")),
        ("oci", "none", oci.to_string()),
        ("oci", "gzip", format!("{oci}+gzip")),
        ("oci", "zstd", format!("{oci}+zstd")),
    ] {
        manifest_matches(format, compression, &layer_type);
    }
    // Docker's media types cannot name zstd: refused, naming the way out, and nothing written.
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("nix/store");
    let paths = fixture(&store, false, false);
    let o = run(d.path(), &[os("layer"), os("--compression"), os("zstd"), os("--store-dir"), store.as_os_str(), os("--out"), os("l.tar"), os("--record"), os("l.json"), paths[1].as_os_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(d.path(), &[os("manifest"), os("--out"), os("m.json"), os("--config"), os("c.json"), os("--image-system"), os("x86_64-linux"), os("l.json")]);
    assert!(!o.status.success() && stderr(&o).contains("zstd") && stderr(&o).contains("oci"), "{}", stderr(&o));
    assert!(!d.path().join("m.json").exists() && !d.path().join("c.json").exists());
}

fn manifest_matches(format: &str, compression: &str, layer_type: &str) {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("nix/store");
    let paths = fixture(&store, false, false);
    for (i, p) in paths.iter().enumerate() {
        let (meta, out) = (format!("l{i}.json"), format!("l{i}.tar"));
        let args: Vec<&OsStr> = vec![os("layer"), os("--compression"), os(compression), os("--store-dir"), store.as_os_str(), os("--out"), os(&out), os("--record"), os(&meta), p.as_os_str()];
        let o = run(d.path(), &args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = run(d.path(), &[os("manifest"), os("--format"), os(format), os("--out"), os("manifest-output.json"), os("--config"), os("config.json"), os("--image-system"), os("aarch64-linux"), os("--image-config"), os(r#"{"Cmd":["/bin/tool"]}"#), os("l2.json"), os("l0.json"), os("l1.json")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out: ManifestOutput = serde_json::from_slice(&fs::read(d.path().join("manifest-output.json")).unwrap()).unwrap();
    let cfg: ImageConfig = serde_json::from_slice(&fs::read(d.path().join("config.json")).unwrap()).unwrap();
    let what = format!("{format}, {compression}");
    assert_eq!(cfg.architecture, "arm64");
    assert_eq!(cfg.config["Cmd"][0], "/bin/tool");
    assert_eq!(out.manifest.schema_version, 2);
    let (manifest_type, config_type) = match format {
        "docker" => ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.container.image.v1+json"),
        _ => ("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.config.v1+json"),
    };
    assert_eq!((out.manifest.media_type.as_str(), out.manifest.config.media_type.as_str()), (manifest_type, config_type), "{what}");
    assert_eq!(out.manifest.layers.len(), 3);
    assert!(out.manifest.layers.iter().all(|l| l.media_type == layer_type), "{what}: {:?}", out.manifest.layers);
    // The order given, not re-sorted.
    let l2: BlobRecord = serde_json::from_slice(&fs::read(d.path().join("l2.json")).unwrap()).unwrap();
    assert_eq!(out.manifest.layers[0].digest, format!("sha256:{}", l2.sha256));
    // Every blob, the config included, is located, and its bytes match digest, md5 and size; each
    // layer's diff_id is the sha256 of its blob decompressed by the system's tool.
    assert_eq!(out.layer_locations.len(), 4);
    let decompress = COMPRESSIONS.iter().find(|c| c.0 == compression).unwrap().1;
    let mut diff_ids = Vec::new();
    for desc in out.manifest.layers.iter().chain(std::iter::once(&out.manifest.config)) {
        let hex = desc.digest.strip_prefix("sha256:").unwrap();
        let loc = &out.layer_locations[hex];
        let (sha256, md5, size) = common::outside_digests(Path::new(&loc.path));
        assert_eq!((sha256.as_str(), md5.as_str(), size), (hex, loc.md5.as_str(), desc.size), "{what}: {}", loc.path);
        if desc.media_type == layer_type {
            diff_ids.push(format!("sha256:{}", outside_diff_id(Path::new(&loc.path), decompress)));
        }
    }
    assert_eq!(cfg.rootfs.diff_ids, diff_ids, "{what}");
    let o = run(d.path(), &[os("manifest"), os("--out"), os("m2.json"), os("--config"), os("c2.json"), os("--image-system"), os("mips-linux"), os("l0.json")]);
    assert!(!o.status.success() && stderr(&o).contains("mips-linux"));
    assert!(!d.path().join("m2.json").exists() && !d.path().join("c2.json").exists());
}

#[test]
fn builder_mode_packs_layers_and_writes_the_manifest() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("nix/store");
    let paths = fixture(&store, false, false);
    let attrs = |v: serde_json::Value| fs::write(d.path().join(".attrs.json"), serde_json::to_vec(&v).unwrap()).unwrap();
    let p = |s: &str| d.path().join(s).display().to_string();
    attrs(serde_json::json!({"mode": "layer", "storeDir": store, "paths": paths, "outputs": {"out": p("layer.tar"), "record": p("layer.json")}}));
    let o = run(d.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    attrs(serde_json::json!({"mode": "customisation", "contents": [paths[1]], "outputs": {"out": p("cust.tar"), "record": p("cust.json")}}));
    let o = run(d.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    attrs(serde_json::json!({"mode": "manifest", "layers": [p("layer.json"), p("cust.json")], "imageSystem": "x86_64-linux",
        "outputs": {"out": p("manifest-output.json"), "config": p("config.json")}}));
    let o = run(d.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out: ManifestOutput = serde_json::from_slice(&fs::read(d.path().join("manifest-output.json")).unwrap()).unwrap();
    assert_eq!(out.layer_locations.values().filter(|l| l.path == p("config.json")).count(), 1);
    assert_eq!(out.manifest.layers.len(), 2);
    attrs(serde_json::json!({"mode": "bake", "outputs": {"out": p("x")}}));
    let o = run(d.path(), &[]);
    assert!(!o.status.success() && stderr(&o).contains("bake"));
}

fn no_leftovers(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().contains("out.tar")).collect();
    assert!(left.is_empty(), "output or temp file left behind: {left:?}");
}

#[test]
fn bad_store_contents_fail_naming_the_path_and_leave_nothing() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("nix/store");
    let good = store.join("aaa-good");
    fs::create_dir_all(&good).unwrap();
    fs::write(good.join("f"), "x").unwrap();
    let fifo = store.join("bbb-fifo/pipe");
    fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let sock_dir = store.join("ccc-socket");
    fs::create_dir_all(&sock_dir).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(sock_dir.join("sock")).unwrap();
    let dev_dir = store.join("ddd-device");
    fs::create_dir_all(&dev_dir).unwrap();
    let have_dev = Command::new("mknod").arg(dev_dir.join("null")).args(["c", "1", "3"]).status().map(|s| s.success()).unwrap_or(false);

    let check = |paths: &[&Path], needles: &[&str]| {
        let o = pack(d.path(), &store, &paths.iter().map(|p| p.to_path_buf()).collect::<Vec<_>>(), "out.tar");
        assert!(!o.status.success(), "{paths:?} should fail");
        let err = stderr(&o);
        for n in needles {
            assert!(err.contains(n), "error should mention {n:?}: {err}");
        }
        no_leftovers(d.path());
    };
    check(&[&good, store.join("bbb-fifo").as_path()], &[fifo.to_str().unwrap(), "fifo"]);
    check(&[sock_dir.as_path()], &["sock", "socket"]);
    if have_dev {
        check(&[dev_dir.as_path()], &["null", "character device"]);
    } else {
        common::skip("bad_store_contents_fail_naming_the_path_and_leave_nothing, device-file case", "mknod is not permitted here");
    }
    check(&[store.join("eee-missing").as_path()], &["eee-missing"]);
    check(&[Path::new("/etc/hostname")], &["/etc/hostname", "not a store path"]);
    check(&[good.join("f").as_path()], &["aaa-good/f", "not a store path"]);
    check(&[store.as_path()], &["not a store path"]);
    check(&[store.join(".").as_path()], &["not a store path"]);
    check(&[store.join("..").as_path()], &["not a store path"]);
    check(&[good.join("..").as_path()], &["not a store path"]);
}

/// A file the builder cannot read fails the layer, naming the file, and leaves no output. Root
/// reads everything, so as root (under CI) layer-hash runs as `nobody`, through setpriv.
#[test]
fn unreadable_content_fails_naming_the_file_and_leaves_nothing() {
    let t = "unreadable_content_fails_naming_the_file_and_leaves_nothing";
    let as_nobody = common::is_root();
    if as_nobody && !common::have_tool("setpriv", t) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("nix/store");
    let secret = store.join("fff-secret");
    fs::create_dir_all(&secret).unwrap();
    fs::write(secret.join("readable"), "x").unwrap();
    fs::write(secret.join("s"), "x").unwrap();
    fs::set_permissions(secret.join("s"), fs::Permissions::from_mode(0o000)).unwrap();
    // nobody walks the tree and writes its output into a directory open to all.
    for dir in [d.path(), &d.path().join("nix"), &store, &secret] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let outdir = d.path().join("out");
    fs::create_dir(&outdir).unwrap();
    fs::set_permissions(&outdir, fs::Permissions::from_mode(0o1777)).unwrap();
    let pack_as_user = || {
        let mut cmd = if as_nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
            c
        } else {
            Command::new(BIN)
        };
        cmd.args([os("layer"), os("--store-dir"), store.as_os_str(), os("--out"), outdir.join("out.tar").as_os_str(), secret.as_os_str()])
            .env_remove("NIX_ATTRS_JSON_FILE")
            .output()
            .unwrap()
    };
    let o = pack_as_user();
    assert!(!o.status.success(), "an unreadable file was packed");
    let err = stderr(&o);
    assert!(err.contains("fff-secret/s") && err.contains("ermission denied"), "{err}");
    no_leftovers(&outdir);
    // And the same tree made readable packs, as the same user: the failure was the file's.
    fs::set_permissions(secret.join("s"), fs::Permissions::from_mode(0o444)).unwrap();
    let o = pack_as_user();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_file_that_changes_size_while_read_is_an_error() {
    use nix_image_layers::compress::{Compression, LayerSink};
    use nix_image_layers::tarball::TarWriter;
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("ten");
    fs::write(&f, "0123456789").unwrap();
    for (declared, word, compression) in [(5, "grew", Compression::None), (20, "shrank", Compression::None), (5, "grew", Compression::Gzip), (20, "shrank", Compression::Zstd)] {
        let mut sink = LayerSink::new(compression, None).unwrap();
        let mut w = TarWriter::new(&mut sink, 1, Path::new("out.tar"));
        let e = w.file(b"ten", nix_image_layers::tarball::Meta::root(0o644), declared, &f).unwrap_err().to_string();
        assert!(e.contains(word) && e.contains("ten"), "{e}");
    }
}

#[test]
fn write_errors_fail_loudly() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("nix/store");
    fs::create_dir_all(store.join("aaa-x")).unwrap();
    let o = pack(d.path(), &store, &[store.join("aaa-x")], "no/such/dir/out.tar");
    assert!(!o.status.success() && stderr(&o).contains("cannot write") && stderr(&o).contains("no/such/dir/out.tar"), "{}", stderr(&o));
}

/// Runs layer-hash as a builder in `dir` with `attrs` as its structured attributes.
fn run_builder(dir: &Path, attrs: serde_json::Value) -> Output {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(".attrs.json"), serde_json::to_vec(&attrs).unwrap()).unwrap();
    run(dir, &[])
}

/// Fails, and says each of `needles` on standard error, and leaves none of `outputs`.
fn fails_saying(o: &Output, needles: &[&str], outputs: &[&Path]) {
    let err = stderr(o);
    assert!(!o.status.success(), "accepted; stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "the error should mention {n:?}: {err}");
    }
    for out in outputs {
        assert!(!out.exists(), "{} left behind: {err}", out.display());
    }
}

/// The inputs of the manifest, layout and builder modes that make no sense: each is refused with
/// a message naming the input and the problem, a non-zero exit, and no output.
#[test]
fn bad_records_configs_layouts_and_attributes_fail_naming_them_and_leave_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let store = p.join("nix/store");
    fs::create_dir_all(store.join("aaa-x")).unwrap();
    fs::write(store.join("aaa-x/f"), "x").unwrap();
    let o = run(p, &[os("layer"), os("--store-dir"), store.as_os_str(), os("--out"), os("l.tar"), os("--record"), os("l.json"), store.join("aaa-x").as_os_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (m, c) = (p.join("m.json"), p.join("c.json"));
    let manifest = |records: &[&str], extra: &[&str]| {
        let mut args: Vec<&OsStr> = vec![os("manifest"), os("--out"), os("m.json"), os("--config"), os("c.json"), os("--image-system"), os("x86_64-linux")];
        args.extend(extra.iter().map(|a| os(a)));
        args.extend(records.iter().map(|r| os(r)));
        run(p, &args)
    };

    // A layer of no store paths: refused on the command line and as a builder.
    fails_saying(&run(p, &[os("layer"), os("--out"), os("empty.tar")]), &["PATHS"], &[&p.join("empty.tar")]);
    let b = p.join("builder-empty");
    let o = run_builder(&b, serde_json::json!({"mode": "layer", "paths": [], "outputs": {"out": b.join("out.tar")}}));
    fails_saying(&o, &["no store paths to pack", "`paths`"], &[&b.join("out.tar")]);

    // The image config's `config` must be an object, on the command line and as a builder.
    fails_saying(&manifest(&["l.json"], &["--image-config", "[1]"]), &["--image-config", "JSON object", "[1]"], &[&m, &c]);
    fails_saying(&manifest(&["l.json"], &["--image-config", "{not json"]), &["--image-config", "JSON object"], &[&m, &c]);
    let b = p.join("builder-config");
    let o = run_builder(&b, serde_json::json!({"mode": "manifest", "layers": [p.join("l.json")], "imageSystem": "x86_64-linux",
        "imageConfig": ["Cmd"], "outputs": {"out": b.join("m.json"), "config": b.join("c.json")}}));
    fails_saying(&o, &["imageConfig", "attribute set"], &[&b.join("m.json"), &b.join("c.json")]);

    // Record files: not JSON, JSON of another shape, absent.
    fs::write(p.join("garbage.json"), "{\"size\": 1,").unwrap();
    fs::write(p.join("shape.json"), r#"{"size": 1, "sha256": "ab"}"#).unwrap();
    fails_saying(&manifest(&["l.json", "garbage.json"], &[]), &["garbage.json", "not a layer record"], &[&m, &c]);
    fails_saying(&manifest(&["shape.json"], &[]), &["shape.json", "not a layer record"], &[&m, &c]);
    fails_saying(&manifest(&["absent.json"], &[]), &["absent.json", "cannot read"], &[&m, &c]);

    // Layouts: from a good manifest only, into a directory that does not exist yet, with every
    // blob where the manifest says.
    let o = manifest(&["l.json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let layout = |manifest: &str, out: &str| run(p, &[os("layout"), os("--manifest"), os(manifest), os("--out"), os(out)]);
    let o = layout("m.json", "good");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(p.join("good/manifest.json").is_file());
    let o = layout("m.json", "good");
    assert!(!o.status.success() && stderr(&o).contains("good") && stderr(&o).contains("exists"), "{}", stderr(&o));
    fails_saying(&layout("absent.json", "l1"), &["absent.json", "cannot read"], &[&p.join("l1")]);
    fails_saying(&layout("garbage.json", "l2"), &["garbage.json", "malformed JSON"], &[&p.join("l2")]);
    let out: serde_json::Value = serde_json::from_slice(&fs::read(&m).unwrap()).unwrap();
    let layer_hex = out["manifest"]["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let mut unlocated = out.clone();
    unlocated["layerLocations"].as_object_mut().unwrap().remove(&layer_hex);
    fs::write(p.join("unlocated.json"), unlocated.to_string()).unwrap();
    fails_saying(&layout("unlocated.json", "l3"), &["no layerLocations entry", &layer_hex], &[&p.join("l3")]);
    let mut moved = out.clone();
    moved["layerLocations"][&layer_hex]["path"] = p.join("gone.tar").display().to_string().into();
    fs::write(p.join("moved.json"), moved.to_string()).unwrap();
    fails_saying(&layout("moved.json", "l4"), &["gone.tar", "cannot read"], &[&p.join("l4")]);
    // The OCI layout: the same checks before anything is created.
    let oci = |manifest: &str, out: &str| run(p, &[os("oci-layout"), os("--manifest"), os(manifest), os("--tag"), os("t"), os("--out"), os(out)]);
    let o = oci("m.json", "oci");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(p.join("oci/index.json").is_file() && p.join("oci/oci-layout").is_file());
    fails_saying(&oci("moved.json", "o1"), &["gone.tar", "cannot read"], &[&p.join("o1")]);
    fails_saying(&oci("unlocated.json", "o2"), &["no layerLocations entry", &layer_hex], &[&p.join("o2")]);
    // A load script: written, it streams; a script that is not one is refused, naming it.
    let o = run(p, &[os("load-script"), os("--manifest"), os("m.json"), os("--image-name"), os("hello"), os("--tag"), os("t"), os("--out"), os("load")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(p, &[os("load-archive"), os("--out"), os("archive.tar"), os("load")]);
    assert!(o.status.success() && p.join("archive.tar").is_file(), "{}", stderr(&o));
    let x = Command::new("tar").args(["-xOf", "archive.tar", "manifest.json"]).current_dir(p).output().unwrap();
    assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
    let loaded: serde_json::Value = serde_json::from_slice(&x.stdout).unwrap();
    let hexes: Vec<String> = out["manifest"]["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()[7..].to_string()).collect();
    let config_hex = &out["manifest"]["config"]["digest"].as_str().unwrap()[7..];
    assert_eq!(loaded, serde_json::json!([{"Config": format!("{config_hex}.json"), "RepoTags": ["hello:t"], "Layers": hexes.iter().map(|h| format!("{h}/layer.tar")).collect::<Vec<_>>()}]));
    let layer = Command::new("tar").args(["-xOf", "archive.tar", &format!("{}/layer.tar", hexes[0])]).current_dir(p).output().unwrap();
    assert!(layer.status.success() && layer.stdout == fs::read(p.join("l.tar")).unwrap(), "the layer's blob, as stored");
    fs::write(p.join("not-a-script"), "#!/bin/sh\necho hi\n").unwrap();
    fails_saying(&run(p, &[os("load-archive"), os("--out"), os("a2.tar"), os("not-a-script")]), &["not-a-script", "not a load script"], &[&p.join("a2.tar")]);
    fs::write(p.join("broken-script"), "#!x load-archive\n{\"manifest\": 1\n").unwrap();
    fails_saying(&run(p, &[os("load-archive"), os("--out"), os("a2.tar"), os("broken-script")]), &["broken-script", "malformed JSON"], &[&p.join("a2.tar")]);
    fs::write(p.join("moved-script"), format!("#!x load-archive\n{{\"manifest\":\"{}\",\"imageName\":\"h\",\"tag\":\"t\"}}\n", p.join("moved.json").display())).unwrap();
    fails_saying(&run(p, &[os("load-archive"), os("--out"), os("a3.tar"), os("moved-script")]), &["gone.tar", "cannot read"], &[&p.join("a3.tar")]);
}
