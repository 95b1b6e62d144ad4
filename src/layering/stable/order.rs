//! The order of the layers, bottom first: what classic Docker's chain reuse makes matter.

use std::cmp::Ordering;

use crate::layering::{Layer, Reason};

use super::sketch::Set;
use super::{Ctx, Group, PAIRWISE_LIMIT};

/// Local search after the greedy order: take each layer out and put it back where the chain cost
/// is lowest, for a few rounds while that changes anything. With the layer `g` out, prefix unions
/// `P` of the rest give the cost of every insertion point `t` at once: the layers before `t` keep
/// their cost, `g` costs `size(g) × |P[t] ∪ U(g)|`, and each later layer `k` costs
/// `size(k) × |P[k + 1] ∪ U(g)|`. The prefixes before the layer taken out are those of the whole
/// order, kept from one step to the next as far as the order stayed the same.
fn improve_order(cx: &Ctx, order: &mut Vec<Group>) {
    let u = cx.universe;
    let m = order.len();
    let size = |x: &Group| u128::from(x.size);
    // full[t]: what the first t layers of the current order depend on, right up to `valid`.
    let mut full: Vec<Set> = vec![u.empty(); m + 1];
    let mut valid = 0;
    // rest[k]: the prefix over the order without the layer taken out, at `from + 1 + k`.
    let mut rest: Vec<Set> = vec![u.empty(); m];
    let (mut with_g, mut before, mut after) = (vec![0u64; m], vec![0u128; m], vec![0u128; m]);
    let mut tmp = Vec::new();
    for _ in 0..16 {
        let mut moved = false;
        for from in 0..m {
            while valid < from {
                let (done, next) = full.split_at_mut(valid + 1);
                u.union_all_into(&mut next[0], &done[valid], std::iter::once(&order[valid].set[..]), &mut tmp);
                valid += 1;
            }
            let g = order.remove(from);
            for k in 0..m - 1 - from {
                let (done, next) = rest.split_at_mut(k);
                let prev = if k == 0 { &full[from] } else { &done[k - 1] };
                u.union_all_into(&mut next[0], prev, std::iter::once(&order[from + k].set[..]), &mut tmp);
            }
            let prefix = |t: usize| if t <= from { &full[t] } else { &rest[t - from - 1] };
            // before[t]: cost of the layers below position t; after[t]: cost of the layers from t
            // on, with g below them; with_g[t]: what P[t] and g depend on together.
            for (t, w) in with_g.iter_mut().enumerate() {
                *w = u.union_count(prefix(t), &g.set);
            }
            before[0] = 0;
            for k in 0..m - 1 {
                before[k + 1] = before[k] + size(&order[k]) * u128::from(u.count(prefix(k + 1)));
            }
            after[m - 1] = 0;
            for k in (0..m - 1).rev() {
                after[k] = after[k + 1] + size(&order[k]) * u128::from(with_g[k + 1]);
            }
            let cost_at = |t: usize| before[t] + size(&g) * u128::from(with_g[t]) + after[t];
            let mut best = (cost_at(from), from);
            for t in 0..m {
                let c = (cost_at(t), t);
                if c.0 < best.0 {
                    best = c;
                }
            }
            moved |= best.1 != from;
            valid = valid.min(best.1.min(from));
            order.insert(best.1, g);
        }
        if !moved {
            break;
        }
    }
}

/// The order the pairwise phase's chain costs refer to (see [`Ctx::chain_cost`]): its starting
/// groups in the greedy order of [`order_bottom_up`], without the local search, which here would
/// cost more than it gains (on large closures, time for no better layers).
/// Sets each group's position (from 1) and returns how many paths the first `t` groups depend on
/// together, for every `t`.
pub(super) fn reference_order(cx: &Ctx, groups: Vec<Group>) -> (Vec<Group>, Vec<u64>) {
    let mut order = greedy_order(cx, groups, PAIRWISE_LIMIT);
    let mut below = cx.universe.empty();
    let mut chain = Vec::with_capacity(order.len() + 1);
    chain.push(0);
    for (t, g) in order.iter_mut().enumerate() {
        g.pos = t as u32 + 1;
        cx.universe.union_in_place(&mut below, &g.set);
        chain.push(cx.universe.count(&below));
    }
    (order, chain)
}

/// Bottom-up order. A layer is re-pulled (chain level) when anything that it or any layer below
/// it depends on changes, so each package costs the bytes of every layer from the first one that
/// depends on it to the top. Swapping two neighbours shows the better of them goes first when it
/// adds fewer new dependencies per byte (Smith's rule): greedily, next is the layer with the
/// fewest new dependencies per byte over what the layers below depend on (ties: the bigger
/// layer, then by name), then a local search (see [`improve_order`]). Base libraries end at the
/// bottom, the application on top.
pub(super) fn order_bottom_up(cx: &Ctx, groups: Vec<Group>) -> Vec<Layer> {
    const GREEDY_LIMIT: usize = 512;
    let mut ordered = greedy_order(cx, groups, GREEDY_LIMIT);
    if ordered.len() <= GREEDY_LIMIT {
        improve_order(cx, &mut ordered);
    }
    into_layers(cx, ordered)
}

/// The greedy of [`order_bottom_up`] on up to `limit` groups; beyond, each group's own
/// dependencies per byte stand in for what it adds (the greedy takes a union per pair).
fn greedy_order(cx: &Ctx, mut groups: Vec<Group>, limit: usize) -> Vec<Group> {
    if groups.len() > limit {
        groups.sort_by(|a, b| smith_order(cx, (a.depends, a), (b.depends, b)));
        return groups;
    }
    let mut ordered = Vec::with_capacity(groups.len());
    let mut below: Set = Vec::new();
    let mut below_count = 0u64;
    while !groups.is_empty() {
        let growth: Vec<u64> = groups
            .iter()
            .map(|g| if below.is_empty() { g.depends } else { cx.universe.union_count(&below, &g.set) - below_count })
            .collect();
        let best = (0..groups.len())
            .min_by(|&a, &b| smith_order(cx, (growth[a], &groups[a]), (growth[b], &groups[b])))
            .expect("non-empty");
        let g = groups.swap_remove(best);
        below = if below.is_empty() { g.set.clone() } else { cx.universe.union(&below, &g.set) };
        below_count = cx.universe.count(&below);
        ordered.push(g);
    }
    ordered
}

/// Smith's rule with its tie-breaks: `a` goes first when it adds fewer new dependencies
/// (`growth`) per byte, then when it is bigger, then by its top's name.
fn smith_order(cx: &Ctx, (growth_a, a): (u64, &Group), (growth_b, b): (u64, &Group)) -> Ordering {
    (u128::from(growth_a) * u128::from(b.size.max(1)))
        .cmp(&(u128::from(growth_b) * u128::from(a.size.max(1))))
        .then_with(|| b.size.cmp(&a.size))
        .then_with(|| cx.rank[a.top as usize].cmp(&cx.rank[b.top as usize]))
}

/// The ordered groups as layers, with why each stands as it does.
fn into_layers(cx: &Ctx, ordered: Vec<Group>) -> Vec<Layer> {
    ordered
        .into_iter()
        .map(|g| {
            let mut contents = g.members;
            contents.sort_unstable();
            let reason = match contents.len() {
                1 if cx.big[g.top as usize] => Reason::Big,
                1 if cx.closure.roots.binary_search(&g.top).is_ok() => Reason::Root,
                1 => Reason::Apart,
                _ => Reason::Merged,
            };
            let candidates = contents.len();
            let size = contents.iter().map(|&c| cx.closure.nar_size(c)).sum();
            Layer { contents, size, rating: u128::from(g.depends), top: g.top, reason, candidates }
        })
        .collect()
}
