//! Synthetic closures shaped like nixpkgs, for benchmarks, property tests and layering evaluation.
//!
//! Real closures have a recognisable shape, and layering quality depends on it: a handful of
//! small libraries (glibc, zlib, ...) referenced by almost everything; sizes with a heavy tail
//! (most paths are kilobytes, a few are hundreds of megabytes); many leaves (data, fonts, scripts)
//! that reference nothing; and a few applications on top that pull in long chains. The generator
//! builds nodes bottom-up, so node `i` only references nodes below it (a DAG, like a store), and
//! picks references by preferential attachment, so popular paths get more popular. It is a pure
//! function of its parameters: the same seed gives the same graph on every machine.

use crate::graph::{Closure, Node, NodeId};
use crate::popularity::Popularity;

/// A small, fast, portable random generator (SplitMix64): no platform or crate version changes it.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Parameters of a synthetic closure.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub paths: usize,
    pub seed: u64,
    /// Number of very popular base libraries at the bottom.
    pub core: usize,
    /// Share of paths that reference nothing.
    pub leaf_share: f64,
    /// Mean number of references of a non-leaf path.
    pub mean_refs: f64,
}

impl Shape {
    pub fn nixpkgs(paths: usize, seed: u64) -> Shape {
        Shape { paths, seed, core: (paths / 200).clamp(3, 40), leaf_share: 0.3, mean_refs: 4.0 }
    }
}

/// Store-path-like name for node `i`: a 32-character base32 hash and a package name.
pub fn store_path(seed: u64, i: usize, name: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";
    let mut r = Rng::new(seed.wrapping_mul(1_000_003) ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let hash: String = (0..32).map(|_| ALPHABET[r.below(32)] as char).collect();
    format!("/nix/store/{hash}-{name}")
}

/// Generates a closure of `shape.paths` paths; the roots are the few paths nothing references.
pub fn generate(shape: &Shape) -> Closure {
    let n = shape.paths;
    let mut rng = Rng::new(shape.seed);
    let mut weight: Vec<f64> = Vec::with_capacity(n);
    let mut refs: Vec<Vec<NodeId>> = Vec::with_capacity(n);
    let mut sizes = Vec::with_capacity(n);
    for i in 0..n {
        let mut mine: Vec<NodeId> = Vec::new();
        let is_core = i < shape.core;
        let leaf = !is_core && rng.unit() < shape.leaf_share;
        if i > 0 && !leaf {
            // Core libraries reference one or two of the ones below; others reference the core
            // often and the rest by preferential attachment.
            let k = if is_core { 1 + rng.below(2) } else { 1 + (rng.unit().max(1e-9).ln() * -shape.mean_refs) as usize };
            for _ in 0..k.min(i) {
                let pick = if !is_core && rng.unit() < 0.5 {
                    rng.below(shape.core.min(i))
                } else {
                    pick_weighted(&weight, &mut rng)
                };
                mine.push(pick as NodeId);
            }
            mine.sort_unstable();
            mine.dedup();
        }
        for &r in &mine {
            weight[r as usize] += 1.0;
        }
        weight.push(1.0);
        refs.push(mine);
        // Heavy-tailed sizes: core libraries small to medium, everything else log-normal.
        let mu = if is_core { 13.0 } else { 10.5 };
        sizes.push((mu + 2.2 * rng.normal()).exp().clamp(200.0, 2.0e9) as u64);
    }
    // An image has a few roots (the applications asked for) and everything else is reachable:
    // a path nothing references becomes a dependency of a random path above it, unless it is
    // one of the top `apps` paths.
    let apps = (n / 400).clamp(1, 30);
    let mut referenced = vec![false; n];
    for r in refs.iter().flatten() {
        referenced[*r as usize] = true;
    }
    for (i, _) in referenced.iter().enumerate().take(n.saturating_sub(apps)).filter(|&(_, &r)| !r) {
        let j = i + 1 + rng.below(n - i - 1);
        refs[j].push(i as NodeId);
    }
    let names: Vec<String> =
        (0..n).map(|i| store_path(shape.seed, i, &format!("{}-{}.{}", if i < shape.core { "lib" } else { "pkg" }, i, i % 7))).collect();
    from_parts(names, sizes, refs)
}

/// Assembles a closure from names, narSizes and references by index, computing closure sizes;
/// the roots are the nodes nothing references. Used by the generator and by hand-made test graphs.
pub fn from_parts(paths: Vec<String>, nar_sizes: Vec<u64>, refs: Vec<Vec<NodeId>>) -> Closure {
    let mut referenced = vec![false; paths.len()];
    for (i, r) in refs.iter().enumerate() {
        for &x in r {
            if x as usize != i {
                referenced[x as usize] = true;
            }
        }
    }
    let roots: Vec<NodeId> = (0..paths.len() as NodeId).filter(|&i| !referenced[i as usize]).collect();
    let nodes = paths
        .into_iter()
        .zip(nar_sizes)
        .zip(refs)
        .map(|((path, nar_size), references)| Node { path, nar_size, closure_size: 0, references })
        .collect();
    let mut closure = Closure::from_indexed(nodes, &roots);
    let sizes = closure_sizes(&closure.nodes);
    for (node, s) in closure.nodes.iter_mut().zip(sizes) {
        node.closure_size = s;
    }
    closure
}

/// Sum of narSize over each node's closure (itself included), with a visit stamp per node.
pub fn closure_sizes(nodes: &[Node]) -> Vec<u64> {
    let mut stamp = vec![usize::MAX; nodes.len()];
    let mut stack = Vec::new();
    (0..nodes.len())
        .map(|start| {
            let mut sum = 0;
            stack.push(start);
            stamp[start] = start;
            while let Some(x) = stack.pop() {
                sum += nodes[x].nar_size;
                for &r in &nodes[x].references {
                    if stamp[r as usize] != start {
                        stamp[r as usize] = start;
                        stack.push(r as usize);
                    }
                }
            }
            sum
        })
        .collect()
}

/// Popularity as Nixery counts it (each reference adds one to the referenced name), keeping
/// names with a count above 1 and, to be realistic, only a `coverage` share of them.
pub fn popularity(closure: &Closure, coverage: f64, seed: u64) -> Popularity {
    let mut rng = Rng::new(seed ^ 0x0070_6f70);
    let referrers = closure.referrers();
    Popularity::from_counts(closure.nodes.iter().zip(&referrers).filter_map(|(node, by)| {
        let count = by.len() as u64 + 1;
        let keep = count > 1 && rng.unit() < coverage;
        keep.then(|| (crate::graph::name_of(&node.path).to_string(), count))
    }))
}

fn pick_weighted(weight: &[f64], rng: &mut Rng) -> usize {
    // Linear scans are too slow for 100k paths: sample a few uniform candidates and keep the
    // heaviest, which approximates preferential attachment with a tunable bias.
    let mut best = rng.below(weight.len());
    for _ in 0..3 {
        let c = rng.below(weight.len());
        if weight[c] > weight[best] {
            best = c;
        }
    }
    best
}
