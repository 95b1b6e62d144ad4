//! The chain floor: the least chain-level re-pull that any layering, in any order, can reach.
//!
//! Chain re-pull after an update of `v` is the bytes of every layer from the first one that
//! depends on `v` to the top. Averaged over a set `S` of updated packages it is
//! `Σ_k size(k) × |P_k ∩ S| / |S|`, where `P_k` is what layers `0..=k` depend on together.
//! Splitting a layer never raises this, so one path per layer in the best order bounds it from
//! below, and that is a scheduling problem: each path is a job weighing its size, taking one unit
//! of time if it is in `S` and none otherwise, allowed only after everything it references; the
//! cost is the weighted sum of completion times (a path "completes" once it and its closure are
//! below). That problem is NP-hard in general, but Sidney's decomposition gives part of the answer
//! exactly: some optimal schedule starts with the downward-closed set of most bytes per unit of
//! time, then does the same among the rest, block after block. Inside a block `B` with ratio `ρ`,
//! whatever has finished `t` units into it weighs at most `ρ × t`, so the block costs at least
//! `size(B) × (before + (time(B) + 1) / 2)`; and each path finishes no sooner than `before` plus
//! the updates in its own closure. The larger of the two, summed over the blocks, is the floor.
//!
//! The densest downward-closed set is found by Dinkelbach's iteration over maximum-weight
//! closures, each a minimum cut; all arithmetic is on integers. This is for judging layerings
//! ([`super::evaluate`]), on closures of up to [`LIMIT`] paths.
//!
//! Inside a large block the density bound can be loose (docs/evaluation.md has a measured case).
//! Solving the blocks exactly needs an integer program, which `tools/chain-optimum.py` does with
//! a MIP solver, in minutes rather than the milliseconds this takes.

use crate::graph::walk::reach;
use crate::graph::{Closure, NodeId};

/// Largest closure the floor is computed for: the cuts grow quadratically with it.
pub const LIMIT: usize = 4000;

/// The floor as a share of the closure's bytes per update of a path in `updated` (marked by id),
/// or `None` above [`LIMIT`] paths or when nothing is marked.
pub fn chain_floor(closure: &Closure, updated: &[bool]) -> Option<f64> {
    let n = closure.len();
    let updates = updated.iter().filter(|&&u| u).count();
    if n > LIMIT || updates == 0 {
        return None;
    }
    let size: Vec<i128> = closure.nodes.iter().map(|x| i128::from(x.nar_size)).collect();
    let time: Vec<i128> = updated.iter().map(|&u| i128::from(u)).collect();
    let referrers = closure.referrers();
    let mut left = vec![true; n];
    let mut before: i128 = 0;
    // Twice the bound, to stay on integers.
    let mut twice: i128 = 0;
    while left.iter().any(|&l| l) {
        // Paths whose closure holds no update take no time: they finish at once, at `before`.
        let timed = depending_on_updates(&referrers, updated, &left);
        let free: Vec<usize> = (0..n).filter(|&x| left[x] && !timed[x]).collect();
        if !free.is_empty() {
            twice += 2 * before * free.iter().map(|&x| size[x]).sum::<i128>();
            free.iter().for_each(|&x| left[x] = false);
            continue;
        }
        let block = densest_ideal(closure, &size, &time, &left);
        let (w, t): (i128, i128) = block.iter().fold((0, 0), |(w, t), &x| (w + size[x], t + time[x]));
        // Two bounds on the block's cost, the larger holds: its density, and each path finishing
        // no sooner than the updates in its own closure.
        let by_density = w * (2 * before + t + 1);
        let by_closure: i128 = block.iter().map(|&x| size[x] * 2 * (before + updates_below(closure, updated, &left, x))).sum();
        twice += by_density.max(by_closure);
        before += t;
        block.iter().for_each(|&x| left[x] = false);
    }
    let total: u64 = closure.nodes.iter().map(|x| x.nar_size).sum();
    Some(twice as f64 / 2.0 / (updates as f64 * total.max(1) as f64))
}

/// How many updates the closure of `x` (one of the `left` paths) holds among the `left` paths.
fn updates_below(closure: &Closure, updated: &[bool], left: &[bool], x: usize) -> i128 {
    let below = reach(closure.len(), [x as NodeId], |y| &closure.nodes[y as usize].references, |y| left[y as usize]);
    below.iter().zip(updated).filter(|&(&b, &u)| b && u).count() as i128
}

/// Which of the `left` paths have an update in their closure (among the `left` paths).
fn depending_on_updates(referrers: &[Vec<NodeId>], updated: &[bool], left: &[bool]) -> Vec<bool> {
    let starts = (0..left.len() as NodeId).filter(|&x| updated[x as usize]);
    reach(left.len(), starts, |x| &referrers[x as usize], |x| left[x as usize])
}

/// Among the `left` paths, a downward-closed set with the most bytes per unit of time (every
/// remaining set takes some time, as the free ones went first).
fn densest_ideal(closure: &Closure, size: &[i128], time: &[i128], left: &[bool]) -> Vec<usize> {
    let mut best: Vec<usize> = (0..left.len()).filter(|&x| left[x]).collect();
    let ratio = |set: &[usize]| set.iter().fold((0i128, 0i128), |(w, t), &x| (w + size[x], t + time[x]));
    let (mut p, mut q) = ratio(&best);
    loop {
        // Taking x gains q·size − p·time: positive exactly when the set's ratio beats p/q.
        let found = max_weight_closure(closure, left, |x| q * size[x] - p * time[x]);
        let (w, t) = ratio(&found);
        if found.is_empty() || w * q <= p * t {
            return best;
        }
        best = found;
        (p, q) = (w, t);
    }
}

/// The set of `left` paths, closed under references, of greatest total `gain` (the smallest such
/// set): the source side of a minimum cut where the source feeds each path its gain, each path
/// with a loss drains it to the sink, and a path cannot be cut from what it references.
fn max_weight_closure(closure: &Closure, left: &[bool], gain: impl Fn(usize) -> i128) -> Vec<usize> {
    let n = left.len();
    let (source, sink) = (n, n + 1);
    let mut net = Network::new(n + 2);
    for x in (0..n).filter(|&x| left[x]) {
        let g = gain(x);
        if g > 0 {
            net.add(source, x, g);
        } else if g < 0 {
            net.add(x, sink, -g);
        }
        for &r in &closure.nodes[x].references {
            if left[r as usize] {
                net.add(x, r as usize, Network::UNBOUNDED);
            }
        }
    }
    net.max_flow(source, sink);
    let reached = net.reachable(source);
    (0..n).filter(|&x| reached[x]).collect()
}

/// A flow network for Dinic's maximum flow.
struct Network {
    first: Vec<usize>,
    next: Vec<usize>,
    to: Vec<usize>,
    capacity: Vec<i128>,
}

impl Network {
    const NONE: usize = usize::MAX;
    const UNBOUNDED: i128 = i128::MAX / 4;

    fn new(nodes: usize) -> Network {
        Network { first: vec![Self::NONE; nodes], next: Vec::new(), to: Vec::new(), capacity: Vec::new() }
    }

    /// An edge and its residual twin (edge `e`'s twin is `e ^ 1`).
    fn add(&mut self, from: usize, to: usize, capacity: i128) {
        for (a, b, c) in [(from, to, capacity), (to, from, 0)] {
            self.next.push(self.first[a]);
            self.first[a] = self.to.len();
            self.to.push(b);
            self.capacity.push(c);
        }
    }

    fn levels(&self, source: usize) -> Vec<usize> {
        let mut level = vec![Self::NONE; self.first.len()];
        level[source] = 0;
        let mut queue = std::collections::VecDeque::from([source]);
        while let Some(x) = queue.pop_front() {
            let mut e = self.first[x];
            while e != Self::NONE {
                if self.capacity[e] > 0 && level[self.to[e]] == Self::NONE {
                    level[self.to[e]] = level[x] + 1;
                    queue.push_back(self.to[e]);
                }
                e = self.next[e];
            }
        }
        level
    }

    fn max_flow(&mut self, source: usize, sink: usize) {
        loop {
            let level = self.levels(source);
            if level[sink] == Self::NONE {
                return;
            }
            let mut current = self.first.clone();
            while self.push(source, sink, Self::UNBOUNDED, &level, &mut current) > 0 {}
        }
    }

    /// One augmenting path along increasing levels, depth first without recursion: `path` holds
    /// the edges taken so far.
    fn push(&mut self, source: usize, sink: usize, limit: i128, level: &[usize], current: &mut [usize]) -> i128 {
        let mut path: Vec<usize> = Vec::new();
        let mut x = source;
        loop {
            if x == sink {
                let amount = path.iter().map(|&e| self.capacity[e]).fold(limit, i128::min);
                for &e in &path {
                    self.capacity[e] -= amount;
                    self.capacity[e ^ 1] += amount;
                }
                return amount;
            }
            let e = current[x];
            if e == Self::NONE {
                // A dead end: never come here again in this phase, and step back.
                match path.pop() {
                    None => return 0,
                    Some(back) => {
                        x = self.to[back ^ 1];
                        current[x] = self.next[current[x]];
                    }
                }
            } else if self.capacity[e] > 0 && level[self.to[e]] == level[x] + 1 {
                path.push(e);
                x = self.to[e];
            } else {
                current[x] = self.next[e];
            }
        }
    }

    fn reachable(&self, source: usize) -> Vec<bool> {
        self.levels(source).into_iter().map(|l| l != Self::NONE).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Node;

    fn closure(spec: &[(u64, &[NodeId])]) -> Closure {
        let nodes = spec
            .iter()
            .enumerate()
            .map(|(i, &(size, refs))| Node { path: format!("/nix/store/{i:032}-p{i}"), nar_size: size, closure_size: 0, references: refs.to_vec() })
            .collect();
        Closure::from_indexed(nodes, &[spec.len() as NodeId - 1])
    }

    /// The exact optimum of one path per layer, over every order, by brute force.
    fn best_single_path_order(c: &Closure, updated: &[bool]) -> f64 {
        let n = c.len();
        let mut order: Vec<usize> = (0..n).collect();
        let mut best = f64::MAX;
        let closure_of = |x: usize| {
            let mut seen = vec![false; n];
            let mut stack = vec![x];
            while let Some(y) = stack.pop() {
                if !std::mem::replace(&mut seen[y], true) {
                    stack.extend(c.nodes[y].references.iter().map(|&r| r as usize));
                }
            }
            seen
        };
        let closures: Vec<Vec<bool>> = (0..n).map(closure_of).collect();
        permute(&mut order, 0, &mut |o| {
            let mut below = vec![false; n];
            let mut cost = 0.0;
            for &x in o {
                (0..n).for_each(|y| below[y] |= closures[x][y]);
                cost += c.nodes[x].nar_size as f64 * (0..n).filter(|&y| below[y] && updated[y]).count() as f64;
            }
            best = best.min(cost);
        });
        let total: u64 = c.nodes.iter().map(|x| x.nar_size).sum();
        best / (updated.iter().filter(|&&u| u).count() as f64 * total as f64)
    }

    fn permute(v: &mut Vec<usize>, k: usize, f: &mut impl FnMut(&[usize])) {
        if k == v.len() {
            return f(v);
        }
        for i in k..v.len() {
            v.swap(k, i);
            permute(v, k + 1, f);
            v.swap(k, i);
        }
    }

    #[test]
    fn the_floor_is_exact_on_a_chain_and_below_every_order_elsewhere() {
        // A chain: one order only, so the floor is its cost: the base (100 bytes) re-pulled for
        // 1 of the 3 updates, the middle (10) for 2, the top (1) for all 3.
        let chain = closure(&[(100, &[]), (10, &[0]), (1, &[1])]);
        let all = vec![true; 3];
        let expected = (100.0 + 10.0 * 2.0 + 3.0) / (3.0 * 111.0);
        assert!((chain_floor(&chain, &all).unwrap() - expected).abs() < 1e-12);
        assert!((best_single_path_order(&chain, &all) - expected).abs() < 1e-12);

        // Shared libraries, an application, a big leaf: the bound never exceeds the best order.
        let graphs = [
            closure(&[(50, &[]), (5, &[]), (300, &[0]), (7, &[0, 1]), (1, &[2, 3])]),
            closure(&[(1, &[]), (1000, &[0]), (2, &[0]), (30, &[1, 2]), (8, &[2]), (1, &[3, 4])]),
            closure(&[(9, &[]), (9, &[0]), (9, &[0]), (9, &[1, 2]), (400, &[]), (1, &[3, 4])]),
        ];
        for c in &graphs {
            for updated in [vec![true; c.len()], (0..c.len()).map(|i| i % 2 == 0).collect()] {
                let floor = chain_floor(c, &updated).unwrap();
                let best = best_single_path_order(c, &updated);
                assert!(floor <= best + 1e-12, "floor {floor} above the best order {best}");
                assert!(floor > 0.0);
            }
        }
    }

    #[test]
    fn a_big_path_atop_small_ones_is_bounded_by_its_own_closure() {
        // Density alone would let the big path finish half-way through its block.
        let c = closure(&[(2, &[]), (1, &[0]), (300, &[1]), (2, &[2]), (1, &[2])]);
        let all = vec![true; 5];
        let floor = chain_floor(&c, &all).unwrap();
        let best = best_single_path_order(&c, &all);
        assert!((floor - best).abs() < 1e-12, "floor {floor}, best order {best}");
    }

    proptest::proptest! {
        #[test]
        fn the_floor_is_never_above_the_best_order(
            sizes in proptest::collection::vec(0u64..1000, 1..7),
            edges in proptest::collection::vec((0usize..7, 0usize..7), 0..12),
            updated in proptest::collection::vec(proptest::bool::ANY, 7),
        ) {
            let n = sizes.len();
            // References only to lower ids: a DAG.
            let refs: Vec<Vec<NodeId>> = (0..n)
                .map(|i| {
                    let mut r: Vec<NodeId> = edges.iter().filter(|&&(a, b)| a % n == i && b % n < i).map(|&(_, b)| (b % n) as NodeId).collect();
                    r.sort_unstable();
                    r.dedup();
                    r
                })
                .collect();
            let spec: Vec<(u64, &[NodeId])> = sizes.iter().zip(&refs).map(|(&s, r)| (s, &r[..])).collect();
            let c = closure(&spec);
            // from_indexed sorts by path, which keeps the ids here (zero-padded names).
            let updated = &updated[..n];
            proptest::prop_assume!(sizes.iter().any(|&s| s > 0));
            if let Some(floor) = chain_floor(&c, updated) {
                let best = best_single_path_order(&c, updated);
                proptest::prop_assert!(floor <= best + 1e-9, "floor {} above the best order {}", floor, best);
            } else {
                proptest::prop_assert!(updated.iter().all(|&u| !u));
            }
        }
    }

    #[test]
    fn nothing_updated_or_too_large_gives_no_floor() {
        let c = closure(&[(1, &[]), (1, &[0])]);
        assert_eq!(chain_floor(&c, &[false, false]), None);
        // A chain of LIMIT paths has a floor; one more path, and there is none.
        let chain = |n: usize| {
            let nodes = (0..n)
                .map(|i| Node { path: format!("/nix/store/{i:032}-p{i}"), nar_size: 1, closure_size: 0, references: (i > 0).then(|| i as NodeId - 1).into_iter().collect() })
                .collect();
            Closure::from_indexed(nodes, &[n as NodeId - 1])
        };
        let mut updated = vec![false; LIMIT + 1];
        updated[0] = true;
        // (The bottom path updated renames every path: the whole image, whatever the layering.)
        assert_eq!(chain_floor(&chain(LIMIT), &updated[..LIMIT]), Some(1.0));
        assert_eq!(chain_floor(&chain(LIMIT + 1), &updated), None);
    }
}
