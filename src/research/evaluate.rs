//! Judging a layering by the bytes it makes clients and registries move and store.
//!
//! - **Update re-pull, blob level.** Pick a package `v`; it and every path depending on it get new
//!   store paths (same names, new hashes). Group the new closure and count the bytes of the new
//!   layers whose exact set of paths was not a layer before: a registry client downloads those.
//! - **Update re-pull, chain level.** Classic Docker identifies a layer by itself and all layers
//!   below it: a layer is reused only if it and every layer below it are unchanged, position by
//!   position. Here layer order matters.
//! - **Floor.** The bytes of the changed paths themselves, which no layering can avoid; and for
//!   chain reuse, the chain floor of [`super::chain_floor`], which no layering in any order can
//!   go below.
//! - **Registry storage.** A family of images built from the same package set: the image itself,
//!   and images whose roots are 1 to 4 random packages of its closure (paths that reference
//!   something), as a Nixery-style registry serves images of any combination of packages.
//!   Storage is the bytes of distinct layers across the family divided by the bytes of the union
//!   of their closures; 1.0 is perfect sharing. (`top_level` gives the other reading of "top-level
//!   packages", the roots and what they reference; `layer-eval measure --family top-level`.)
//!
//! Re-pulls are shares of the image's bytes, averaged over sampled packages (mean and 90th
//! percentile). Everything is seeded: the same inputs give the same report.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::graph::{Closure, Node, NodeId};
use crate::layering::{self, Layer, Options, Strategy};
use crate::popularity::Popularity;
use crate::graph::name_of;

use super::synth::Rng;

/// Mean and 90th percentile of a share.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub p90: f64,
}

impl Stat {
    fn of(mut v: Vec<f64>) -> Stat {
        if v.is_empty() {
            return Stat { mean: 0.0, p90: 0.0 };
        }
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let p90 = v[(v.len() * 9).div_ceil(10) - 1];
        Stat { mean, p90 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub strategy: String,
    pub budget: usize,
    pub layers: usize,
    pub samples: usize,
    pub blob: Stat,
    pub chain: Stat,
    pub floor: Stat,
    /// The least chain re-pull any layering could reach for the same updates (see
    /// [`super::chain_floor`]); `None` above its size limit.
    pub chain_floor: Option<f64>,
    pub images: usize,
    pub storage: f64,
}

/// How many updates and images to try, and the seed that picks them.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub samples: usize,
    pub images: usize,
    pub seed: u64,
    pub family: Family,
}

/// How the images of the storage family choose their roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// 1 to 4 random packages of the closure (paths that reference something).
    Packages,
    /// Random non-empty subsets of the top-level packages (see [`top_level`]).
    TopLevel,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Packages, Family::TopLevel];

    pub fn name(self) -> &'static str {
        match self {
            Family::Packages => "packages",
            Family::TopLevel => "top-level",
        }
    }
}

/// A report for each strategy, all on the same sampled updates and image family.
pub fn evaluate(closure: &Closure, pop: &Popularity, strategies: &[Strategy], opts: &Options, plan: &Plan) -> Result<Vec<Report>> {
    let mut rng = Rng::new(plan.seed);
    let mut candidates: Vec<NodeId> = (0..closure.len() as NodeId).collect();
    shuffle(&mut candidates, &mut rng);
    candidates.truncate(plan.samples);
    // The chain floor depends on the closure and the updates only: computed once for all.
    let mut updated = vec![false; closure.len()];
    candidates.iter().for_each(|&v| updated[v as usize] = true);
    let chain_floor = super::chain_floor::chain_floor(closure, &updated);
    strategies.iter().map(|&s| evaluate_strategy(closure, pop, s, opts, plan, &candidates, chain_floor)).collect()
}

fn evaluate_strategy(
    closure: &Closure,
    pop: &Popularity,
    strategy: Strategy,
    opts: &Options,
    plan: &Plan,
    candidates: &[NodeId],
    chain_floor: Option<f64>,
) -> Result<Report> {
    let base = layering::group(closure, pop, strategy, opts)?;
    let before: Vec<Vec<&str>> = base.iter().map(|l| paths(closure, l)).collect();
    let known: HashSet<&Vec<&str>> = before.iter().collect();
    let total = closure.total_size().max(1) as f64;
    let referrers = closure.referrers();
    let (mut blob, mut chain, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for &v in candidates {
        let changed = closure.dependents_of(&referrers, v);
        let after_closure = renamed(closure, &changed, plan.seed ^ u64::from(v));
        let after = layering::group(&after_closure, pop, strategy, opts)?;
        let mut new_bytes = 0;
        let mut chain_bytes = 0;
        let mut intact = true;
        for (i, l) in after.iter().enumerate() {
            let set = paths(&after_closure, l);
            if !known.contains(&set) {
                new_bytes += l.size;
            }
            intact = intact && before.get(i) == Some(&set);
            if !intact {
                chain_bytes += l.size;
            }
        }
        blob.push(new_bytes as f64 / total);
        chain.push(chain_bytes as f64 / total);
        let changed_bytes: u64 = changed.iter().enumerate().filter(|&(_, &c)| c).map(|(i, _)| closure.nodes[i].nar_size).sum();
        floor.push(changed_bytes as f64 / total);
    }

    let storage = family_storage(closure, pop, strategy, opts, plan, &base)?;
    Ok(Report {
        strategy: strategy.name().to_string(),
        budget: opts.budget,
        layers: base.len(),
        samples: candidates.len(),
        blob: Stat::of(blob),
        chain: Stat::of(chain),
        floor: Stat::of(floor),
        chain_floor,
        images: plan.images.max(1),
        storage,
    })
}

fn family_storage(closure: &Closure, pop: &Popularity, strategy: Strategy, opts: &Options, plan: &Plan, base: &[Layer]) -> Result<f64> {
    let mut rng = Rng::new(plan.seed ^ 0x5707_a6e5);
    let top = top_level(closure, 8);
    let apps: Vec<NodeId> = (0..closure.len() as NodeId).filter(|&i| !closure.nodes[i as usize].references.is_empty()).collect();
    let mut distinct: HashMap<Vec<String>, u64> = HashMap::new();
    let mut union = vec![false; closure.len()];
    let mut add = |c: &Closure, layers: &[Layer], ids: &[NodeId], distinct: &mut HashMap<Vec<String>, u64>| {
        for l in layers {
            distinct.insert(paths(c, l).into_iter().map(str::to_owned).collect(), l.size);
        }
        for &i in ids {
            union[i as usize] = true;
        }
    };
    let all: Vec<NodeId> = (0..closure.len() as NodeId).collect();
    add(closure, base, &all, &mut distinct);
    for _ in 1..plan.images.max(1) {
        let mut roots: Vec<NodeId> = match plan.family {
            Family::Packages if !apps.is_empty() => (0..1 + rng.below(4)).map(|_| apps[rng.below(apps.len())]).collect(),
            // Each top-level package in with probability 1/2, at least one.
            Family::TopLevel if !top.is_empty() => top.iter().copied().filter(|_| rng.below(2) == 0).collect(),
            _ => break,
        };
        if roots.is_empty() {
            roots.push(top[rng.below(top.len())]);
        }
        roots.sort_unstable();
        roots.dedup();
        let (image, ids) = sub_closure(closure, &roots);
        let layers = layering::group(&image, pop, strategy, opts)?;
        add(&image, &layers, &ids, &mut distinct);
    }
    let union_bytes: u64 = union.iter().enumerate().filter(|&(_, &u)| u).map(|(i, _)| closure.nodes[i].nar_size).sum();
    Ok(distinct.values().sum::<u64>() as f64 / union_bytes.max(1) as f64)
}

/// The roots, then breadth-first the paths they reference, until there are at least `at_least`.
pub fn top_level(closure: &Closure, at_least: usize) -> Vec<NodeId> {
    let mut seen = vec![false; closure.len()];
    let mut level: Vec<NodeId> = closure.roots.clone();
    let mut out = Vec::new();
    while !level.is_empty() && out.len() < at_least {
        let mut next = Vec::new();
        for &x in &level {
            if !std::mem::replace(&mut seen[x as usize], true) {
                out.push(x);
                next.extend(closure.nodes[x as usize].references.iter().copied());
            }
        }
        next.sort_unstable();
        next.dedup();
        level = next;
    }
    out.sort_unstable();
    out
}

fn paths<'a>(c: &'a Closure, l: &Layer) -> Vec<&'a str> {
    l.contents.iter().map(|&i| c.path(i)).collect()
}

fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
}

/// The closure after a rebuild of the `changed` paths: same names and sizes, new hashes.
pub fn renamed(closure: &Closure, changed: &[bool], salt: u64) -> Closure {
    const ALPHABET: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";
    let paths: Vec<String> = closure
        .nodes
        .iter()
        .zip(changed)
        .map(|(n, &c)| {
            if !c {
                return n.path.clone();
            }
            let mut rng = Rng::new(salt ^ crate::layering::stable::sketch::name_hash(n.path.as_bytes()));
            let hash: String = (0..32).map(|_| ALPHABET[rng.below(32)] as char).collect();
            let dir = n.path.rfind('/').map_or("", |i| &n.path[..i]);
            format!("{dir}/{hash}-{}", name_of(&n.path))
        })
        .collect();
    reindex(closure, paths, &(0..closure.len() as NodeId).collect::<Vec<_>>(), closure.roots.clone())
}

/// The image whose roots are `roots`: their closure, and the ids it had in `closure`.
pub fn sub_closure(closure: &Closure, roots: &[NodeId]) -> (Closure, Vec<NodeId>) {
    let keep = closure.closure_of(roots);
    let ids: Vec<NodeId> = (0..closure.len() as NodeId).filter(|&i| keep[i as usize]).collect();
    let paths = ids.iter().map(|&i| closure.path(i).to_string()).collect();
    (reindex(closure, paths, &ids, roots.to_vec()), ids)
}

/// A closure of the nodes `ids` of `closure` (closed under references), with new `paths`, one per id.
fn reindex(closure: &Closure, paths: Vec<String>, ids: &[NodeId], roots: Vec<NodeId>) -> Closure {
    let mut position = vec![NodeId::MAX; closure.len()];
    for (k, &id) in ids.iter().enumerate() {
        position[id as usize] = k as NodeId;
    }
    let nodes = ids
        .iter()
        .zip(paths)
        .map(|(&id, path)| {
            let old = &closure.nodes[id as usize];
            let references = old.references.iter().map(|&r| position[r as usize]).collect();
            Node { path, nar_size: old.nar_size, closure_size: old.closure_size, references }
        })
        .collect();
    let roots: Vec<NodeId> = roots.iter().map(|&r| position[r as usize]).collect();
    Closure::from_indexed(nodes, &roots)
}

/// The report as a Markdown table row: strategy, layers, blob mean / p90, chain mean, storage.
pub fn markdown_row(r: &Report) -> String {
    format!(
        "| {} | {} | {:.1}% / {:.1}% | {:.1}% | {:.2} | {:.1}% / {:.1}% | {} |",
        r.strategy,
        r.layers,
        100.0 * r.blob.mean,
        100.0 * r.blob.p90,
        100.0 * r.chain.mean,
        r.storage,
        100.0 * r.floor.mean,
        100.0 * r.floor.p90,
        r.chain_floor.map_or("—".to_string(), |f| format!("{:.1}%", 100.0 * f))
    )
}

pub const MARKDOWN_HEADER: &str =
    "| strategy | layers | re-pull blob mean / p90 | re-pull chain mean | storage | floor mean / p90 | chain floor |\n|---|---|---|---|---|---|---|";
