//! The default strategy, `stable`: layers that survive updates, so that clients and registries
//! move and store as few bytes as possible. `docs/layering.md` explains it for users; measured
//! numbers behind each rule are in `docs/evaluation.md`.
//!
//! A merge of two groups costs the bytes it makes clients re-pull after updates and registries
//! store twice ([`costs`]). Greedy agglomeration makes the cheapest merge first until the budget
//! is met, then goes on while merges are free ([`FREE_BYTES`]). Closures of over
//! [`PAIRWISE_LIMIT`] paths are first reduced along the dominator tree ([`tree`]), where a merge's
//! cost is known from the tree; the rest is merged pairwise ([`pairwise`]). Big paths keep layers
//! of their own ([`big`]). The layers are then ordered bottom-up ([`order`]).
//!
//! The sets behind the costs (what each path depends on, what depends on it: [`sets`]) are exact
//! bitsets up to [`sketch::EXACT_LIMIT`] paths and sketches beyond ([`sketch`]).
//!
//! **Determinism.** Every step depends only on the graph's shape, the paths' names (not their
//! hashes), sizes and popularity; all arithmetic is on integers, and ties are broken by name,
//! then path, so a new build of a package (same name, new hash) moves no other path between
//! layers. Sizes and costs are rounded (see [`costs::rounded`]) so that small differences leave
//! costs equal and the name tie-break makes the same merges in images of the same packages.

mod big;
mod costs;
mod order;
mod pairwise;
mod sets;
pub mod sketch;
mod tree;

use std::cmp::Reverse;

use crate::graph::dominators::DomTree;
use crate::graph::{name_of, Closure, NodeId};
use crate::layering::{Layer, Options};
use crate::popularity::Popularity;

pub use costs::rounded;
use sketch::{Set, SetTable, Universe};

/// Below this many bytes re-pulled per update on average, a merge counts as free.
pub const FREE_BYTES: u128 = 4096;

/// Most paths the pairwise phase takes on its own (it looks at every pair); above, the tree phase
/// first reduces the closure to this many groups, or, beyond [`EXACT_LIMIT`] paths, to four times
/// the budget within these bounds.
pub const PAIRWISE_LIMIT: usize = 768;
const PAIRWISE_FLOOR: usize = 256;

/// Weight of a path without popularity data: the unit merge costs count in, and what a path's
/// popularity scales [`ALONE_PATHS`] from.
const BASE_WEIGHT: u128 = 4;

/// What ending a path's layer of its own costs, per byte and unit of the path's weight, counted
/// as if the path had this many more paths to change with. Images of the same packages that
/// are smaller than this one keep more of their paths alone, and a layer is shared only by its
/// exact set of paths: a path merged here, but alone in a smaller image, is stored twice. The
/// storage part of a merge's cost cannot see this, as it counts images holding one group but
/// not the other, not images whose budget lets them keep both apart. The value and why the tree
/// phase leaves this part out: docs/evaluation.md.
pub const ALONE_PATHS: u128 = 32;

/// What both phases know of the closure.
struct Ctx<'a> {
    closure: &'a Closure,
    universe: Universe,
    /// Each node's closure (itself included) as a set: what it changes with.
    sets: SetTable,
    count: Vec<u64>,
    /// Each node's dependents (itself included): the images that contain it.
    up: SetTable,
    up_count: Vec<u64>,
    weight: Vec<u8>,
    rank: Vec<u32>,
    /// Paths that keep a layer of their own (see [`big_paths`]).
    big: Vec<bool>,
    /// `chain[t]`: how many paths the first `t` groups of the reference order depend on together
    /// (see [`reference_order`]); empty until the pairwise phase starts.
    chain: Vec<u64>,
}

/// What a merge's cost reads of a group, wherever the group keeps it.
struct Side<'a> {
    size: u64,
    set: &'a [u64],
    depends: u64,
    up: &'a [u64],
    up_count: u64,
    /// What ending the group's layer of its own costs (see [`ALONE_PATHS`]); 0 once merged.
    alone: u128,
}

/// A layer in the making.
struct Group {
    members: Vec<NodeId>,
    /// The sum of the members' rounded sizes (see [`rounded`]).
    size: u64,
    /// The member shown as the layer's top: the one depending on the most paths.
    top: NodeId,
    /// What the group depends on, and its size.
    set: Set,
    depends: u64,
    /// What depends on the group's paths, and its size.
    up: Set,
    up_count: u64,
    /// Where the group's highest member stands in the reference order of the pairwise phase's
    /// start (see [`reference_order`]); 0 before that order is made.
    pos: u32,
}

pub fn group(closure: &Closure, pop: &Popularity, opts: &Options) -> Vec<Layer> {
    let names: Vec<&str> = closure.nodes.iter().map(|x| name_of(&x.path)).collect();
    let universe = Universe::for_size(closure.len());
    let hashes = sets::name_hashes(&names);
    // The two directions are independent and the larger part of the work on big closures: one
    // each on two threads. Each result is the same whichever thread computes it. The dominator
    // tree (for closures the tree phase handles) and the name ranks go beside the closure sets,
    // the weights beside the dependents, which makes the two threads about as long.
    let ((sets, count, tree, rank), (up, up_count, weight)) = std::thread::scope(|scope| {
        let down = scope.spawn(|| {
            let (sets, count) = sets::sets_and_counts(&closure.nodes.iter().map(|x| &x.references[..]).collect::<Vec<_>>(), &hashes, universe);
            (sets, count, (closure.len() > PAIRWISE_LIMIT).then(|| DomTree::of_path_set(closure)), sets::name_rank(closure, &names))
        });
        let referrers = closure.referrers();
        let (up, up_count) = sets::sets_and_counts(&referrers.iter().map(|r| &r[..]).collect::<Vec<_>>(), &hashes, universe);
        drop(referrers);
        (down.join().expect("closure sets thread"), (up, up_count, sets::weights(closure, pop)))
    });
    let big = big::big_paths(closure, &rank, opts.budget);
    let mut cx = Ctx { closure, universe, sets, count, up, up_count, weight, rank, big, chain: Vec::new() };
    let free = FREE_BYTES * closure.len() as u128 * BASE_WEIGHT;
    let groups = if closure.len() > PAIRWISE_LIMIT {
        // The pairwise phase chooses better merges than the tree phase can, so it gets as many
        // groups as it takes; with sketches each of its comparisons costs a walk of two lists,
        // so there it starts from four times the budget (within bounds) instead.
        let pairwise = match universe {
            Universe::Exact { .. } => PAIRWISE_LIMIT,
            Universe::Sketched => (4 * opts.budget).clamp(PAIRWISE_FLOOR, PAIRWISE_LIMIT),
        };
        tree::tree_phase(&cx, tree.expect("a dominator tree for closures this large"), opts.budget.max(pairwise), free)
    } else {
        (0..closure.len() as NodeId).map(|i| cx.single(i)).collect()
    };
    let groups = if groups.len() <= 4 * PAIRWISE_LIMIT {
        let (groups, chain) = order::reference_order(&cx, groups);
        cx.chain = chain;
        pairwise::pairwise_phase(&cx, groups, opts.budget, free)
    } else {
        groups
    };
    order::order_bottom_up(&cx, groups)
}

impl Ctx<'_> {
    /// A group holding one big path alone (see [`big::big_paths`]): it merges with nothing.
    fn held_apart(&self, g: &Group) -> bool {
        g.members.len() == 1 && self.big[g.top as usize]
    }

    /// What ending path `i`'s layer of its own costs (see [`ALONE_PATHS`]): popularity raises it,
    /// as a path many packages reference is in many images, alone in those that can afford it.
    fn alone(&self, i: NodeId) -> u128 {
        ALONE_PATHS * u128::from(self.weight[i as usize]) * u128::from(rounded(self.closure.nar_size(i)))
    }

    fn side<'g>(&self, g: &'g Group) -> Side<'g> {
        let alone = if g.members.len() == 1 { self.alone(g.top) } else { 0 };
        Side { size: g.size, set: &g.set, depends: g.depends, up: &g.up, up_count: g.up_count, alone }
    }

    fn single(&self, i: NodeId) -> Group {
        let i_us = i as usize;
        Group {
            members: vec![i],
            size: rounded(self.closure.nodes[i_us].nar_size),
            top: i,
            set: self.sets.get(i_us).to_vec(),
            depends: self.count[i_us],
            up: self.up.get(i_us).to_vec(),
            up_count: self.up_count[i_us],
            pos: 0,
        }
    }

    /// The tie-break between merges of equal cost: the two groups' tops (`ta`, `tb`) by name
    /// rank, lower first. Both phases use it, so equal costs fall the same way in each.
    fn tie_break(&self, ta: NodeId, tb: NodeId) -> (u32, u32) {
        let (ra, rb) = (self.rank[ta as usize], self.rank[tb as usize]);
        (ra.min(rb), ra.max(rb))
    }

    /// Of two tops, the one a merged group shows: the path depending on the most, then the first
    /// by name.
    fn higher_top(&self, a: NodeId, b: NodeId) -> NodeId {
        let key = |t: NodeId| (self.count[t as usize], Reverse(self.rank[t as usize]));
        if key(b) > key(a) { b } else { a }
    }

    /// Moves `from` into `into`.
    fn absorb(&self, into: &mut Group, from: Group) {
        self.universe.union_in_place(&mut into.set, &from.set);
        into.depends = self.universe.count(&into.set);
        self.universe.union_in_place(&mut into.up, &from.up);
        into.up_count = self.universe.count(&into.up);
        into.size += from.size;
        into.pos = into.pos.max(from.pos);
        into.top = self.higher_top(into.top, from.top);
        extend_members(&mut into.members, from.members);
    }
}

/// Appends `from` to `into`, keeping the longer vector so repeated merges stay linear overall.
fn extend_members(into: &mut Vec<NodeId>, mut from: Vec<NodeId>) {
    if from.len() > into.len() {
        std::mem::swap(into, &mut from);
    }
    into.extend(from);
}
