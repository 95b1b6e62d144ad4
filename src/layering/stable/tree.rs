//! The tree phase: for large closures, merges along the dominator tree (and between neighbouring
//! top-level groups) in cost order, until the pairwise phase can take over.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::graph::dominators::DomTree;
use crate::graph::NodeId;

use super::costs::{cost_code, cost_of_code, rounded, rounded_cost};
use super::sketch::Set;
use super::{Ctx, Group, Side, BASE_WEIGHT};

/// For large closures: merges along the dominator tree (and between neighbouring top-level
/// layers) in cost order, down to `target` groups.
pub(super) fn tree_phase(cx: &Ctx, tree: DomTree, target: usize, free: u128) -> Vec<Group> {
    let n = cx.closure.len();
    let mut f = Forest::new(cx, tree);
    // Top-level groups in a line by how many paths they depend on: neighbours change about as
    // often, which makes them the cheap pairs to merge across the tree.
    let mut line: Vec<u32> = (0..n as u32).filter(|&i| f.top_level(i) && !cx.big[i as usize]).collect();
    line.sort_by_key(|&i| (cx.count[i as usize], cx.rank[i as usize]));
    let mut prev = vec![NONE; n];
    let mut next = vec![NONE; n];
    for w in line.windows(2) {
        next[w[0] as usize] = w[1];
        prev[w[1] as usize] = w[0];
    }
    let mut heap = CodeQueue::default();
    for i in 0..n as u32 {
        if !f.top_level(i) {
            heap.push(TreeKey::up(f.up_cost(i), cx.rank[i as usize], i));
        }
    }
    // The pairs across the tree queued so far.
    let mut pairs: Vec<Pair> = Vec::new();
    let mut version = vec![0u32; n];
    let queue_across = |heap: &mut CodeQueue, pairs: &mut Vec<Pair>, f: &Forest, left: u32, right: u32, versions: (u32, u32)| {
        let (ra, rb) = f.tie_break(left, right);
        let (sa, sb) = (f.side(left), f.side(right));
        let unions = cx.unions(&sa, &sb);
        heap.push(TreeKey::across(cx.cost_of_unions(&sa, &sb, unions), ra, rb, pairs.len()));
        pairs.push(Pair { left, right, versions, unions });
    };
    for w in line.windows(2) {
        queue_across(&mut heap, &mut pairs, &f, w[0], w[1], (0, 0));
    }
    let mut alive = n;
    while let Some(key) = heap.pop() {
        let cost = key.cost();
        if alive <= target && cost > free {
            break;
        }
        match key.what() {
            Queued::Up(g) => {
                if f.forward[g as usize] != g {
                    continue;
                }
                let actual = f.up_cost(g);
                if actual > cost {
                    heap.push(TreeKey::up(actual, cx.rank[g as usize], g));
                    continue;
                }
                let into = f.find(f.tree.idom[g as usize]);
                f.merge_up(into, g);
            }
            Queued::Across(k) => {
                let Pair { left: a, right: b, versions: (va, vb), unions } = pairs[k];
                let live = |x: u32, v: u32| f.forward[x as usize] == x && version[x as usize] == v;
                if !live(a, va) || !live(b, vb) {
                    continue;
                }
                // Merges up the tree into either group since only raised this cost.
                let actual = cx.cost_of_unions(&f.side(a), &f.side(b), unions);
                if actual > cost {
                    let (ra, rb) = f.tie_break(a, b);
                    heap.push(TreeKey::across(actual, ra, rb, k));
                    continue;
                }
                next[a as usize] = next[b as usize];
                if next[b as usize] != NONE {
                    prev[next[b as usize] as usize] = a;
                }
                f.merge_across(a, b);
                // Only a merge across changes a top-level group's set, and with it the cost of
                // merging with its neighbours in either direction; merges up the tree only raise
                // those costs, which the check above catches when the entry comes up.
                version[a as usize] += 1;
                for (l, r) in [(prev[a as usize], a), (a, next[a as usize])] {
                    if l != NONE && r != NONE {
                        queue_across(&mut heap, &mut pairs, &f, l, r, (version[l as usize], version[r as usize]));
                    }
                }
            }
        }
        alive -= 1;
    }
    f.into_groups()
}

/// No node: the end of a list.
const NONE: u32 = u32::MAX;

/// Two neighbouring top-level groups queued to merge across the tree, with their versions when
/// queued and the sizes of the unions of their sets, which stay the same while both versions do.
#[derive(Clone, Copy)]
struct Pair {
    left: u32,
    right: u32,
    versions: (u32, u32),
    unions: (u64, u64),
}

/// The tree phase's groups. It handles every path of a large closure, so its state is kept in
/// flat arrays indexed by the node each group started from: a group's members are a linked list
/// through `next_member`, and a top-level group reads its start node's sets until a merge across
/// gives it sets of its own. A group below the top depends on its top's closure and keeps its
/// start node as its top.
struct Forest<'a> {
    cx: &'a Ctx<'a>,
    tree: DomTree,
    forward: Vec<u32>,
    size: Vec<u64>,
    top: Vec<NodeId>,
    depends: Vec<u64>,
    next_member: Vec<NodeId>,
    last_member: Vec<NodeId>,
    own: Vec<Option<Box<OwnSets>>>,
    tmp: Set,
}

impl<'a> Forest<'a> {
    /// `tree` must be the dominator tree from the paths nothing references, not from the named
    /// roots: the same paths then give the same layers whichever of them a user names (an image
    /// of `[a b]` where `a` references `b`).
    fn new(cx: &'a Ctx<'a>, tree: DomTree) -> Forest<'a> {
        let n = cx.closure.len();
        Forest {
            cx,
            tree,
            forward: (0..n as u32).collect(),
            size: cx.closure.nodes.iter().map(|x| rounded(x.nar_size)).collect(),
            top: (0..n as NodeId).collect(),
            depends: cx.count.clone(),
            next_member: vec![NONE; n],
            last_member: (0..n as NodeId).collect(),
            own: (0..n).map(|_| None).collect(),
            tmp: Vec::new(),
        }
    }

    /// A big path is never merged up, and what it dominates is merged among itself and across,
    /// as if the big path were an image root.
    fn top_level(&self, i: u32) -> bool {
        let d = self.tree.idom[i as usize];
        d as usize == self.cx.closure.len() || self.cx.big[i as usize] || self.cx.big[d as usize]
    }

    fn find(&mut self, x: u32) -> u32 {
        let mut g = x;
        while self.forward[g as usize] != g {
            g = self.forward[g as usize];
        }
        let mut y = x;
        while self.forward[y as usize] != g {
            let up = self.forward[y as usize];
            self.forward[y as usize] = g;
            y = up;
        }
        g
    }

    fn side(&self, g: u32) -> Side<'_> {
        let g = g as usize;
        let (set, up, up_count) = OwnSets::or_node(&self.own[g], self.cx, self.top[g]);
        // No alone part here (see [`ALONE_PATHS`]).
        Side { size: self.size[g], set, depends: self.depends[g], up, up_count, alone: 0 }
    }

    fn tie_break(&self, a: u32, b: u32) -> (u32, u32) {
        self.cx.tie_break(self.top[a as usize], self.top[b as usize])
    }

    /// A dominated path depends on nothing its dominator does not, and is in every image its
    /// dominator is in: merging it up re-pulls it with the dominator's changes, and stores the
    /// target with the images that hold the path but not the target's top.
    fn up_cost(&mut self, g: u32) -> u128 {
        let cx = self.cx;
        let target = self.find(self.tree.idom[g as usize]) as usize;
        let g = g as usize;
        let update = u128::from(self.size[g]) * u128::from(self.depends[target].saturating_sub(cx.count[g]));
        let storage = u128::from(self.size[target]) * u128::from(cx.up_count[g].saturating_sub(cx.up_count[self.top[target] as usize]));
        rounded_cost((update + storage) * BASE_WEIGHT)
    }

    /// Moves group `from` into `into`; up the tree the target already depends on everything
    /// the moved group does.
    fn merge_up(&mut self, into: u32, from: u32) {
        let (i, f) = (into as usize, from as usize);
        self.size[i] += self.size[f];
        self.next_member[self.last_member[i] as usize] = from;
        self.last_member[i] = self.last_member[f];
        self.forward[f] = into;
    }

    /// Moves top-level group `from` into top-level group `into`, which takes the union of both
    /// groups' sets.
    fn merge_across(&mut self, into: u32, from: u32) {
        let cx = self.cx;
        let (i, f) = (into as usize, from as usize);
        let theirs = self.own[f].take();
        let (their_set, their_up, _) = OwnSets::or_node(&theirs, cx, self.top[f]);
        let t = self.top[i];
        let mine = self.own[i].get_or_insert_with(|| Box::new(OwnSets::of_node(cx, t)));
        cx.universe.union_in_place_with(&mut mine.set, their_set, &mut self.tmp);
        self.depends[i] = cx.universe.count(&mine.set);
        cx.universe.union_in_place_with(&mut mine.up, their_up, &mut self.tmp);
        mine.up_count = cx.universe.count(&mine.up);
        self.top[i] = cx.higher_top(self.top[i], self.top[f]);
        self.merge_up(into, from);
    }

    /// The groups left, as [`Group`]s for the pairwise phase.
    fn into_groups(mut self) -> Vec<Group> {
        let cx = self.cx;
        let n = cx.closure.len();
        let alive: Vec<u32> = (0..n as u32).filter(|&g| self.forward[g as usize] == g).collect();
        alive
            .into_iter()
            .map(|g| {
                let mut members = Vec::new();
                let mut m = g;
                while m != NONE {
                    members.push(m);
                    m = self.next_member[m as usize];
                }
                let (gi, t) = (g as usize, self.top[g as usize] as usize);
                let (set, up, up_count) = match self.own[gi].take() {
                    Some(o) => (o.set, o.up, o.up_count),
                    None if self.top_level(g) => {
                        let o = OwnSets::of_node(cx, t as NodeId);
                        (o.set, o.up, o.up_count)
                    }
                    None => {
                        // What depends on the members: they are in the images that hold them.
                        let mut up = Vec::new();
                        cx.universe.union_all_into(&mut up, cx.up.get(t), members.iter().map(|&m| cx.up.get(m as usize)), &mut self.tmp);
                        let count = cx.universe.count(&up);
                        (cx.sets.get(t).to_vec(), up, count)
                    }
                };
                Group { members, size: self.size[gi], top: self.top[gi], set, depends: self.depends[gi], up, up_count, pos: 0 }
            })
            .collect()
    }
}

/// A top-level group's sets once a merge across has made them differ from its start node's.
struct OwnSets {
    set: Set,
    up: Set,
    up_count: u64,
}

impl OwnSets {
    /// Node `t`'s own sets, as a group starting from it has them.
    fn of_node(cx: &Ctx, t: NodeId) -> OwnSets {
        let t = t as usize;
        OwnSets { set: cx.sets.get(t).to_vec(), up: cx.up.get(t).to_vec(), up_count: cx.up_count[t] }
    }

    /// The sets of a group with top `t`: its own if it has them, else its top's.
    fn or_node<'s>(own: &'s Option<Box<OwnSets>>, cx: &'s Ctx, t: NodeId) -> (&'s [u64], &'s [u64], u64) {
        match own {
            Some(o) => (&o.set, &o.up, o.up_count),
            None => (cx.sets.get(t as usize), cx.up.get(t as usize), cx.up_count[t as usize]),
        }
    }
}

/// The tree phase's priority queue, lowest key first: one small heap per cost code. The
/// tree phase queues an entry for every path of the closure, and in one heap of them every pop
/// walked down a tree too large for the caches; keys of equal code go to the same small heap,
/// and the codes in use are few (eight per octave of cost).
#[derive(Default)]
struct CodeQueue {
    heaps: Vec<BinaryHeap<Reverse<TreeKey>>>,
    /// A bit per code whose heap is not empty.
    used: Vec<u64>,
    /// No code below this one has entries.
    lowest: usize,
}

impl CodeQueue {
    fn push(&mut self, key: TreeKey) {
        let c = key.code() as usize;
        if c >= self.heaps.len() {
            self.heaps.resize_with(c + 1, BinaryHeap::new);
            self.used.resize((c + 1).div_ceil(64), 0);
        }
        self.heaps[c].push(Reverse(key));
        self.used[c / 64] |= 1 << (c % 64);
        self.lowest = self.lowest.min(c);
    }

    fn pop(&mut self) -> Option<TreeKey> {
        let mut word = self.lowest / 64;
        let mut bits = *self.used.get(word)? & (u64::MAX << (self.lowest % 64));
        while bits == 0 {
            word += 1;
            bits = *self.used.get(word)?;
        }
        let c = word * 64 + bits.trailing_zeros() as usize;
        self.lowest = c;
        let Reverse(key) = self.heaps[c].pop().expect("a used code has entries");
        if self.heaps[c].is_empty() {
            self.used[c / 64] &= !(1 << (c % 64));
        }
        Some(key)
    }
}

/// A tree-phase queue entry in one integer, ordered as (cost, tie-break ranks, entry): the cost's
/// 16-bit code (see [`cost_code`]), the two ranks, and 48 bits naming the merge, a group merging
/// up or (top bit set) an index into the queued pairs across.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct TreeKey(u128);

enum Queued {
    Up(u32),
    Across(usize),
}

impl TreeKey {
    const ACROSS: u128 = 1 << 47;

    fn pack(cost: u128, ra: u32, rb: u32, what: u128) -> TreeKey {
        debug_assert!(what < 1 << 48);
        TreeKey(u128::from(cost_code(cost)) << 112 | u128::from(ra) << 80 | u128::from(rb) << 48 | what)
    }

    /// Group `g` (rank `rank`) merging into the group of its dominator.
    fn up(cost: u128, rank: u32, g: u32) -> TreeKey {
        TreeKey::pack(cost, rank, 0, u128::from(g))
    }

    /// The `k`-th queued pair across, whose tops have ranks `ra` < `rb`.
    fn across(cost: u128, ra: u32, rb: u32, k: usize) -> TreeKey {
        TreeKey::pack(cost, ra, rb, TreeKey::ACROSS | k as u128)
    }

    fn code(self) -> u16 {
        (self.0 >> 112) as u16
    }

    fn cost(self) -> u128 {
        cost_of_code(self.code())
    }

    fn what(self) -> Queued {
        let low = self.0 & ((1 << 48) - 1);
        if low & TreeKey::ACROSS != 0 { Queued::Across((low & !TreeKey::ACROSS) as usize) } else { Queued::Up(low as u32) }
    }
}
