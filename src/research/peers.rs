//! Other tools' layering strategies, rewritten from their published descriptions so that
//! `layer-eval` can compare ours against them on any closure. Not for building images.
//!
//! - [`popularity_order`]: nixpkgs' `referencesByPopularity` (also nix2container's): paths ranked
//!   by how many paths depend on them, the first `budget - 1` each in a layer of its own, all the
//!   rest in one last layer.
//! - [`auto_layer`]: nixpkgs' auto-layer (dockerTools' default since 2025, NixOS/nixpkgs#355189):
//!   the largest paths by narSize become layer identities ("primaries") one by one; every other
//!   path joins the layer of the set of nearest primaries that use it (or of the roots, when it is
//!   used without going through any primary); primaries are added while the number of distinct
//!   sets fits the budget. Layers ordered by closure size, smallest first.

use std::collections::BTreeMap;

use crate::graph::{name_of, Closure, NodeId};
use crate::layering::{Layer, Options, Reason};

fn by_name(closure: &Closure, a: NodeId, b: NodeId) -> std::cmp::Ordering {
    name_of(closure.path(a)).cmp(name_of(closure.path(b))).then_with(|| closure.path(a).cmp(closure.path(b)))
}

fn layer(closure: &Closure, mut contents: Vec<NodeId>, top: NodeId, reason: Reason, rating: u128) -> Layer {
    contents.sort_unstable();
    let size = contents.iter().map(|&c| closure.nar_size(c)).sum();
    Layer { contents, size, rating, top, reason, candidates: 1 }
}

pub fn popularity_order(closure: &Closure, opts: &Options) -> Vec<Layer> {
    let pop = closure.dependent_counts();
    let mut order: Vec<NodeId> = (0..closure.len() as u32).collect();
    order.sort_by(|&a, &b| pop[b as usize].cmp(&pop[a as usize]).then_with(|| by_name(closure, a, b)));
    let singles = order.len().min(opts.budget - 1);
    let mut layers: Vec<Layer> =
        order[..singles].iter().map(|&p| layer(closure, vec![p], p, Reason::Popular, u128::from(pop[p as usize]))).collect();
    if singles < order.len() {
        let rest = order[singles..].to_vec();
        let top = rest[rest.len() - 1];
        let mut l = layer(closure, rest, top, Reason::Merged, 0);
        l.candidates = order.len() - singles;
        layers.push(l);
    }
    layers
}

pub fn auto_layer(closure: &Closure, opts: &Options) -> Vec<Layer> {
    const ROOTS: u32 = u32::MAX;
    let n = closure.len();
    let mut by_size: Vec<NodeId> = (0..n as u32).collect();
    by_size.sort_by(|&a, &b| closure.nar_size(b).cmp(&closure.nar_size(a)).then_with(|| by_name(closure, a, b)));
    let is_root = {
        let mut v = vec![false; n];
        for &r in &closure.roots {
            v[r as usize] = true;
        }
        // Paths nothing references are roots too, so that every path is reached.
        for s in closure.sources() {
            v[s as usize] = true;
        }
        v
    };
    // Each path's key: the nearest primaries using it, and ROOTS if used around all primaries.
    let keys_for = |primary: &[bool]| -> Vec<Vec<u32>> {
        let mut keys: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut seen = vec![u32::MAX; n];
        let sources: Vec<(u32, Vec<NodeId>)> = (0..n as u32)
            .filter(|&p| primary[p as usize])
            .map(|p| (p, closure.nodes[p as usize].references.clone()))
            .chain(std::iter::once((ROOTS, (0..n as u32).filter(|&p| is_root[p as usize]).collect())))
            .collect();
        for (label, start) in sources {
            let mut stack = start;
            while let Some(x) = stack.pop() {
                if std::mem::replace(&mut seen[x as usize], label) == label {
                    continue;
                }
                // A primary is its own layer; what it uses is labelled from it.
                if primary[x as usize] {
                    continue;
                }
                keys[x as usize].push(label);
                stack.extend(closure.nodes[x as usize].references.iter().copied());
            }
        }
        for (p, k) in keys.iter_mut().enumerate() {
            if primary[p] {
                *k = vec![p as u32];
            } else {
                k.sort_unstable();
                k.dedup();
            }
        }
        keys
    };
    let distinct = |keys: &[Vec<u32>]| keys.iter().collect::<std::collections::BTreeSet<_>>().len();
    let mut primary = vec![false; n];
    let mut keys = keys_for(&primary);
    for &candidate in &by_size {
        primary[candidate as usize] = true;
        let next = keys_for(&primary);
        if distinct(&next) > opts.budget {
            primary[candidate as usize] = false;
            break;
        }
        keys = next;
    }
    let mut groups: BTreeMap<&Vec<u32>, Vec<NodeId>> = BTreeMap::new();
    for (p, k) in keys.iter().enumerate() {
        groups.entry(k).or_default().push(p as NodeId);
    }
    let mut layers: Vec<Layer> = groups
        .into_values()
        .map(|members| {
            let top = *members.iter().max_by(|&&a, &&b| closure.nodes[a as usize].closure_size.cmp(&closure.nodes[b as usize].closure_size).then_with(|| by_name(closure, b, a))).expect("non-empty");
            let reason = if primary[top as usize] { Reason::Big } else { Reason::Shared };
            let rating = u128::from(closure.nodes[top as usize].closure_size);
            layer(closure, members, top, reason, rating)
        })
        .collect();
    layers.sort_by(|a, b| a.rating.cmp(&b.rating).then_with(|| by_name(closure, a.top, b.top)));
    layers
}
