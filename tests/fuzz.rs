//! A mutation fuzzer over every parser of the programs' inputs, in process: closure graphs (then
//! grouped by every strategy), popularity, layer records, manifest-output.json, SBOM input
//! (graph plus what evaluation knows), creation times, perms rules, the builder attributes of
//! each program and mode (as Nix writes them), load scripts, and an index's images and configs. Each starts from the real
//! inputs kept in tests/fuzz-corpus/<parser>/ and applies 1 to 4 random edits (bit flips, bytes
//! and JSON tokens inserted or replaced, ranges deleted or repeated, splices of two inputs).
//!
//! Every input must give a value or one error whose message is one line as the binaries print it
//! (and one line of our own words when the input has no newline): no panic, no hang. A
//! failing input is saved to target/fuzz-crashes/ and the test fails naming it; kept in the corpus,
//! it is replayed on every run. `FUZZ_ITERATIONS` sets the inputs per parser (default 20,000, a
//! few seconds; the recorded campaign used 1,000,000: docs/testing.md).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix_image_layers::archive::LoadScript;
use nix_image_layers::attrs::Attrs;
use nix_image_layers::error::one_line;
use nix_image_layers::graph::Closure;
use nix_image_layers::index;
use nix_image_layers::inputs::group_layers;
use nix_image_layers::inputs::layer_hash::Mode;
use nix_image_layers::layering::{self, Options, Strategy};
use nix_image_layers::manifest::{BlobRecord, ManifestOutput};
use nix_image_layers::perms::{PermSpec, Perms};
use nix_image_layers::popularity::Popularity;
use nix_image_layers::sbom::{Bom, Known};

/// xorshift64*: the same inputs on every machine for one seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

const TOKENS: &[&[u8]] = &[
    b"null", b"-1", b"0", b"18446744073709551616", b"1e309", b"\"\"", b"[]", b"{}", b"true", b"\"/nix/store/aaaa-a-1.0\"",
    b"\"sha256:\"", b"\"/\"", b"\"..\"", b"\"\\u0000\"", b"\"\\ud800\"", b",", b":", b"\"", b"[", b"{", b"]", b"}",
    b"\"references\"", b"\"path\"", b"\"narHash\"", b"\"graph\"", b"\"T\"", b"\"Z\"", b"+99:99", b"\".*\"", b"\"(\"",
];

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                const BYTES: &[u8] = b"{}[]\":,0123456789-.eE\\ /ab";
                v[i] = BYTES[rng.below(BYTES.len())];
            }
            2 if !v.is_empty() => {
                let len = 1 + rng.below(16.min(v.len()));
                let from = rng.below(v.len() - len + 1);
                v.drain(from..from + len);
            }
            3 if !v.is_empty() => {
                let len = 1 + rng.below(32.min(v.len()));
                let from = rng.below(v.len() - len + 1);
                let piece = v[from..from + len].to_vec();
                v.splice(at.min(v.len())..at.min(v.len()), piece);
            }
            4 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            5 if !v.is_empty() => {
                // Replace a run of digits or a string with a token.
                let t = TOKENS[rng.below(TOKENS.len())];
                let end = (at + 1 + rng.below(12)).min(v.len());
                v.splice(at.min(end)..end, t.iter().copied());
            }
            _ => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[cut..]);
            }
        }
    }
    v
}

fn corpus(parser: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = common::repo().join("tests/fuzz-corpus").join(parser);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.into_iter().map(|p| { let b = fs::read(&p).unwrap(); (p, b) }).collect()
}

/// Runs `check` on the corpus and on `FUZZ_ITERATIONS` mutants of it. `check` returns the error
/// message of a rejected input (None when accepted).
fn fuzz(parser: &str, seed: u64, check: impl Fn(&[u8]) -> Option<String>) {
    let iterations: usize = std::env::var("FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let seeds = corpus(parser);
    let bytes: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    let crashes = common::repo().join("target/fuzz-crashes");
    let mut rng = Rng(seed);
    let (mut accepted, mut rejected) = (0usize, 0usize);
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..seeds.len() + iterations {
        let input = if i < seeds.len() {
            bytes[i].clone()
        } else {
            let pick = rng.below(bytes.len());
            mutate(&mut rng, &bytes[pick], &bytes)
        };
        let t0 = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)));
        let took = t0.elapsed();
        slowest = slowest.max(took);
        let save = |why: &str| {
            fs::create_dir_all(&crashes).unwrap();
            let f = crashes.join(format!("{parser}-{i}.bin"));
            fs::write(&f, &input).unwrap();
            panic!("{parser}: input {i} {why}; saved to {} (add it to tests/fuzz-corpus/{parser}/ once fixed)", f.display());
        };
        match outcome {
            Err(_) => save("panicked"),
            // Our own words are one line; user data with a newline in it (raw, or escaped in JSON)
            // is escaped where the binaries print the message (error::one_line).
            Ok(Some(msg)) if msg.is_empty() || (msg.contains('\n') && !input.contains(&b'\n') && !input.contains(&b'\\')) => {
                save(&format!("gave an error of other than one line: {msg:?}"))
            }
            Ok(Some(msg)) if one_line(&msg).contains('\n') => save("gave an error that printing leaves on several lines"),
            Ok(Some(_)) => rejected += 1,
            Ok(None) => accepted += 1,
        }
        if took > Duration::from_secs(2) {
            save(&format!("took {took:?} (a hang)"));
        }
    }
    eprintln!(
        "fuzz {parser}: {} inputs ({} from the corpus) in {:.1} s: {accepted} accepted, {rejected} rejected with one error line, slowest {:?}",
        seeds.len() + iterations,
        seeds.len(),
        start.elapsed().as_secs_f64(),
        slowest
    );
    assert!(accepted > 0 && rejected > 0, "{parser}: the fuzzer should reach both outcomes");
}

fn err<T, E: std::fmt::Display>(r: Result<T, E>) -> Option<String> {
    r.err().map(|e| e.to_string())
}

#[test]
fn closure_graphs_then_every_strategy() {
    let origin = Path::new("fuzz.json");
    fuzz("graph", 1, |b| match Closure::parse(origin, b) {
        Err(e) => Some(e.to_string()),
        Ok(closure) => {
            for s in Strategy::ALL {
                for budget in [1, 2, 5] {
                    let layers = layering::group(&closure, &Popularity::none(), s, &Options::with_budget(budget)).unwrap();
                    let n: usize = layers.iter().map(|l| l.contents.len()).sum();
                    assert_eq!(n, closure.len(), "{}: every path in one layer", s.name());
                    assert!(layers.len() <= budget.max(1));
                }
            }
            None
        }
    });
}

#[test]
fn popularity_files() {
    fuzz("popularity", 2, |b| err(Popularity::parse(Path::new("pop.json"), b)));
}

#[test]
fn layer_records() {
    fuzz("record", 3, |b| {
        let one = serde_json::from_slice::<BlobRecord>(b);
        let many = serde_json::from_slice::<Vec<BlobRecord>>(b);
        match (one, many) {
            (Ok(r), _) => {
                let _ = r.diff_id();
                None
            }
            (_, Ok(_)) => None,
            (Err(e), _) => Some(e.to_string()),
        }
    });
}

#[test]
fn manifest_outputs() {
    fuzz("manifest", 4, |b| match serde_json::from_slice::<ManifestOutput>(b) {
        Err(e) => Some(e.to_string()),
        Ok(m) => {
            // Whatever it names (the files are not here), the check of its blobs says so in one
            // line, and the manifest writes back out.
            if let Err(e) = m.blobs(Path::new("fuzz.json")) {
                assert!(!one_line(&e.to_string()).contains('\n'), "{e}");
            }
            let _ = nix_image_layers::manifest::to_json(&m.manifest);
            None
        }
    });
}

#[test]
fn sbom_inputs() {
    let known: BTreeMap<String, Known> = BTreeMap::new();
    let subject = nix_image_layers::sbom::Subject { name: "fuzz".into(), created: "1970-01-01T00:00:01Z".into() };
    fuzz("graph", 5, |b| match Bom::read(Path::new("fuzz.json"), b, &known) {
        Err(e) => Some(e.to_string()),
        Ok(bom) => {
            bom.spdx(&subject).unwrap();
            bom.cyclonedx(&subject).unwrap();
            None
        }
    });
}

#[test]
fn creation_times() {
    fuzz("created", 6, |b| {
        let text = String::from_utf8_lossy(b);
        match text.parse::<nix_image_layers::created::Created>() {
            Err(e) => Some(e),
            Ok(c) => {
                let t = c.rfc3339().unwrap();
                nix_image_layers::created::to_epoch(&t).unwrap();
                None
            }
        }
    });
}

#[test]
fn perms_rules() {
    let paths = vec![PathBuf::from("/nix/store/aaaa-a-1.0")];
    fuzz("perms", 7, |b| match serde_json::from_slice::<Vec<PermSpec>>(b) {
        Err(e) => Some(e.to_string()),
        Ok(specs) => err(Perms::new(&specs, &paths)),
    });
}

/// layer-hash as Nix runs it: the structured attributes of each mode's real derivations
/// (tools/attrs-corpus.py writes them from the example images and an index) read into the mode.
#[test]
fn layer_hash_builder_attributes() {
    let origin = Path::new(".attrs.json");
    // The corpus holds every mode, each read without error.
    use clap::CommandFactory;
    let mut modes: BTreeSet<String> = nix_image_layers::inputs::layer_hash::Cli::command().get_subcommands().map(|c| c.get_name().to_string()).collect();
    for (file, bytes) in corpus("attrs-layer-hash") {
        Attrs::parse(origin, &bytes).and_then(|a| Mode::from_attrs(&a)).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        modes.remove(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["mode"].as_str().unwrap());
    }
    assert!(modes.is_empty(), "modes without an example in tests/fuzz-corpus/attrs-layer-hash: {modes:?}");
    fuzz("attrs-layer-hash", 8, |b| err(Attrs::parse(origin, b).and_then(|a| Mode::from_attrs(&a))));
}

/// group-layers as Nix runs it: its derivation's attributes and graph, then the grouping they ask for.
#[test]
fn group_layers_builder_attributes() {
    let origin = Path::new(".attrs.json");
    fuzz("attrs-group-layers", 9, |b| {
        let input = match group_layers::Input::from_attrs(origin, b) {
            Err(e) => return Some(e.to_string()),
            Ok(i) => i,
        };
        let closure = match Closure::parse(origin, b) {
            Err(e) => return Some(e.to_string()),
            Ok(c) => c,
        };
        // As the binary: a budget of 0 is an error there; a huge one is as good as the closure's size.
        let opts = Options { budget: input.budget.clamp(1, 1000), popular_threshold: input.popular_threshold, big_threshold: input.big_threshold };
        let layers = layering::group(&closure, &Popularity::none(), input.strategy, &opts).unwrap();
        assert_eq!(layers.iter().map(|l| l.contents.len()).sum::<usize>(), closure.len());
        None
    });
}

/// What `load-archive` reads back from the script `load-script` wrote.
#[test]
fn load_scripts() {
    fuzz("load-script", 10, |b| err(LoadScript::parse(Path::new("script"), b)));
}

/// An index's images: each manifest-output.json with the config it names (here a real one),
/// beside a real arm64 image, then the index of them.
#[test]
fn index_inputs() {
    let dir = common::repo().join("tests/fuzz-corpus");
    let config = fs::read(dir.join("image-config/amd64-oci.json")).unwrap();
    let arm = dir.join("index/arm64-oci.json");
    let arm_config = fs::read(dir.join("image-config/arm64-oci.json")).unwrap();
    fuzz("index", 11, |b| {
        let image = match index::Image::read(Path::new("fuzz.json"), b, |_| Ok(config.clone())) {
            Err(e) => return Some(e.to_string()),
            Ok(i) => i,
        };
        let other = index::Image::read(&arm, &fs::read(&arm).unwrap(), |_| Ok(arm_config.clone())).unwrap();
        match index::check_images(vec![image, other]) {
            Err(e) => Some(e.to_string()),
            Ok((format, images)) => {
                let bytes = index::index_bytes(format, &images);
                serde_json::from_slice::<serde_json::Value>(&bytes).unwrap();
                None
            }
        }
    });
}

/// The platform an index reads from each image's config.
#[test]
fn image_configs() {
    let dir = common::repo().join("tests/fuzz-corpus");
    let amd = fs::read(dir.join("index/amd64-oci.json")).unwrap();
    fuzz("image-config", 12, |b| err(index::Image::read(Path::new("fuzz.json"), &amd, |_| Ok(b.to_vec())).and_then(|i| index::check_images(vec![i]))));
}
