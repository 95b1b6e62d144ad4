//! `group-layers` as users and Nix run it: flags, builder mode, and every bad input.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::sp;

const BIN: &str = env!("CARGO_BIN_EXE_group-layers");

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN).args(args).current_dir(dir).env_remove("NIX_ATTRS_JSON_FILE").output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A small valid graph: app -> lib.
fn graph_json() -> String {
    let (app, lib) = (sp("app"), sp("lib"));
    format!(
        r#"{{"exportReferencesGraph":{{"graph":["{app}"]}},"graph":[
        {{"path":"{app}","narSize":10,"closureSize":30,"narHash":"sha256:a","references":["{app}","{lib}"]}},
        {{"path":"{lib}","narSize":20,"closureSize":20,"narHash":"sha256:b","references":[]}}]}}"#
    )
}

fn fails_naming(dir: &Path, args: &[&str], needles: &[&str]) {
    let o = run(dir, args);
    assert!(!o.status.success(), "{args:?} should fail");
    let err = stderr(&o);
    for n in needles {
        assert!(err.contains(n), "{args:?}: error should mention {n:?}: {err}");
    }
    assert_eq!(err.lines().filter(|l| l.contains("error")).count(), 1, "one error line: {err}");
    assert!(!dir.join("out.json").exists(), "no output file after a failure");
}

#[test]
fn writes_layers_and_explains() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("g.json"), graph_json()).unwrap();
    let o = run(d.path(), &["--graph", "g.json", "--budget", "3", "--out", "out.json", "--explain", "--strategy", "nixery"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let layers: serde_json::Value = serde_json::from_slice(&fs::read(d.path().join("out.json")).unwrap()).unwrap();
    let mut both = [sp("app"), sp("lib")];
    both.sort();
    assert_eq!(layers[0]["contents"], serde_json::json!(both));
    assert_eq!(layers[0]["size"], 30);
    assert_eq!(layers[0]["reason"], "root");
    let err = stderr(&o);
    assert!(err.contains("2 paths") && err.contains("why") && err.contains(&sp("app")), "{err}");
    // stdout by default, byte-identical to the file.
    let o = run(d.path(), &["--graph", "g.json", "--budget", "3", "--strategy", "nixery"]);
    assert_eq!(o.stdout, fs::read(d.path().join("out.json")).unwrap());
}

#[test]
fn help_names_the_seed_flags() {
    let o = run(Path::new("."), &["--help"]);
    assert!(o.status.success(), "--help: {}", stderr(&o));
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in ["--graph", "--pop", "--budget", "--out", "--strategy", "--explain", "--popular-threshold", "--big-threshold"] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn bad_inputs_fail_with_one_clear_line_and_no_output() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::write(p.join("g.json"), graph_json()).unwrap();
    let dangling = graph_json().replace(r#""references":[]"#, &format!(r#""references":["{}"]"#, sp("ghost")));
    fs::write(p.join("dangling.json"), dangling).unwrap();
    fs::write(p.join("malformed.json"), "{\"graph\": [").unwrap();
    fs::write(p.join("noroots.json"), r#"{"graph": []}"#).unwrap();
    let missing_root = graph_json().replace(&format!(r#"["{}"]}}"#, sp("app")), &format!(r#"["{}"]}}"#, sp("nope")));
    fs::write(p.join("missingroot.json"), missing_root).unwrap();
    let no_size = graph_json().replace(r#""narSize":20,"#, "");
    fs::write(p.join("nosize.json"), no_size).unwrap();
    let g = graph_json();
    let cut = g.rfind("]}").unwrap();
    let dup = format!(r#"{},{{"path":"{}","narSize":1,"closureSize":1,"references":[]}}]}}"#, &g[..cut], sp("lib"));
    fs::write(p.join("dup.json"), dup).unwrap();
    fs::write(p.join("pop-float.json"), r#"{"lib": 2.5}"#).unwrap();
    fs::write(p.join("pop-string.json"), r#"{"lib": "many"}"#).unwrap();

    let out = ["--out", "out.json"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> { extra.iter().chain(out.iter()).copied().collect() };
    fails_naming(p, &with(&["--graph", "dangling.json", "--budget", "2"]), &["dangling.json", &sp("lib"), &sp("ghost"), "not in the graph"]);
    fails_naming(p, &with(&["--graph", "malformed.json", "--budget", "2"]), &["malformed.json", "malformed JSON"]);
    fails_naming(p, &with(&["--graph", "noroots.json", "--budget", "2"]), &["noroots.json", "exportReferencesGraph"]);
    fails_naming(p, &with(&["--graph", "missingroot.json", "--budget", "2"]), &["missingroot.json", &sp("nope")]);
    fails_naming(p, &with(&["--graph", "nosize.json", "--budget", "2"]), &["nosize.json", &sp("lib"), "narSize"]);
    fails_naming(p, &with(&["--graph", "dup.json", "--budget", "2"]), &["dup.json", &sp("lib"), "twice"]);
    fails_naming(p, &with(&["--graph", "g.json", "--budget", "2", "--pop", "pop-float.json"]), &["pop-float.json", "\"lib\"", "2.5"]);
    fails_naming(p, &with(&["--graph", "g.json", "--budget", "2", "--pop", "pop-string.json"]), &["pop-string.json", "\"lib\""]);
    fails_naming(p, &with(&["--graph", "g.json", "--budget", "0"]), &["budget", "at least 1"]);
    fails_naming(p, &with(&["--graph", "absent.json", "--budget", "2"]), &["absent.json"]);
    fails_naming(p, &with(&["--graph", "g.json", "--budget", "2", "--pop", "absent-pop.json"]), &["absent-pop.json"]);
    fails_naming(p, &with(&["--graph", "g.json", "--budget", "2", "--strategy", "bogus"]), &["bogus", "stable"]);
    fails_naming(p, &with(&["--graph", "g.json"]), &["--budget"]);
    // As a builder: the budget missing, and of the wrong type.
    let mut attrs: serde_json::Value = serde_json::from_str(&graph_json()).unwrap();
    attrs["outputs"] = serde_json::json!({"out": p.join("out.json")});
    let b = p.join("builder");
    fs::create_dir(&b).unwrap();
    fs::write(b.join(".attrs.json"), attrs.to_string()).unwrap();
    fails_naming(&b, &[], &[".attrs.json", "budget"]);
    attrs["budget"] = (-3).into();
    fs::write(b.join(".attrs.json"), attrs.to_string()).unwrap();
    fails_naming(&b, &[], &[".attrs.json", "budget", "-3"]);
    assert!(!p.join("out.json").exists());
}

#[test]
fn write_errors_fail_loudly() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("g.json"), graph_json()).unwrap();
    fails_naming(d.path(), &["--graph", "g.json", "--budget", "2", "--out", "no/such/dir/out.json"], &["cannot write", "no/such/dir/out.json"]);
    if !Path::new("/dev/full").exists() {
        common::skip("write_errors_fail_loudly, full-device case", "/dev/full is missing");
    } else {
        let o = run(d.path(), &["--graph", "g.json", "--budget", "2", "--out", "-"]);
        assert!(o.status.success() && !o.stdout.is_empty(), "{}", stderr(&o));
        let o = Command::new("sh").arg("-c").arg(format!("{BIN} --graph g.json --budget 2 > /dev/full")).current_dir(d.path()).output().unwrap();
        assert!(!o.status.success(), "writing to a full device must fail");
        assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));
    }
}

#[test]
fn builder_mode_reads_structured_attrs_and_writes_outputs() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let mut attrs: serde_json::Value = serde_json::from_str(&graph_json()).unwrap();
    attrs["budget"] = 4.into();
    attrs["strategy"] = "nixery".into();
    attrs["popularity"] = p.join("pop.json").to_str().unwrap().into();
    attrs["outputs"] = serde_json::json!({"out": p.join("layers.json"), "explain": p.join("explain.txt")});
    fs::write(p.join("pop.json"), r#"{"lib": 5000}"#).unwrap();
    fs::write(p.join(".attrs.json"), serde_json::to_vec(&attrs).unwrap()).unwrap();
    let o = run(p, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let layers: serde_json::Value = serde_json::from_slice(&fs::read(p.join("layers.json")).unwrap()).unwrap();
    // lib is popular: hoisted into its own layer, at the bottom.
    assert_eq!(layers[0]["contents"], serde_json::json!([sp("lib")]));
    assert_eq!(layers[0]["reason"], "popular");
    assert_eq!(layers[1]["contents"], serde_json::json!([sp("app")]));
    assert!(fs::read_to_string(p.join("explain.txt")).unwrap().contains("hoisted: popular"));

    // $NIX_ATTRS_JSON_FILE wins over ./.attrs.json, and a bad attribute is named.
    attrs["budget"] = "many".into();
    fs::write(p.join("elsewhere.json"), serde_json::to_vec(&attrs).unwrap()).unwrap();
    let o = Command::new(BIN).current_dir(p).env("NIX_ATTRS_JSON_FILE", p.join("elsewhere.json")).output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("elsewhere.json") && stderr(&o).contains("budget"), "{}", stderr(&o));
}

#[test]
fn empty_closure_gives_an_empty_list() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("g.json"), r#"{"exportReferencesGraph":{"graph":[]},"graph":[]}"#).unwrap();
    let o = run(d.path(), &["--graph", "g.json", "--budget", "5", "--out", "out.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(d.path().join("out.json")).unwrap(), "[]\n");
}

/// Same partition as the program of Nixery (2019) (its reference model) on the real graphs and on
/// synthetic ones, wherever its result is not itself ambiguous.
#[test]
fn nixery_partition_matches_the_seed_model() {
    let model = common::shared().join("tools/seed-harness/group-layers-model.py");
    if !common::have_file(&model, "nixery_partition_matches_the_seed_model")
        || !common::have_tool("python3", "nixery_partition_matches_the_seed_model")
    {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let data = common::shared().join("data");
    let generator = env!("CARGO_BIN_EXE_layer-eval");
    let mut graphs = vec![data.join("ankisyncd.attrs.json"), data.join("ankisyncd.multiroot.attrs.json"), data.join("hello-2.10.attrs.json")];
    for (n, seed) in [(300, 1), (1000, 2), (2000, 3)] {
        let g = d.path().join(format!("synth-{n}.json"));
        assert!(Command::new(generator).args(["generate", "--paths", &n.to_string(), "--seed", &seed.to_string(), "--out"]).arg(&g).status().unwrap().success());
        graphs.push(g);
    }
    let pops = [data.join("popularity-narinfo-sample.json"), data.join("popularity-ankisyncd.json")];
    let mut compared = 0;
    for g in &graphs {
        for pop in &pops {
            for budget in [1, 3, 20, 95, 500] {
                let (m, o) = (d.path().join("model.json"), d.path().join("ours.json"));
                let st = Command::new("python3").arg(&model).arg("--graph").arg(g).arg("--pop").arg(pop).args(["--budget", &budget.to_string(), "--out"]).arg(&m).status().unwrap();
                assert!(st.success());
                let ours = Command::new(BIN).arg("--graph").arg(g).arg("--pop").arg(pop).args(["--budget", &budget.to_string(), "--strategy", "nixery", "--out"]).arg(&o).output().unwrap();
                assert!(ours.status.success(), "{}", stderr(&ours));
                let load = |p: &Path| -> Vec<serde_json::Value> { serde_json::from_slice(&fs::read(p).unwrap()).unwrap() };
                let (mj, oj) = (load(&m), load(&o));
                if mj.iter().any(|l| l["ambiguous"] == true) {
                    continue;
                }
                let part = |v: &[serde_json::Value]| {
                    let mut p: Vec<Vec<String>> = v.iter().map(|l| serde_json::from_value(l["contents"].clone()).unwrap()).collect();
                    p.sort();
                    p
                };
                assert_eq!(part(&oj), part(&mj), "{} budget {budget} pop {}", g.display(), pop.display());
                compared += 1;
            }
        }
    }
    assert!(compared >= 25, "only {compared} unambiguous comparisons");
}

/// A graph of `n` paths, each referencing the two before it, entries in the order given by
/// `order` (indices into the paths); each entry's JSON passes through `edit` first.
fn chain_graph(n: usize, order: &[usize], edit: impl Fn(usize, String) -> String) -> String {
    let path = |i: usize| sp(&format!("p{i:05}"));
    let entries: Vec<String> = order
        .iter()
        .map(|&i| {
            let refs: Vec<String> = (i.saturating_sub(2)..i).map(|r| format!("\"{}\"", path(r))).collect();
            edit(i, format!(r#"{{"path":"{}","narSize":{},"closureSize":1,"narHash":"sha256:x","references":[{}]}}"#, path(i), 1000 + i % 97, refs.join(",")))
        })
        .collect();
    format!(r#"{{"exportReferencesGraph":{{"graph":["{}"]}},"graph":[{}]}}"#, path(n - 1), entries.join(","))
}

/// Graphs of 4096 paths and more are read on two threads: the result is the same whatever the
/// order of the entries, as a builder or from the command line, and of two bad entries in either
/// half the one reported is the first (in the file for bad values, by path for bad references).
#[test]
fn large_graphs_read_on_two_threads_keep_results_and_errors_deterministic() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let n = 6000;
    let forward: Vec<usize> = (0..n).collect();
    let shuffled: Vec<usize> = (0..n).map(|i| (i * 2477) % n).collect();
    fs::write(p.join("g.json"), chain_graph(n, &forward, |_, e| e)).unwrap();
    fs::write(p.join("shuffled.json"), chain_graph(n, &shuffled, |_, e| e)).unwrap();
    let ok = |args: &[&str]| {
        let o = run(p, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        o.stdout
    };
    let layers = ok(&["--graph", "g.json", "--budget", "20"]);
    assert_eq!(ok(&["--graph", "shuffled.json", "--budget", "20"]), layers, "entry order changed the layers");

    let mut attrs: serde_json::Value = serde_json::from_str(&chain_graph(n, &shuffled, |_, e| e)).unwrap();
    attrs["budget"] = 20.into();
    attrs["outputs"] = serde_json::json!({"out": p.join("built.json")});
    let b = p.join("builder");
    fs::create_dir(&b).unwrap();
    fs::write(b.join(".attrs.json"), attrs.to_string()).unwrap();
    assert!(run(&b, &[]).status.success());
    assert_eq!(fs::read(p.join("built.json")).unwrap(), layers, "the builder's layers differ from the command line's");

    // Entries 10 and 4500 of the file (one in each half) have a bad size.
    let bad_sizes = chain_graph(n, &forward, |i, e| if i == 10 || i == 4500 { e.replace(r#""narSize":"#, r#""narSize":"big","x":"#) } else { e });
    fs::write(p.join("sizes.json"), bad_sizes).unwrap();
    fails_naming(p, &["--graph", "sizes.json", "--budget", "20", "--out", "out.json"], &["sizes.json", "graph entry 10:", "expected u64"]);
    // Paths 300 and 5000 reference paths that are not in the graph: the one named is the first
    // by path, wherever the file lists it.
    let dangling = chain_graph(n, &shuffled, |i, e| if i == 300 || i == 5000 { e.replace(r#""references":["#, &format!(r#""references":["{}","#, sp(&format!("ghost{i}")))) } else { e });
    fs::write(p.join("dangling.json"), dangling).unwrap();
    let first = if sp("p00300") < sp("p05000") { 300 } else { 5000 };
    let (path, ghost) = (sp(&format!("p{first:05}")), sp(&format!("ghost{first}")));
    fails_naming(p, &["--graph", "dangling.json", "--budget", "20", "--out", "out.json"], &["dangling.json", &path, &ghost, "not in the graph"]);
}
