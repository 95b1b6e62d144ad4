//! The SBOMs: `layer-hash sbom` on the real closures of `../shared/data` and on the example
//! image, validated by the formats' own tools (pyspdxtools from spdx-tools, and
//! cyclonedx-python-lib's strict JSON validator, installed by tests/run.sh), checked against the
//! graph package by package and edge by edge (names as Nix's `builtins.parseDrvName` splits them,
//! checksums as `nix-hash` converts narHash), independent of input order, and attached to the image
//! in its OCI layout so that a registry without the referrers API serves them from the image's
//! digest (the referrers tag schema).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::registry::Registry;
use common::{have_file, have_nix, have_tool, nix_build, repo, run, shared, static_tools};

const BIN: &str = env!("CARGO_BIN_EXE_layer-hash");

/// The venv of validators tests/run.sh installs, or None (skipped).
fn validators(test: &str) -> Option<PathBuf> {
    let v = repo().join("target/validators/bin");
    have_file(&v.join("pyspdxtools"), test).then_some(v)
}

/// Both validators on a directory holding spdx.json and cyclonedx.json.
fn validate(v: &Path, dir: &Path) {
    run(Command::new(v.join("pyspdxtools")).arg("--infile").arg(dir.join("spdx.json")));
    run(Command::new(v.join("python")).arg(repo().join("tests/validate-cyclonedx.py")).arg(dir.join("cyclonedx.json")));
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn sbom(graph: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN).args(["sbom", "--image-name", "test/image", "--graph"]).arg(graph).arg("--out").arg(out).args(extra).output().unwrap()
}

/// Checks both documents of `dir` against the graph file `graph`: every path one package, the
/// edges exactly the references (no self references), the roots what the documents describe.
fn matches_the_graph(dir: &Path, graph: &Path) {
    let g = json(graph);
    let entries = g["graph"].as_array().unwrap();
    let paths: BTreeSet<String> = entries.iter().map(|e| e["path"].as_str().unwrap().to_string()).collect();
    let edges: BTreeSet<(String, String)> = entries
        .iter()
        .flat_map(|e| {
            let from = e["path"].as_str().unwrap().to_string();
            e["references"].as_array().unwrap().iter().map(move |r| (from.clone(), r.as_str().unwrap().to_string()))
        })
        .filter(|(a, b)| a != b)
        .collect();
    let roots: BTreeSet<String> = match &g["exportReferencesGraph"]["graph"] {
        serde_json::Value::String(s) => [s.clone()].into(),
        v => v.as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect(),
    };
    // Outside truth for names and checksums: Nix's own parseDrvName and nix-hash.
    let names: Vec<&str> = paths.iter().map(|p| p.rsplit('/').next().unwrap().split_once('-').unwrap().1).collect();
    let expr = format!("map (n: let d = builtins.parseDrvName n; in [ d.name d.version ]) (builtins.fromJSON ''{}'')", serde_json::to_string(&names).unwrap());
    let parsed: Vec<(String, String)> = serde_json::from_value(common::eval_json(&expr)).unwrap();
    let name_version: BTreeMap<&String, &(String, String)> = paths.iter().zip(&parsed).collect();
    let nar: BTreeMap<String, String> = entries.iter().map(|e| (e["path"].as_str().unwrap().to_string(), e["narHash"].as_str().unwrap().to_string())).collect();
    let base32: Vec<&str> = paths.iter().map(|p| nar[p].trim_start_matches("sha256:")).collect();
    let hex_out = String::from_utf8(run(Command::new("nix-hash").args(["--type", "sha256", "--to-base16"]).args(&base32)).stdout).unwrap();
    let hex: BTreeMap<&String, &str> = paths.iter().zip(hex_out.lines()).collect();

    // SPDX: packages by the store path in their external reference.
    let spdx = json(&dir.join("spdx.json"));
    let mut by_id = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for p in spdx["packages"].as_array().unwrap() {
        let path = p["externalRefs"][0]["referenceLocator"].as_str().unwrap().to_string();
        assert_eq!(p["externalRefs"][0]["referenceType"], "nix-store-path");
        let (name, version) = name_version[&path];
        assert_eq!(p["name"].as_str().unwrap(), name, "{path}");
        assert_eq!(p["versionInfo"].as_str().unwrap_or(""), version, "{path}");
        assert_eq!(p["checksums"][0]["checksumValue"].as_str().unwrap(), hex[&path], "{path}");
        assert!(seen.insert(path.clone()), "{path} twice");
        by_id.insert(p["SPDXID"].as_str().unwrap().to_string(), path);
    }
    assert_eq!(seen, paths, "SPDX: every path exactly once");
    let mut spdx_edges = BTreeSet::new();
    let mut described = BTreeSet::new();
    for r in spdx["relationships"].as_array().unwrap() {
        let (a, b) = (r["spdxElementId"].as_str().unwrap(), r["relatedSpdxElement"].as_str().unwrap());
        match r["relationshipType"].as_str().unwrap() {
            "DEPENDS_ON" => assert!(spdx_edges.insert((by_id[a].clone(), by_id[b].clone())), "edge twice"),
            "DESCRIBES" => assert!(a == "SPDXRef-DOCUMENT" && described.insert(by_id[b].clone())),
            other => panic!("unexpected relationship {other}"),
        }
    }
    assert_eq!(spdx_edges, edges, "SPDX: the edges are the references");
    assert_eq!(described, roots);

    // CycloneDX: components by bom-ref (the store path), dependencies by ref.
    let cdx = json(&dir.join("cyclonedx.json"));
    let components: BTreeSet<String> = cdx["components"].as_array().unwrap().iter().map(|c| {
        let path = c["bom-ref"].as_str().unwrap().to_string();
        assert_eq!(c["hashes"][0]["content"].as_str().unwrap(), hex[&path]);
        assert_eq!(c["name"].as_str().unwrap(), name_version[&path].0);
        path
    }).collect();
    assert_eq!(components.len(), cdx["components"].as_array().unwrap().len(), "CycloneDX: no path twice");
    assert_eq!(components, paths);
    let mut cdx_edges = BTreeSet::new();
    let mut image_deps = BTreeSet::new();
    for d in cdx["dependencies"].as_array().unwrap() {
        let from = d["ref"].as_str().unwrap();
        for to in d["dependsOn"].as_array().unwrap() {
            let to = to.as_str().unwrap().to_string();
            if from.starts_with("image:") {
                image_deps.insert(to);
            } else {
                cdx_edges.insert((from.to_string(), to));
            }
        }
    }
    assert_eq!(cdx_edges, edges, "CycloneDX: the edges are the references");
    assert_eq!(image_deps, roots);
}

#[test]
fn sboms_of_the_real_closures_hold_exactly_their_graph_and_validate() {
    let t = "sboms_of_the_real_closures_hold_exactly_their_graph_and_validate";
    let Some(v) = validators(t) else { return };
    if !have_nix(t) {
        return;
    }
    for name in ["hello-2.10", "ankisyncd", "ankisyncd.multiroot"] {
        let graph = shared().join(format!("data/{name}.attrs.json"));
        if !have_file(&graph, t) {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("sbom");
        let o = sbom(&graph, &out, &["--created", "2024-05-01T12:00:00+02:00"]);
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        validate(&v, &out);
        matches_the_graph(&out, &graph);
        assert_eq!(json(&out.join("spdx.json"))["creationInfo"]["created"], "2024-05-01T10:00:00Z", "SPDX wants UTC");
    }
}

/// Shuffled entries, references and roots give the same bytes; another image name or creation
/// time gives another namespace and serial number (they come from the content).
#[test]
fn sboms_do_not_depend_on_input_order_and_their_ids_come_from_the_content() {
    let t = "sboms_do_not_depend_on_input_order";
    let graph = shared().join("data/ankisyncd.multiroot.attrs.json");
    if !have_file(&graph, t) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut g = json(&graph);
    g["graph"].as_array_mut().unwrap().reverse();
    for e in g["graph"].as_array_mut().unwrap() {
        e["references"].as_array_mut().unwrap().reverse();
    }
    g["exportReferencesGraph"]["graph"].as_array_mut().unwrap().reverse();
    let shuffled = d.path().join("shuffled.json");
    fs::write(&shuffled, serde_json::to_vec(&g).unwrap()).unwrap();
    let read = |dir: &Path| (fs::read(dir.join("spdx.json")).unwrap(), fs::read(dir.join("cyclonedx.json")).unwrap());
    for (graph_file, out) in [(&graph, "a"), (&shuffled, "b")] {
        assert!(sbom(graph_file, &d.path().join(out), &[]).status.success());
    }
    assert_eq!(read(&d.path().join("a")), read(&d.path().join("b")));
    assert!(sbom(&graph, &d.path().join("c"), &["--created", "2024-05-01T12:00:00Z"]).status.success());
    let (a, c) = (json(&d.path().join("a/cyclonedx.json")), json(&d.path().join("c/cyclonedx.json")));
    assert_ne!(a["serialNumber"], c["serialNumber"]);
    assert_ne!(json(&d.path().join("a/spdx.json"))["documentNamespace"], json(&d.path().join("c/spdx.json"))["documentNamespace"]);
}

/// Bad input: one line naming the input and the problem, exit 1, no directory left.
#[test]
fn bad_sbom_input_is_one_error_line_and_no_output() {
    let d = tempfile::tempdir().unwrap();
    let write = |name: &str, v: serde_json::Value| {
        let p = d.path().join(name);
        fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        p
    };
    let entry = |path: &str, hash: &str, refs: &[&str]| serde_json::json!({"path": path, "narHash": hash, "narSize": 10, "closureSize": 10, "references": refs});
    let good_hash = "sha256:1cbfg6ggpyja8dd5fwdvsba82l1xvfikhvxqk3rsqdj7lqyg58dy";
    let cases = [
        (write("hash.json", serde_json::json!({"exportReferencesGraph": {"graph": ["/nix/store/a-x"]}, "graph": [entry("/nix/store/a-x", "md5:00", &[])]})), vec![], "narHash `md5:00` is not a sha256"),
        (write("ref.json", serde_json::json!({"exportReferencesGraph": {"graph": ["/nix/store/a-x"]}, "graph": [entry("/nix/store/a-x", good_hash, &["/nix/store/b-y"])]})), vec![], "/nix/store/b-y"),
        (write("nohash.json", serde_json::json!({"exportReferencesGraph": {"graph": ["/nix/store/a-x"]}, "graph": [{"path": "/nix/store/a-x", "narSize": 1, "references": []}]})), vec![], "narHash"),
        (
            write("lic.json", serde_json::json!({"exportReferencesGraph": {"graph": ["/nix/store/a-x"]}, "graph": [entry("/nix/store/a-x", good_hash, &[])]})),
            vec!["--meta", r#"{"/nix/store/zzz-other": {"licenses": [{"spdxId": "MIT"}]}}"#],
            "meta: /nix/store/zzz-other is not in the image's closure",
        ),
    ];
    for (graph, extra, says) in cases {
        let out = d.path().join("out");
        let o = sbom(&graph, &out, &extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says) && err.lines().count() == 1, "{}: {err}", graph.display());
        assert!(!out.exists(), "{}: output left behind", graph.display());
    }
}

/// The example image's `sbom`: valid, the graph's, with the licenses evaluation knows (hello's
/// two, from its meta.license) and none made up (busybox, a dependency, gets none). In the
/// OCI layout the documents are artifact manifests whose subject is the image; pushed to a
/// registry without the referrers API, they are found from the image's digest alone through the
/// referrers tag `sha256-<hex>`.
#[test]
fn the_image_sbom_is_attached_and_found_from_the_image_digest_in_a_registry() {
    let t = "the_image_sbom_is_attached_and_found_from_the_image_digest_in_a_registry";
    let Some(v) = validators(t) else { return };
    if !have_nix(t) || !have_tool("skopeo", t) || !have_tool("docker-registry", t) || !have_tool("curl", t) {
        return;
    }
    let image = |attr: &str| {
        let expr = format!(
            "(import ./build-image.nix {{ pkgs = import ./examples/pkgs.nix {{ }}; tools = {}; name = \"sbom\"; tag = \"v1\"; packages = ''[\"hello\"]''; format = \"oci\"; created = \"2024-05-01T12:00:00Z\"; }}){attr}",
            static_tools().display()
        );
        PathBuf::from(nix_build(&["--expr", &expr]).trim())
    };
    let dir = image(".sbom");
    validate(&v, &dir);
    let cdx = json(&dir.join("cyclonedx.json"));
    let licenses: BTreeMap<String, serde_json::Value> = cdx["components"].as_array().unwrap().iter().map(|c| (c["name"].as_str().unwrap().to_string(), c["licenses"].clone())).collect();
    assert_eq!(licenses["hello"], serde_json::json!([{"license": {"id": "GPL-3.0-or-later"}}, {"license": {"id": "MIT"}}]));
    assert!(licenses["busybox"].is_null() && licenses["libbase"].is_null(), "{licenses:?}");
    let purl = |c: &str| cdx["components"].as_array().unwrap().iter().find(|x| x["name"] == c).unwrap()["purl"].clone();
    assert_eq!(purl("hello"), "pkg:generic/hello@2.12", "nixpkgs' meta.identifiers.purls");
    assert!(purl("busybox").is_null());
    let spdx = json(&dir.join("spdx.json"));
    let hello = spdx["packages"].as_array().unwrap().iter().find(|p| p["name"] == "hello").unwrap();
    assert_eq!(hello["licenseDeclared"], "NOASSERTION", "two licenses, no stated conjunction: {hello}");
    assert!(hello["comment"].as_str().unwrap().contains("meta.license lists GPL-3.0-or-later, MIT"));
    assert_eq!(hello["externalRefs"][1], serde_json::json!({"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:generic/hello@2.12"}));

    // The layout: the image tagged v1, and the referrers index tagged sha256-<hex of the image
    // manifest digest>, listing an artifact manifest per document with the image as subject.
    let layout = image(".ociLayout");
    let index = json(&layout.join("index.json"));
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "the image and the referrers index: {index}");
    let image_digest = entries[0]["digest"].as_str().unwrap().to_string();
    let referrers_tag = format!("sha256-{}", image_digest.trim_start_matches("sha256:"));
    let blob = |d: &str| layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    let ref_entry = entries.iter().find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == referrers_tag.as_str()).unwrap();
    let index_bytes = fs::read(blob(ref_entry["digest"].as_str().unwrap())).unwrap();
    let referrers: serde_json::Value = serde_json::from_slice(&index_bytes).unwrap();
    for (artifact_type, file) in [("application/spdx+json", "spdx.json"), ("application/vnd.cyclonedx+json", "cyclonedx.json")] {
        let e = referrers["manifests"].as_array().unwrap().iter().find(|e| e["artifactType"] == artifact_type).unwrap();
        let m = json(&blob(e["digest"].as_str().unwrap()));
        assert_eq!(m["subject"]["digest"], image_digest.as_str());
        assert_eq!(m["artifactType"], artifact_type);
        assert_eq!(m["config"]["mediaType"], "application/vnd.oci.empty.v1+json");
        assert_eq!(fs::read(blob(m["layers"][0]["digest"].as_str().unwrap())).unwrap(), fs::read(dir.join(file)).unwrap());
    }

    // Push: the image; the referrers' manifests and blobs (skopeo 1.9 rewrites an index without
    // its artifactType, so the index itself goes in by the registry API, byte for byte).
    let reg = Registry::start();
    let base = format!("127.0.0.1:{}", reg.port);
    let copy = |tag: &str, all: bool| {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--dest-tls-verify=false"]);
        if all { c.arg("--all") } else { c.arg("--preserve-digests") };
        run(c.arg(format!("oci:{}:{tag}", layout.display())).arg(format!("docker://{base}/sbom:{tag}")));
    };
    copy("v1", false);
    copy(&referrers_tag, true);
    let index_file = tempfile::NamedTempFile::new().unwrap();
    fs::write(index_file.path(), &index_bytes).unwrap();
    run(Command::new("curl").args(["-sf", "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.index.v1+json", "--data-binary"]).arg(format!("@{}", index_file.path().display())).arg(format!("http://{base}/v2/sbom/manifests/{referrers_tag}")));

    // Discover from the image's digest alone.
    let get = |path: &str, accept: &str| run(Command::new("curl").args(["-sf", "-H", &format!("Accept: {accept}")]).arg(format!("http://{base}/v2/sbom/{path}"))).stdout;
    let pulled_image = get(&format!("manifests/{image_digest}"), "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(pulled_image, fs::read(blob(&image_digest)).unwrap(), "the image is in the registry");
    let found: serde_json::Value = serde_json::from_slice(&get(&format!("manifests/sha256-{}", image_digest.trim_start_matches("sha256:")), "application/vnd.oci.image.index.v1+json")).unwrap();
    for (artifact_type, file) in [("application/spdx+json", "spdx.json"), ("application/vnd.cyclonedx+json", "cyclonedx.json")] {
        let e = found["manifests"].as_array().unwrap().iter().find(|e| e["artifactType"] == artifact_type).unwrap_or_else(|| panic!("{artifact_type} not listed: {found}"));
        let m: serde_json::Value = serde_json::from_slice(&get(&format!("manifests/{}", e["digest"].as_str().unwrap()), "application/vnd.oci.image.manifest.v1+json")).unwrap();
        assert_eq!(m["subject"]["digest"], image_digest.as_str());
        let doc = get(&format!("blobs/{}", m["layers"][0]["digest"].as_str().unwrap()), "*/*");
        assert_eq!(doc, fs::read(dir.join(file)).unwrap(), "{file} from the registry");
    }
}
