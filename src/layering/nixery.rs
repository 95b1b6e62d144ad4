//! The layering strategy of Nixery (2019) (its `group-layers`), kept so results stay comparable.
//!
//! 1. A synthetic root references the image's roots. Paths that are *popular* (popularity at least
//!    `popular_threshold`, 1000 by default) or *big* (closureSize above `big_threshold`, 100 MB)
//!    get a root edge too, so each stands in a layer of its own.
//! 2. In the dominator tree under that root, each child of the root and everything it dominates is
//!    one candidate layer. A path that two candidates reference is dominated by neither, so it
//!    becomes a candidate itself: shared paths are never duplicated.
//! 3. A candidate's rating is the popularity of its top path times the sum of the closureSize of
//!    all its paths (Nixery (2019)'s definition: it counts shared bytes many times, but the partition
//!    depends on it).
//! 4. While there are more candidates than the budget, the lowest-rated candidates fold together:
//!    sorted by rating, the first merges into the second, that into the third, and so on, until
//!    the count fits. The merged layer's rating is the sum of theirs.
//!
//! Where Nixery (2019) was nondeterministic (Go's map order and unstable sort), this is not: candidates
//! with equal ratings are ordered by their top path, in byte order, so ties at the merge boundary
//! are settled the same way every run. The output order, which Nixery (2019) left to chance, is:
//! most popular top path first (bottom of the image), then higher rating, then top path; the merged
//! layer, made of the least valuable candidates, is the top layer. A path the roots cannot reach,
//! which Nixery (2019) dropped, is a candidate of its own with reason `unreachable`.

use crate::graph::dominators::DomTree;
use crate::graph::{Closure, NodeId};
use crate::popularity::Popularity;

use super::{Layer, Options, Reason};

pub fn group(closure: &Closure, pop: &Popularity, opts: &Options) -> Vec<Layer> {
    let popularity: Vec<u64> = closure.nodes.iter().map(|n| pop.of(&n.path)).collect();
    let is_popular = |i: usize| popularity[i] >= opts.popular_threshold;
    let is_big = |i: usize| closure.nodes[i].closure_size > opts.big_threshold;
    let hoisted: Vec<NodeId> = (0..closure.len()).filter(|&i| is_popular(i) || is_big(i)).map(|i| i as NodeId).collect();
    let tree = DomTree::build(closure, &hoisted);
    let top = tree.top_of_each();

    // One candidate per child of the synthetic root; node order keeps contents sorted.
    let mut slot = vec![usize::MAX; closure.len()];
    let mut candidates: Vec<Layer> = Vec::new();
    for (v, &t) in top.iter().enumerate() {
        if slot[t as usize] == usize::MAX {
            slot[t as usize] = candidates.len();
            candidates.push(Layer {
                contents: Vec::new(),
                size: 0,
                rating: 0,
                top: t,
                reason: reason(closure, &tree, t, is_popular(t as usize), is_big(t as usize)),
                candidates: 1,
            });
        }
        let c = &mut candidates[slot[t as usize]];
        c.contents.push(v as NodeId);
        c.size += closure.nodes[v].nar_size;
        c.rating += u128::from(closure.nodes[v].closure_size);
    }
    for c in &mut candidates {
        c.rating *= u128::from(popularity[c.top as usize]);
    }

    candidates.sort_by(|a, b| a.rating.cmp(&b.rating).then_with(|| closure.path(a.top).cmp(closure.path(b.top))));
    let excess = candidates.len().saturating_sub(opts.budget);
    let mut layers = if excess > 0 {
        let rest = candidates.split_off(excess + 1);
        let folded = candidates;
        let mut merged = folded.last().expect("at least two candidates fold").clone();
        merged.contents = folded.iter().flat_map(|c| c.contents.iter().copied()).collect();
        merged.contents.sort_unstable();
        merged.size = folded.iter().map(|c| c.size).sum();
        merged.rating = folded.iter().map(|c| c.rating).sum();
        merged.reason = Reason::Merged;
        merged.candidates = folded.len();
        let mut layers = rest;
        layers.push(merged);
        layers
    } else {
        candidates
    };

    // Bottom first: most popular top, higher rating, then path; the merged layer last.
    layers.sort_by(|a, b| {
        (a.reason == Reason::Merged)
            .cmp(&(b.reason == Reason::Merged))
            .then_with(|| popularity[b.top as usize].cmp(&popularity[a.top as usize]))
            .then_with(|| b.rating.cmp(&a.rating))
            .then_with(|| closure.path(a.top).cmp(closure.path(b.top)))
    });
    layers
}

fn reason(closure: &Closure, tree: &DomTree, top: NodeId, popular: bool, big: bool) -> Reason {
    if closure.roots.binary_search(&top).is_ok() {
        Reason::Root
    } else if popular {
        Reason::Popular
    } else if big {
        Reason::Big
    } else if tree.unreachable.contains(&top) {
        Reason::Unreachable
    } else {
        Reason::Shared
    }
}
