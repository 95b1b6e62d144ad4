//! The pairwise phase: greedy agglomeration over every pair of groups, cheapest merge first.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::costs::{cost_code, cost_of_code, Cost};
use super::{Ctx, Group};

/// Greedy agglomeration over all pairs. Each group keeps one entry in a heap: its cheapest
/// partner at the time it last changed. An entry naming a group that changed since is refreshed
/// when it reaches the top; a merged group looks at every other group again, so every pair is
/// covered by the entry of whichever of its two groups changed last. A pair's cost changes only
/// when one of its groups does, so a table keeps every pair's cost (16 bits, see [`cost_code`])
/// and a refresh reads it instead of comparing the groups' sets again.
pub(super) fn pairwise_phase(cx: &Ctx, groups: Vec<Group>, budget: usize, free: u128) -> Vec<Group> {
    let mut slots: Vec<Option<Group>> = groups.into_iter().map(Some).collect();
    let m = slots.len();
    let mut version = vec![0u32; m];
    let mut table = vec![0u16; m * m];
    // (cost, group, its best partner, and both groups' versions when the cost was computed)
    type Entry = Reverse<(Cost, u32, u32, u32, u32)>;
    let best_entry = |slots: &[Option<Group>], table: &[u16], version: &[u32], i: usize| -> Option<Entry> {
        let gi = slots[i].as_ref()?;
        let row = &table[i * m..(i + 1) * m];
        let (cost, j) = (0..m)
            .filter(|&j| j != i)
            .filter_map(|j| slots[j].as_ref().map(|gj| ((cost_of_code(row[j]), cx.tie_break(gi.top, gj.top)), j)))
            .min()?;
        Some(Reverse(((cost.0, cost.1 .0, cost.1 .1), i as u32, j as u32, version[i], version[j])))
    };
    // Every pair once to start with.
    let mut best: Vec<Option<(Cost, usize)>> = vec![None; m];
    for i in 0..m {
        for j in i + 1..m {
            let c = (cx.merge_cost(slots[i].as_ref().expect("alive"), slots[j].as_ref().expect("alive")), 0);
            let code = cost_code(c.0 .0);
            table[i * m + j] = code;
            table[j * m + i] = code;
            if best[i].is_none_or(|b| (c.0, j) < b) {
                best[i] = Some((c.0, j));
            }
            if best[j].is_none_or(|b| (c.0, i) < b) {
                best[j] = Some((c.0, i));
            }
        }
    }
    let mut heap: BinaryHeap<Entry> = best
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.map(|(cost, j)| Reverse((cost, i as u32, j as u32, 0, 0))))
        .collect();
    let mut alive = m;
    while let Some(Reverse((cost, i, j, vi, vj))) = heap.pop() {
        let (i, j) = (i as usize, j as usize);
        if slots[i].is_none() || version[i] != vi {
            continue;
        }
        if slots[j].is_none() || version[j] != vj {
            if let Some(e) = best_entry(&slots, &table, &version, i) {
                heap.push(e);
            }
            continue;
        }
        if alive <= budget && cost.0 > free {
            break;
        }
        let from = slots[j].take().expect("partner alive");
        let mut into = slots[i].take().expect("group alive");
        cx.absorb(&mut into, from);
        for (k, other) in slots.iter().enumerate() {
            if let Some(gk) = other.as_ref().filter(|_| k != i) {
                let code = cost_code(cx.merge_cost(&into, gk).0);
                table[i * m + k] = code;
                table[k * m + i] = code;
            }
        }
        slots[i] = Some(into);
        alive -= 1;
        version[i] += 1;
        if let Some(e) = best_entry(&slots, &table, &version, i).filter(|_| alive > 1) {
            heap.push(e);
        }
    }
    slots.into_iter().flatten().collect()
}
