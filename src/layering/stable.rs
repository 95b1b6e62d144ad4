//! The default strategy, `stable`: layers that survive updates, so that clients and registries
//! move and store as few bytes as possible.
//!
//! **What it optimises.** When one package of an image changes, that package and every path
//! that depends on it get new store paths; every layer holding one of them gets a new digest and
//! is downloaded again. A path changes whenever anything in its closure changes, so a layer is
//! re-pulled whenever anything in the union of its paths' closures changes. If any package is as
//! likely to change as any other, the bytes re-pulled per update are, on average,
//!
//! ```text
//!     cost = Σ over layers L of  size(L) × |∪ closures of L's paths|   (÷ number of paths)
//! ```
//!
//! With one path per layer this is the floor no layering can beat; the budget forces paths to
//! share layers, and each merge raises the cost. The strategy makes the cheapest merges first.
//!
//! **Which merges.** In the dominator tree of the closure (as in the seed: path `d` dominates `p`
//! when every chain of references from the image's roots to `p` passes through `d`), a dominated
//! path depends on nothing its dominator does not, so merging a path `c` into the layer whose top
//! is `t` costs exactly `size(c's layer) × (|closure(t)| − |closure(c)|)`: cheap for paths that
//! change about as often as their dominator (its private data, its wrappers), dear for a small
//! library under a large application. Paths nobody dominates (roots, and paths shared by several
//! branches) start as layers of their own, and may merge with each other in order of how many
//! paths they depend on, at the cost computed from the union of their closures (estimated with
//! [`super::sketch`]). Merging goes on until the budget is met, and further while a merge costs
//! less than [`FREE_BYTES`] per update: tiny layers whose merging costs nothing are not kept.
//!
//! **Popularity**, where given, weighs merges: a path many packages reference is likely to be in
//! other images too, and keeping it in a layer of its own lets those images share that layer. So
//! merging a popular path costs more (weight 4 + log2(1 + popularity), against 4 without data).
//! Without data every path weighs the same, and the strategy works the same.
//!
//! **Order.** Classic Docker reuses a layer only if every layer below it is unchanged too, so
//! layers go bottom-up greedily: next is always the layer that adds the fewest paths to the union
//! of what the layers below depend on (ties: the bigger layer first, then by name). Base libraries
//! end at the bottom, the application on top.
//!
//! **Determinism.** Every step depends on the graph's shape, the paths' names (not their hashes),
//! sizes and popularity, and all arithmetic is on integers; ties are broken by name, then path.
//! A new build of a package (same name, new hash) therefore moves no other path between layers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::graph::{Closure, NodeId};
use crate::popularity::{name_of, Popularity};

use super::sketch::{name_hash, Sketch};
use super::{DomTree, Layer, Options, Reason};

/// Below this many bytes re-pulled per update on average, a merge counts as free.
pub const FREE_BYTES: u128 = 4096;

/// Weight of a path without popularity data; weights scale merge costs.
const BASE_WEIGHT: u128 = 4;

struct Group {
    members: Vec<NodeId>,
    size: u64,
    top: NodeId,
    /// Top-level candidates merged into this group (0 for a group below the top level).
    tops: usize,
    /// For top-level groups: the sketch of the union of their closures.
    union: Option<Sketch>,
    version: u32,
    prev: Option<u32>,
    next: Option<u32>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Merge {
    /// A group below the top level into the group of its top's dominator.
    Up { group: u32 },
    /// Two neighbouring top-level groups, at the versions the cost was computed for.
    Across { a: u32, b: u32, va: u32, vb: u32 },
}

struct State {
    count: Vec<u64>,
    weight: Vec<u128>,
    rank: Vec<u32>,
    idom: Vec<u32>,
    groups: Vec<Group>,
    forward: Vec<u32>,
    alive: usize,
}

pub fn group(closure: &Closure, pop: &Popularity, opts: &Options) -> Vec<Layer> {
    let n = closure.len();
    let names: Vec<&str> = closure.nodes.iter().map(|x| name_of(&x.path)).collect();
    let rank = name_rank(closure, &names);
    let sketches = closure_sketches(closure, &names);
    let count: Vec<u64> = sketches.iter().map(Sketch::estimate).collect();
    let weight: Vec<u128> = closure
        .nodes
        .iter()
        .map(|x| pop.get(&x.path).map_or(BASE_WEIGHT, |p| BASE_WEIGHT + u128::from(64 - p.saturating_add(1).leading_zeros())))
        .collect();
    let tree = DomTree::build(closure, &[]);
    let root = n as u32;

    let mut groups: Vec<Group> = (0..n as u32)
        .map(|i| Group {
            members: vec![i],
            size: closure.nodes[i as usize].nar_size,
            top: i,
            tops: usize::from(tree.idom[i as usize] == root),
            union: (tree.idom[i as usize] == root).then(|| sketches[i as usize].clone()),
            version: 0,
            prev: None,
            next: None,
        })
        .collect();
    // Top-level groups in a line, by how many paths they depend on: neighbours change about as
    // often, which makes them the cheap pairs to merge.
    let mut line: Vec<u32> = (0..n as u32).filter(|&i| tree.idom[i as usize] == root).collect();
    line.sort_by_key(|&i| (count[i as usize], rank[i as usize]));
    for w in line.windows(2) {
        groups[w[0] as usize].next = Some(w[1]);
        groups[w[1] as usize].prev = Some(w[0]);
    }
    let mut s = State { count, weight, rank, idom: tree.idom.clone(), groups, forward: (0..n as u32).collect(), alive: n };

    let mut heap: BinaryHeap<Reverse<(u128, u32, Merge)>> = BinaryHeap::new();
    for i in 0..n as u32 {
        if s.idom[i as usize] != root {
            heap.push(Reverse((s.up_cost(i), s.rank[i as usize], Merge::Up { group: i })));
        }
    }
    for w in line.windows(2) {
        s.push_across(&mut heap, w[0], w[1]);
    }

    let free = FREE_BYTES * n as u128 * BASE_WEIGHT;
    while let Some(Reverse((cost, tie, merge))) = heap.pop() {
        match merge {
            Merge::Up { group } => {
                if s.forward[group as usize] != group {
                    continue;
                }
                let actual = s.up_cost(group);
                if actual > cost {
                    heap.push(Reverse((actual, tie, Merge::Up { group })));
                    continue;
                }
                if s.alive <= opts.budget && actual > free {
                    break;
                }
                let target = s.find(s.idom[s.groups[group as usize].top as usize]);
                s.absorb(target, group);
                if s.groups[target as usize].tops > 0 {
                    s.requeue_neighbours(&mut heap, target);
                }
            }
            Merge::Across { a, b, va, vb } => {
                let live = |x: u32, v: u32| s.forward[x as usize] == x && s.groups[x as usize].version == v;
                if !live(a, va) || !live(b, vb) {
                    continue;
                }
                if s.alive <= opts.budget && cost > free {
                    break;
                }
                let union = s.groups[a as usize].union.as_ref().expect("top-level").union(s.groups[b as usize].union.as_ref().expect("top-level"));
                let next = s.groups[b as usize].next;
                s.absorb(a, b);
                let ga = &mut s.groups[a as usize];
                ga.union = Some(union);
                ga.next = next;
                if let Some(nx) = next {
                    s.groups[nx as usize].prev = Some(a);
                }
                s.requeue_neighbours(&mut heap, a);
            }
        }
    }

    let mut layers: Vec<(Layer, Sketch)> = Vec::with_capacity(s.alive);
    let unreachable = tree.unreachable;
    for (gid, g) in s.groups.iter_mut().enumerate() {
        if s.forward[gid] != gid as u32 {
            continue;
        }
        let mut contents = std::mem::take(&mut g.members);
        contents.sort_unstable();
        let union = g.union.take();
        let reason = if g.tops > 1 {
            Reason::Merged
        } else if g.tops == 0 {
            Reason::Split
        } else if closure.roots.binary_search(&g.top).is_ok() {
            Reason::Root
        } else if unreachable.contains(&g.top) {
            Reason::Unreachable
        } else {
            Reason::Shared
        };
        let depends = union.unwrap_or_else(|| sketches[g.top as usize].clone());
        let rating = depends.estimate();
        let layer = Layer { contents, size: g.size, rating: u128::from(rating), top: g.top, reason, candidates: g.tops.max(1) };
        layers.push((layer, depends));
    }
    order_bottom_up(layers, &s.rank)
}

impl State {
    fn find(&mut self, node_group: u32) -> u32 {
        let mut g = node_group;
        while self.forward[g as usize] != g {
            g = self.forward[g as usize];
        }
        let mut x = node_group;
        while self.forward[x as usize] != g {
            let next = self.forward[x as usize];
            self.forward[x as usize] = g;
            x = next;
        }
        g
    }

    /// How many paths the group depends on.
    fn depends(&self, g: u32) -> u64 {
        let grp = &self.groups[g as usize];
        grp.union.as_ref().map_or(self.count[grp.top as usize], Sketch::estimate)
    }

    fn up_cost(&mut self, g: u32) -> u128 {
        let top = self.groups[g as usize].top;
        let target = self.find(self.idom[top as usize]);
        let extra = self.depends(target).saturating_sub(self.count[top as usize]);
        u128::from(self.groups[g as usize].size) * u128::from(extra) * self.weight[top as usize]
    }

    fn across_cost(&self, a: u32, b: u32) -> u128 {
        let (ga, gb) = (&self.groups[a as usize], &self.groups[b as usize]);
        let (ua, ub) = (ga.union.as_ref().expect("top-level"), gb.union.as_ref().expect("top-level"));
        let both = u128::from(ua.union(ub).estimate());
        let (sa, sb) = (u128::from(ga.size), u128::from(gb.size));
        let merged = (sa + sb) * both;
        let apart = sa * u128::from(ua.estimate()) + sb * u128::from(ub.estimate());
        merged.saturating_sub(apart) * self.weight[ga.top as usize].max(self.weight[gb.top as usize])
    }

    fn push_across(&self, heap: &mut BinaryHeap<Reverse<(u128, u32, Merge)>>, a: u32, b: u32) {
        let (ga, gb) = (&self.groups[a as usize], &self.groups[b as usize]);
        let tie = self.rank[ga.top as usize].min(self.rank[gb.top as usize]);
        heap.push(Reverse((self.across_cost(a, b), tie, Merge::Across { a, b, va: ga.version, vb: gb.version })));
    }

    /// A top-level group changed: its merges with its neighbours cost something else now.
    fn requeue_neighbours(&mut self, heap: &mut BinaryHeap<Reverse<(u128, u32, Merge)>>, g: u32) {
        self.groups[g as usize].version += 1;
        if let Some(p) = self.groups[g as usize].prev {
            self.push_across(heap, p, g);
        }
        if let Some(nx) = self.groups[g as usize].next {
            self.push_across(heap, g, nx);
        }
    }

    /// Moves group `from` into group `into`. A merged top-level group is shown by the top that
    /// depends on the most paths (ties: by name).
    fn absorb(&mut self, into: u32, from: u32) {
        let moved = std::mem::take(&mut self.groups[from as usize].members);
        let (size, tops, from_top) = (self.groups[from as usize].size, self.groups[from as usize].tops, self.groups[from as usize].top);
        let into_top = self.groups[into as usize].top;
        let key = |t: NodeId| (self.count[t as usize], Reverse(self.rank[t as usize]));
        let new_top = if tops > 0 && key(from_top) > key(into_top) { from_top } else { into_top };
        let dst = &mut self.groups[into as usize];
        dst.members.extend(moved);
        dst.size += size;
        dst.tops += tops;
        dst.top = new_top;
        self.forward[from as usize] = into;
        self.alive -= 1;
    }
}

/// Each node's rank in (name, path) order: the tie-break that survives renaming.
fn name_rank(closure: &Closure, names: &[&str]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..closure.len() as u32).collect();
    order.sort_by(|&a, &b| names[a as usize].cmp(names[b as usize]).then_with(|| closure.path(a).cmp(closure.path(b))));
    let mut rank = vec![0; closure.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    rank
}

/// The sketch of every node's closure (itself and everything it references), bottom-up.
fn closure_sketches(closure: &Closure, names: &[&str]) -> Vec<Sketch> {
    let n = closure.len();
    // Paths sharing a name get distinct hashes by their order among themselves.
    let mut seen = rustc_hash::FxHashMap::<&str, u32>::default();
    let hashes: Vec<u64> = names
        .iter()
        .map(|&name| {
            let k = seen.entry(name).or_insert(0);
            *k += 1;
            if *k == 1 { name_hash(name.as_bytes()) } else { name_hash(format!("{name}#{k}").as_bytes()) }
        })
        .collect();
    let mut sketches: Vec<Option<Sketch>> = vec![None; n];
    let mut stack: Vec<(u32, bool)> = Vec::new();
    for start in 0..n as u32 {
        if sketches[start as usize].is_some() {
            continue;
        }
        stack.push((start, false));
        while let Some((x, expanded)) = stack.pop() {
            if sketches[x as usize].is_some() {
                continue;
            }
            let refs = &closure.nodes[x as usize].references;
            if expanded {
                let mut sk = Sketch::of(hashes[x as usize]);
                for &r in refs {
                    // A reference cycle (malformed input) leaves a child unfinished: skip it.
                    if let Some(child) = &sketches[r as usize] {
                        sk.union_in_place(child);
                    }
                }
                sketches[x as usize] = Some(sk);
            } else {
                stack.push((x, true));
                stack.extend(refs.iter().filter(|&&r| sketches[r as usize].is_none()).map(|&r| (r, false)));
            }
        }
    }
    sketches.into_iter().map(|s| s.expect("every node visited")).collect()
}

/// Bottom-up order: next is the layer adding the fewest paths to what the layers below depend on.
fn order_bottom_up(mut layers: Vec<(Layer, Sketch)>, rank: &[u32]) -> Vec<Layer> {
    const GREEDY_LIMIT: usize = 512;
    if layers.len() > GREEDY_LIMIT {
        layers.sort_by_key(|(l, d)| (d.estimate(), Reverse(l.size), rank[l.top as usize]));
        return layers.into_iter().map(|(l, _)| l).collect();
    }
    let mut below = Sketch::default();
    let mut out = Vec::with_capacity(layers.len());
    while !layers.is_empty() {
        let best = (0..layers.len())
            .min_by_key(|&i| {
                let (l, d) = &layers[i];
                (below.union(d).estimate(), Reverse(l.size), rank[l.top as usize])
            })
            .expect("non-empty");
        let (l, d) = layers.swap_remove(best);
        below.union_in_place(&d);
        out.push(l);
    }
    out
}
