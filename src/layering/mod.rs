//! Layering: deciding which store paths of a closure go into which image layer.
//!
//! A strategy takes a [`Closure`], [`Popularity`] data and [`Options`] (above all the layer
//! budget) and returns a list of [`Layer`]s, bottom layer first. Whatever the strategy, the result
//! obeys the same contract, checked by [`check_partition`] in tests:
//! - every path of the closure is in exactly one layer, including paths the roots cannot reach;
//! - there are at most `budget` layers, and none is empty;
//! - contents are sorted, and the output depends only on the set of inputs, never on their order.
//!
//! The strategies live in their own files: [`stable`], the default, makes layers that survive
//! updates (fewest bytes re-pulled, most sharing); [`nixery`] is the seed's algorithm (Nixery
//! 2019), kept so results stay comparable with the original.

pub mod baselines;
pub mod nixery;
pub mod sketch;
pub mod stable;

use std::fmt::Write as _;

use clap::ValueEnum;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::graph::{Closure, NodeId};
use crate::popularity::Popularity;

/// Why a layer stands on its own; shown by `--explain` and written into the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Its top path is one of the image's roots.
    Root,
    /// Its top path is referenced from several layers, so no single one of them owns it.
    Shared,
    /// Its top path's popularity reached the threshold, so it was hoisted to its own layer.
    Popular,
    /// Its top path is big, so it was hoisted to a layer of its own (nixery: its closure exceeded
    /// the size threshold; stable: it holds at least half an average layer's bytes).
    Big,
    /// No root references its top path; it is kept anyway, as a root of its own.
    Unreachable,
    /// Several candidate layers folded together to fit the budget.
    Merged,
    /// A single path kept in a layer of its own, because every merge would cost more re-pulled
    /// bytes than the budget forces (the `stable` strategy).
    Apart,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Root => "root",
            Reason::Shared => "shared",
            Reason::Popular => "hoisted: popular",
            Reason::Big => "hoisted: big",
            Reason::Unreachable => "unreachable",
            Reason::Merged => "merged",
            Reason::Apart => "apart",
        }
    }
}

/// One layer of the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Node ids in ascending order, which is byte order of the paths.
    pub contents: Vec<NodeId>,
    /// Sum of narSize over `contents`.
    pub size: u64,
    /// The strategy's rating (for nixery, the seed's merge rating).
    pub rating: u128,
    /// The path at the layer's top: the one that dominates the rest.
    pub top: NodeId,
    pub reason: Reason,
    /// How many candidate layers went into this one (1 unless merged).
    pub candidates: usize,
}

/// The layering strategies `group-layers` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// Layers that survive updates: fewest bytes re-pulled, most sharing (the default).
    Stable,
    /// The seed's algorithm (Nixery 2019): dominator-tree candidates, lowest-rated folded together.
    Nixery,
    /// For comparison: nixpkgs' referencesByPopularity (also nix2container's), rewritten.
    PopularityOrder,
    /// For comparison: nixpkgs' auto-layer (dockerTools' default since 2025), rewritten.
    AutoLayer,
}

/// Names come from clap's `ValueEnum` (kebab-case), so the flag, the builder attribute and the
/// logs agree.
impl Strategy {
    pub fn name(self) -> String {
        self.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
    }

    pub fn parse(origin: &str, s: &str) -> Result<Strategy> {
        <Strategy as clap::ValueEnum>::from_str(s, false).map_err(|_| {
            let known: Vec<String> = Strategy::value_variants().iter().map(|v| v.name()).collect();
            Error::Usage(format!("{origin}: unknown layering strategy `{s}` (known: {})", known.join(", ")))
        })
    }
}

/// Options shared by the strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Most layers the result may have (the seed passes maxLayers - 1).
    pub budget: usize,
    /// Popularity at which a path gets a layer of its own (the seed: 1000).
    pub popular_threshold: u64,
    /// closureSize above which a path gets a layer of its own (the seed: 100 MB, decimal).
    pub big_threshold: u64,
}

pub const DEFAULT_POPULAR_THRESHOLD: u64 = 1000;
pub const DEFAULT_BIG_THRESHOLD: u64 = 100 * 1000 * 1000;

impl Options {
    pub fn with_budget(budget: usize) -> Options {
        Options { budget, popular_threshold: DEFAULT_POPULAR_THRESHOLD, big_threshold: DEFAULT_BIG_THRESHOLD }
    }
}

/// Groups the closure into layers, bottom first.
pub fn group(closure: &Closure, pop: &Popularity, strategy: Strategy, opts: &Options) -> Result<Vec<Layer>> {
    if opts.budget < 1 {
        return Err(Error::Usage(format!("layer budget must be at least 1, not {}", opts.budget)));
    }
    if closure.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match strategy {
        Strategy::Stable => stable::group(closure, pop, opts),
        Strategy::Nixery => nixery::group(closure, pop, opts),
        Strategy::PopularityOrder => baselines::popularity_order(closure, opts),
        Strategy::AutoLayer => baselines::auto_layer(closure, opts),
    })
}

#[derive(Serialize)]
struct LayerJson<'a> {
    contents: Vec<&'a str>,
    size: u64,
    rating: u128,
    top: &'a str,
    reason: Reason,
    candidates: usize,
}

/// The program's output: `[{"contents": [...], "size": ..., ...}]`, bottom layer first.
pub fn to_json(closure: &Closure, layers: &[Layer]) -> Vec<u8> {
    let out: Vec<LayerJson> = layers
        .iter()
        .map(|l| LayerJson {
            contents: l.contents.iter().map(|&c| closure.path(c)).collect(),
            size: l.size,
            rating: l.rating,
            top: closure.path(l.top),
            reason: l.reason,
            candidates: l.candidates,
        })
        .collect();
    // Room for every path and its quotes up front: a 100k-path output otherwise grows and is
    // copied a dozen times.
    let room = closure.nodes.iter().map(|x| x.path.len() + 3).sum::<usize>() + 256 * (layers.len() + 1);
    let mut bytes = Vec::with_capacity(room);
    serde_json::to_writer(&mut bytes, &out).expect("layers serialise");
    bytes.push(b'\n');
    bytes
}

/// A readable table: one row per layer, bottom first, with why it stands alone.
pub fn explain(closure: &Closure, layers: &[Layer]) -> String {
    let mut s = String::new();
    let total: u64 = layers.iter().map(|l| l.size).sum();
    let _ = writeln!(s, "{} paths, {} in {} layers (bottom first)", closure.len(), human_size(total), layers.len());
    let _ = writeln!(s, "{:>5} {:>6} {:>10} {:>22}  {:<18} top", "layer", "paths", "size", "rating", "why");
    for (i, l) in layers.iter().enumerate() {
        let why = if l.reason == Reason::Merged {
            format!("merged ({})", l.candidates)
        } else {
            l.reason.describe().to_string()
        };
        let _ = writeln!(
            s,
            "{:>5} {:>6} {:>10} {:>22}  {:<18} {}",
            i + 1,
            l.contents.len(),
            human_size(l.size),
            l.rating,
            why,
            closure.path(l.top)
        );
    }
    s
}

/// Sizes as Nix prints them: binary units, one decimal.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// Checks the contract every strategy promises; returns what is wrong, if anything.
pub fn check_partition(closure: &Closure, layers: &[Layer], budget: usize) -> std::result::Result<(), String> {
    if layers.len() > budget {
        return Err(format!("{} layers exceed the budget of {budget}", layers.len()));
    }
    let mut seen = vec![false; closure.len()];
    for (i, l) in layers.iter().enumerate() {
        if l.contents.is_empty() {
            return Err(format!("layer {i} is empty"));
        }
        if !l.contents.windows(2).all(|w| w[0] < w[1]) {
            return Err(format!("layer {i} contents are not sorted"));
        }
        if l.size != l.contents.iter().map(|&c| closure.nar_size(c)).sum::<u64>() {
            return Err(format!("layer {i} size is not the sum of its narSizes"));
        }
        for &c in &l.contents {
            if std::mem::replace(&mut seen[c as usize], true) {
                return Err(format!("{} is in two layers", closure.path(c)));
            }
        }
    }
    match seen.iter().position(|s| !s) {
        Some(missing) => Err(format!("{} is in no layer", closure.path(missing as NodeId))),
        None => Ok(()),
    }
}

/// The dominator tree of a closure under a synthetic image root.
///
/// Path `d` dominates path `p` when every chain of references from the image root to `p` passes
/// through `d`: then `p` is in the image only because of `d`, and belongs with it. The synthetic
/// root references the image's roots and any `hoisted` paths; a path nothing reaches gets a root
/// edge too (the sources of the unreached part first), so that no path is ever lost.
pub(crate) struct DomTree {
    /// Immediate dominator of each node; `closure.len()` stands for the synthetic root.
    pub idom: Vec<u32>,
    /// Nodes that got a root edge only because nothing else reached them.
    pub unreachable: Vec<NodeId>,
}

impl DomTree {
    pub fn build(closure: &Closure, hoisted: &[NodeId]) -> DomTree {
        let mut root_edges: Vec<NodeId> = closure.roots.iter().chain(hoisted).copied().collect();
        root_edges.sort_unstable();
        root_edges.dedup();
        DomTree::with_root_edges(closure, root_edges)
    }

    /// The tree whose synthetic root references only the paths nothing references, whichever
    /// paths were named as roots: it depends on the set of paths alone.
    pub fn of_path_set(closure: &Closure) -> DomTree {
        DomTree::with_root_edges(closure, Vec::new())
    }

    fn with_root_edges(closure: &Closure, root_edges: Vec<NodeId>) -> DomTree {
        let n = closure.len();
        let tree_with = |unreachable: Vec<NodeId>| {
            let edges: Vec<NodeId> = root_edges.iter().chain(&unreachable).copied().collect();
            let succ = |v: u32| -> &[u32] {
                if v as usize == n { &edges } else { &closure.nodes[v as usize].references }
            };
            let idom = immediate_dominators(n + 1, n as u32, succ)?;
            Some(DomTree { idom: idom[..n].to_vec(), unreachable })
        };
        // Without named roots the paths nothing references reach everything, unless a reference
        // cycle (malformed input) hides some: only then is the slower search needed.
        if root_edges.is_empty()
            && let Some(tree) = tree_with(sources(closure))
        {
            return tree;
        }
        tree_with(unreached_sources(closure, &root_edges)).expect("every node reachable once unreached sources have root edges")
    }

    /// For each node, the child of the synthetic root whose subtree holds it.
    pub fn top_of_each(&self) -> Vec<NodeId> {
        let root = self.idom.len() as u32;
        let mut top = vec![u32::MAX; self.idom.len()];
        let mut chain = Vec::new();
        for v in 0..self.idom.len() {
            let mut x = v as u32;
            while top[x as usize] == u32::MAX {
                let d = self.idom[x as usize];
                if d == root {
                    top[x as usize] = x;
                    break;
                }
                chain.push(x);
                x = d;
            }
            let t = top[x as usize];
            for y in chain.drain(..) {
                top[y as usize] = t;
            }
        }
        top
    }
}

/// The nodes nothing references.
fn sources(closure: &Closure) -> Vec<NodeId> {
    let mut referenced = vec![false; closure.len()];
    closure.nodes.iter().flat_map(|x| &x.references).for_each(|&r| referenced[r as usize] = true);
    (0..closure.len() as NodeId).filter(|&i| !referenced[i as usize]).collect()
}

/// Nodes to give a root edge so that everything is reachable: the sources (no referrer) of the
/// unreached part, then, should a reference cycle hide the rest, its smallest node, until done.
fn unreached_sources(closure: &Closure, root_edges: &[NodeId]) -> Vec<NodeId> {
    let n = closure.len();
    let mut reached = vec![false; n];
    let mut stack: Vec<NodeId> = Vec::new();
    let visit = |from: &[NodeId], reached: &mut Vec<bool>, stack: &mut Vec<NodeId>| {
        stack.extend(from.iter().copied().filter(|&r| !reached[r as usize]));
        while let Some(x) = stack.pop() {
            if std::mem::replace(&mut reached[x as usize], true) {
                continue;
            }
            stack.extend(closure.nodes[x as usize].references.iter().copied().filter(|&r| !reached[r as usize]));
        }
    };
    visit(root_edges, &mut reached, &mut stack);
    if reached.iter().all(|&r| r) {
        return Vec::new();
    }
    let mut has_unreached_referrer = vec![false; n];
    for (i, node) in closure.nodes.iter().enumerate() {
        if !reached[i] {
            for &r in &node.references {
                has_unreached_referrer[r as usize] = true;
            }
        }
    }
    let mut extra: Vec<NodeId> = (0..n as u32).filter(|&i| !reached[i as usize] && !has_unreached_referrer[i as usize]).collect();
    visit(&extra.clone(), &mut reached, &mut stack);
    while let Some(first) = reached.iter().position(|r| !r) {
        extra.push(first as NodeId);
        visit(&[first as NodeId], &mut reached, &mut stack);
    }
    extra
}

/// Immediate dominators by Cooper, Harvey and Kennedy's iterative algorithm ("A Simple, Fast
/// Dominance Algorithm", 2001), on flat arrays: petgraph's version of the same algorithm keeps its
/// state in hash maps and took 190 ms of a 100k-path grouping here, this one takes a tenth of that.
/// `succ(v)` lists the successors of `v`; `None` if some node is not reachable from `root`. A
/// reference graph is acyclic, and then one pass in reverse postorder settles every node (its
/// predecessors all come before it); only a cycle, which the depth-first search notices, needs
/// passes until nothing changes.
pub(crate) fn immediate_dominators<'a>(count: usize, root: u32, succ: impl Fn(u32) -> &'a [u32]) -> Option<Vec<u32>> {
    const UNSET: u32 = u32::MAX;
    // Reverse postorder by an explicit-stack depth-first search.
    let mut postorder = Vec::with_capacity(count);
    // 0: not seen, 1: on the search's stack, 2: done.
    let mut state = vec![0u8; count];
    let mut cyclic = false;
    let mut stack: Vec<(u32, usize)> = vec![(root, 0)];
    state[root as usize] = 1;
    while let Some(&mut (v, ref mut next)) = stack.last_mut() {
        let s = succ(v);
        if let Some(&w) = s.get(*next) {
            *next += 1;
            match state[w as usize] {
                0 => {
                    state[w as usize] = 1;
                    stack.push((w, 0));
                }
                1 => cyclic = true,
                _ => {}
            }
        } else {
            state[v as usize] = 2;
            postorder.push(v);
            stack.pop();
        }
    }
    if postorder.len() != count {
        return None;
    }
    // Work in postorder numbers: a dominator always has a higher number than what it dominates.
    let mut number = vec![0u32; count];
    for (i, &v) in postorder.iter().enumerate() {
        number[v as usize] = i as u32;
    }
    let mut pred_start = vec![0u32; count + 1];
    for v in 0..count as u32 {
        for &w in succ(v) {
            pred_start[number[w as usize] as usize + 1] += 1;
        }
    }
    for i in 0..count {
        pred_start[i + 1] += pred_start[i];
    }
    let mut fill = pred_start.clone();
    let mut preds = vec![0u32; pred_start[count] as usize];
    for v in 0..count as u32 {
        for &w in succ(v) {
            let slot = &mut fill[number[w as usize] as usize];
            preds[*slot as usize] = number[v as usize];
            *slot += 1;
        }
    }
    let top = count as u32 - 1;
    let mut idom = vec![UNSET; count];
    idom[top as usize] = top;
    let mut changed = true;
    while changed {
        changed = false;
        for b in (0..top).rev() {
            let mut new = UNSET;
            for &p in &preds[pred_start[b as usize] as usize..pred_start[b as usize + 1] as usize] {
                if idom[p as usize] == UNSET {
                    continue;
                }
                new = if new == UNSET {
                    p
                } else {
                    let (mut x, mut y) = (p, new);
                    while x != y {
                        while x < y {
                            x = idom[x as usize];
                        }
                        while y < x {
                            y = idom[y as usize];
                        }
                    }
                    x
                };
            }
            if idom[b as usize] != new {
                idom[b as usize] = new;
                changed = true;
            }
        }
        changed &= cyclic;
    }
    let mut by_node = vec![0u32; count];
    for (i, &v) in postorder.iter().enumerate() {
        by_node[v as usize] = postorder[idom[i] as usize];
    }
    Some(by_node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Successor lists of `n` nodes from random pairs (lower to higher index when `acyclic`, so
    /// no cycles), and a root `n` with edges to every node nothing references (and to node 0).
    fn random_graph(n: usize, pairs: Vec<(usize, usize)>, acyclic: bool) -> Vec<Vec<u32>> {
        let mut succ: Vec<Vec<u32>> = vec![Vec::new(); n + 1];
        for (a, b) in pairs {
            let (a, b) = (a % n, b % n);
            let (from, to) = if acyclic { (a.max(b), a.min(b)) } else { (a, b) };
            if from != to && !succ[from].contains(&(to as u32)) {
                succ[from].push(to as u32);
            }
        }
        let referenced: Vec<bool> = (0..n).map(|i| succ.iter().any(|s| s.contains(&(i as u32)))).collect();
        succ[n] = (0..n as u32).filter(|&i| i == 0 || !referenced[i as usize]).collect();
        succ
    }

    /// petgraph's immediate dominators of every node but the root; `None` where unreachable.
    fn petgraph_dominators(succ: &[Vec<u32>]) -> Vec<Option<usize>> {
        use petgraph::graph::{DiGraph, NodeIndex};
        let n = succ.len() - 1;
        let mut g: DiGraph<(), ()> = DiGraph::new();
        for _ in 0..=n {
            g.add_node(());
        }
        for (v, s) in succ.iter().enumerate() {
            for &w in s {
                g.add_edge(NodeIndex::new(v), NodeIndex::new(w as usize), ());
            }
        }
        let theirs = petgraph::algo::dominators::simple_fast(&g, NodeIndex::new(n));
        (0..n).map(|v| theirs.immediate_dominator(NodeIndex::new(v)).map(|d| d.index())).collect()
    }

    proptest! {
        /// Our flat-array dominators agree with petgraph's on random DAGs under a root.
        #[test]
        fn dominators_match_petgraph(n in 1usize..60, pairs in prop::collection::vec((0usize..60, 0usize..60), 0..200)) {
            let succ = random_graph(n, pairs, true);
            let ours = immediate_dominators(n + 1, n as u32, |v| &succ[v as usize]).expect("all reachable");
            let theirs = petgraph_dominators(&succ);
            prop_assert_eq!(ours[..n].iter().map(|&d| Some(d as usize)).collect::<Vec<_>>(), theirs);
        }

        /// The same with reference cycles (malformed input, where one pass is not enough), and
        /// `None` exactly when a cycle leaves nodes unreachable from the root.
        #[test]
        fn dominators_match_petgraph_with_cycles(n in 1usize..40, pairs in prop::collection::vec((0usize..40, 0usize..40), 0..120)) {
            let succ = random_graph(n, pairs, false);
            let theirs = petgraph_dominators(&succ);
            match immediate_dominators(n + 1, n as u32, |v| &succ[v as usize]) {
                None => prop_assert!(theirs.iter().any(Option::is_none)),
                Some(ours) => prop_assert_eq!(ours[..n].iter().map(|&d| Some(d as usize)).collect::<Vec<_>>(), theirs),
            }
        }
    }
}
