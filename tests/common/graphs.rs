//! Graphs for the layering tests: written out by hand, or random in the shapes Nix produces.
#![allow(dead_code)]

use nix_image_layers::graph::{name_of, Closure};
use nix_image_layers::layering::{self, check_partition, Layer, Options, Strategy};
use nix_image_layers::popularity::Popularity;
use nix_image_layers::research::synth;

use super::sp;

/// A closure from `(name, narSize, [references])`; roots are the paths nothing references.
pub fn closure(spec: &[(&str, u64, &[&str])]) -> Closure {
    let names: Vec<&str> = spec.iter().map(|s| s.0).collect();
    let refs = spec
        .iter()
        .map(|s| s.2.iter().map(|r| names.iter().position(|n| n == r).expect("known name") as u32).collect())
        .collect();
    synth::from_parts(spec.iter().map(|s| sp(s.0)).collect(), spec.iter().map(|s| s.1).collect(), refs)
}

/// Layers as lists of names, bottom first.
pub fn names(c: &Closure, layers: &[Layer]) -> Vec<Vec<String>> {
    layers
        .iter()
        .map(|l| {
            let mut v: Vec<String> =
                l.contents.iter().map(|&i| name_of(c.path(i)).to_string()).collect();
            v.sort();
            v
        })
        .collect()
}

/// A random DAG in `.attrs.json` shape, written in an order chosen by `perm` seeds.
pub fn attrs_json(c: &Closure, seed: u64) -> Vec<u8> {
    let mut rng = synth::Rng::new(seed);
    let mut shuffle = |v: &mut Vec<serde_json::Value>| {
        for i in (1..v.len()).rev() {
            v.swap(i, rng.below(i + 1));
        }
    };
    let mut j = c.to_attrs_json();
    let mut graph = j["graph"].as_array().unwrap().clone();
    for e in graph.iter_mut() {
        let mut refs = e["references"].as_array().unwrap().clone();
        shuffle(&mut refs);
        e["references"] = refs.into();
    }
    shuffle(&mut graph);
    let mut roots = j["exportReferencesGraph"]["graph"].as_array().unwrap().clone();
    shuffle(&mut roots);
    j["graph"] = graph.into();
    j["exportReferencesGraph"]["graph"] = roots.into();
    serde_json::to_vec(&j).unwrap()
}

/// A random graph: `edges` reference from the higher index to the lower, and each of
/// `back_edges` from the lower to the higher, closing a reference cycle with any path of
/// `edges` it meets (Nix never makes one, but a malformed graph may hold one).
pub fn random_closure(n: usize, edges: &[(usize, usize)], back_edges: &[(usize, usize)], sizes: &[u64], roots: &[usize]) -> Closure {
    let mut refs = vec![Vec::new(); n];
    for (&(a, b), back) in edges.iter().map(|e| (e, false)).chain(back_edges.iter().map(|e| (e, true))) {
        let (hi, lo) = ((a % n).max(b % n), (a % n).min(b % n));
        let (from, to) = if back { (lo, hi) } else { (hi, lo) };
        if from != to {
            refs[from].push(to as u32);
        }
    }
    let mut c = synth::from_parts((0..n).map(|i| sp(&format!("p{i}"))).collect(), (0..n).map(|i| sizes[i % sizes.len()]).collect(), refs);
    // Arbitrary roots, so some paths may be unreachable; the contract must hold anyway.
    c.roots = roots.iter().map(|&r| (r % n) as u32).collect();
    c.roots.sort_unstable();
    c.roots.dedup();
    c
}

/// A random DAG whose roots are the paths nothing references, as Nix's graphs are.
pub fn source_rooted_dag(n: usize, edges: &[(usize, usize)], sizes: &[u64]) -> Closure {
    let mut refs = vec![Vec::new(); n];
    for &(a, b) in edges {
        let (a, b) = (a % n, b % n);
        if a != b {
            refs[a.max(b)].push(a.min(b) as u32);
        }
    }
    synth::from_parts((0..n).map(|i| sp(&format!("p{i}"))).collect(), (0..n).map(|i| sizes[i % sizes.len()]).collect(), refs)
}

/// `count` packages of 1 MB, each with 13 libraries of 1 KB of its own, and an application on
/// top referencing every package: 14 × count + 1 paths.
pub fn packages_with_libraries(count: usize) -> Closure {
    let (mut paths, mut sizes, mut refs) = (Vec::new(), Vec::new(), Vec::new());
    for p in 0..count {
        let first = paths.len() as u32;
        for l in 0..13 {
            paths.push(sp(&format!("lib-{p:02}-{l:02}")));
            sizes.push(1_000);
            refs.push(vec![]);
        }
        paths.push(sp(&format!("pkg-{p:02}")));
        sizes.push(1_000_000);
        refs.push((first..first + 13).collect());
    }
    let packages = (0..count as u32).map(|p| p * 14 + 13).collect();
    paths.push(sp("app"));
    sizes.push(10);
    refs.push(packages);
    synth::from_parts(paths, sizes, refs)
}

/// Popularity for the random graphs' names: `p{i}` counts `counts[i]`.
pub fn popularity(counts: &[u64]) -> Popularity {
    Popularity::from_counts(counts.iter().enumerate().map(|(i, &p)| (format!("p{i}"), p)))
}

/// Two roots: app (libA, data) and tool (libB); both libraries reference glibc. Closure sizes:
/// glibc 100, libA 110, libB 120, data 1, app 116, tool 122.
pub const DIAMOND: &[(&str, u64, &[&str])] = &[
    ("glibc", 100, &[]),
    ("libA", 10, &["glibc"]),
    ("libB", 20, &["glibc"]),
    ("data", 1, &[]),
    ("app", 5, &["libA", "data"]),
    ("tool", 2, &["libB"]),
];

/// The layers of `c` by `strategy`, after the contract's partition check.
pub fn grouped(c: &Closure, pop: &Popularity, strategy: Strategy, opts: &Options) -> Vec<Layer> {
    let layers = layering::group(c, pop, strategy, opts).unwrap();
    check_partition(c, &layers, opts.budget).unwrap();
    layers
}
