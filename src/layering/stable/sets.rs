//! What each path depends on and what depends on it, as sets (see [`super::sketch`]), and the
//! per-path facts merges read beside them: weights from popularity, and ranks by name for
//! tie-breaks.

use crate::graph::{Closure, NodeId};
use crate::popularity::Popularity;

use super::sketch::{name_hash, SetTable, Universe, EXACT_LIMIT};
use super::BASE_WEIGHT;

/// Each node's merge-cost weight: [`BASE_WEIGHT`], plus the bit length of 1 + popularity (about
/// its log2) where the popularity data knows the name.
pub(super) fn weights(closure: &Closure, pop: &Popularity) -> Vec<u8> {
    // At most 4 + 64: a byte each keeps the tree phase's arrays small.
    let base = BASE_WEIGHT as u8;
    closure.nodes.iter().map(|x| pop.get(&x.path).map_or(base, |p| base + (64 - p.saturating_add(1).leading_zeros()) as u8)).collect()
}

/// Each node's rank in (name, path) order: the tie-break that survives renaming.
pub(super) fn name_rank(closure: &Closure, names: &[&str]) -> Vec<u32> {
    // The first 16 bytes of a name, zero-padded, as one integer: where two of them differ they
    // order the names as the bytes do, so the string comparisons are left to equal prefixes
    // (half the sort's time on large closures).
    let prefix = |name: &str| {
        let mut head = [0u8; 16];
        let n = name.len().min(16);
        head[..n].copy_from_slice(&name.as_bytes()[..n]);
        u128::from_be_bytes(head)
    };
    let mut order: Vec<(u128, u32)> = names.iter().enumerate().map(|(i, name)| (prefix(name), i as u32)).collect();
    order.sort_unstable_by(|&(pa, a), &(pb, b)| {
        pa.cmp(&pb).then_with(|| names[a as usize].cmp(names[b as usize])).then_with(|| closure.path(a).cmp(closure.path(b)))
    });
    let mut rank = vec![0; closure.len()];
    for (r, &(_, i)) in order.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    rank
}

/// Hashes of the names; paths sharing a name get distinct hashes by their order among themselves.
pub(super) fn name_hashes(names: &[&str]) -> Vec<u64> {
    let mut seen = rustc_hash::FxHashMap::<&str, u32>::default();
    names
        .iter()
        .map(|&name| {
            let k = seen.entry(name).or_insert(0);
            *k += 1;
            if *k == 1 { name_hash(name.as_bytes()) } else { name_hash(format!("{name}#{k}").as_bytes()) }
        })
        .collect()
}

/// [`closure_sets`] and the size of each.
pub(super) fn sets_and_counts(edges: &[&[NodeId]], hashes: &[u64], universe: Universe) -> (SetTable, Vec<u64>) {
    let sets = closure_sets(edges, hashes, universe);
    let counts = (0..edges.len()).map(|i| universe.count(sets.get(i))).collect();
    (sets, counts)
}

/// For each node, the set of nodes reachable from it through `edges` (itself included), built
/// from the far end: with references, each path's closure; with referrers, its dependents.
pub(super) fn closure_sets(edges: &[&[NodeId]], hashes: &[u64], universe: Universe) -> SetTable {
    let n = edges.len();
    let mut sets = SetTable::new(n, universe);
    // Depth-first from every node; `entered` marks nodes on the way down, so a reference cycle
    // (malformed input) is cut instead of followed forever.
    let mut entered = vec![false; n];
    let mut stack: Vec<(u32, bool)> = Vec::new();
    let (mut out, mut tmp, mut own) = (Vec::new(), Vec::new(), Vec::new());
    for start in 0..n as u32 {
        stack.push((start, false));
        while let Some((x, expanded)) = stack.pop() {
            if sets.contains(x as usize) {
                continue;
            }
            if expanded {
                // Inside a cycle a neighbour is still unfinished: it is skipped.
                let children = edges[x as usize].iter().filter(|&&r| sets.contains(r as usize)).map(|&r| sets.get(r as usize));
                universe.singleton_into(&mut own, x as usize, hashes[x as usize]);
                universe.union_all_into(&mut out, &own, children, &mut tmp);
                sets.insert(x as usize, &out);
            } else if !std::mem::replace(&mut entered[x as usize], true) {
                stack.push((x, true));
                stack.extend(edges[x as usize].iter().filter(|&&r| !entered[r as usize]).map(|&r| (r, false)));
            }
        }
    }
    debug_assert!(n <= EXACT_LIMIT || universe == Universe::Sketched);
    sets
}
