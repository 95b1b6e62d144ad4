//! Big paths held apart: the paths that keep a layer of their own whatever the budget.

use std::cmp::Reverse;

use crate::graph::{Closure, NodeId};

use super::costs::rounded;
use super::PAIRWISE_LIMIT;

/// The paths that keep a layer of their own: those of at least half an average layer (rounded
/// sizes, see [`rounded`]), the largest first (ties by name), at most the square root of the
/// budget and a quarter of it, so that the rest of the closure keeps most of the layers: each
/// path held apart forces one more merge elsewhere, and in images a few paths apart forced merges
/// are where their layers start to differ.
///
/// Closures the tree phase reduces first (over [`PAIRWISE_LIMIT`] paths) hold more apart: paths
/// of at least an eighth of an average layer, at most half the budget. The tree phase has no
/// alone part (see [`super::ALONE_PATHS`]), so there mid-size paths would go into their
/// dominators' groups while the smaller images of the same packages, which skip that phase, keep
/// them alone, and each such path would be stored twice. Below the limit the pairwise phase's
/// alone part does this work. Measured effects: docs/evaluation.md.
pub(super) fn big_paths(closure: &Closure, rank: &[u32], budget: usize) -> Vec<bool> {
    let size = |i: NodeId| u128::from(rounded(closure.nar_size(i)));
    let total: u128 = (0..closure.len() as NodeId).map(size).sum();
    let root = (1..).find(|k: &usize| k * k >= budget).expect("a square root");
    let (share, most) = if closure.len() > PAIRWISE_LIMIT { (8, budget / 2) } else { (2, root.min(budget / 4)) };
    let mut big: Vec<NodeId> = (0..closure.len() as NodeId).filter(|&i| size(i) * share * budget as u128 >= total).collect();
    big.sort_unstable_by_key(|&i| (Reverse(size(i)), rank[i as usize]));
    big.truncate(most);
    let mut is_big = vec![false; closure.len()];
    for i in big {
        is_big[i as usize] = true;
    }
    is_big
}
