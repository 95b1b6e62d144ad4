//! The default strategy, `stable`: layers that survive updates, so that clients and registries
//! move and store as few bytes as possible.
//!
//! **What it optimises.** When one package of an image changes, that package and every path
//! that depends on it get new store paths, and every layer holding one of them gets a new digest
//! and is downloaded again. A path changes whenever anything in its closure changes, so a layer
//! is re-pulled whenever anything in the union of its paths' closures changes. If any package is
//! as likely to change as any other, the bytes re-pulled per update are, on average,
//!
//! ```text
//!     cost = Σ over layers L of  size(L) × |∪ closures of L's paths|   (÷ number of paths)
//! ```
//!
//! With one path per layer this is the floor no layering can beat. The budget forces paths to
//! share layers, and merging layers `a` and `b` raises the cost by
//! `size(a) × |U(b) \ U(a)| + size(b) × |U(a) \ U(b)|`, where `U` is what a layer depends on:
//! nothing for paths that change together (a program and its wrapper, two fonts), a lot for a
//! small library put next to a large application.
//!
//! **How.** Greedy agglomeration: start with one layer per path and keep making the cheapest
//! merge until the budget is met, then go on while a merge costs less than [`FREE_BYTES`] per
//! update (tiny layers whose merging costs nothing are not kept). Any two layers may merge; each
//! layer tracks its best partner, so a merge rescans only the layers it affects. Dependency sets
//! are exact bitsets up to [`EXACT_LIMIT`] paths, sketches beyond (see [`super::sketch`]). Above
//! [`PAIRWISE_LIMIT`] paths, pairwise search would be too slow, so a first phase merges along the
//! dominator tree (as in the seed, `d` dominates `p` when every chain of references to `p` passes
//! through `d`; chains start at the paths nothing references, not at the roots a user named, so
//! the same paths get the same layers however the image was asked for): a dominated path depends
//! on nothing its dominator does not, so merging it up costs exactly
//! `size × (|closure(dominator's layer top)| − |closure(path)|)`, and a priority queue makes these
//! merges in O(n log n) until the pairwise phase can take over. Up to that limit every closure
//! skips the first phase, whatever the budget: where that phase stops depends on the closure's
//! size, so two images a few paths apart would enter the pairwise phase with different groups and
//! leave it with different layers (images of 330 paths shared half as much at budget 20).
//!
//! **Chain reuse in the merges.** Classic Docker re-pulls a layer when anything below it changes
//! too (see **Order**), and a merge that costs nothing at blob level can cost a lot there: a
//! small tool merged beside the base libraries at the bottom makes every update of the tool
//! re-pull the whole image. So the pairwise phase first orders its starting groups as the final
//! order would (without its local search) and adds, for each merge, what the merged layer costs
//! in that order, the lower group moved up to the higher one's place:
//! `size(lower) × |P(higher) \ P(lower)|`, where `P(g)` is what the groups up to `g` in that
//! order depend on together (see `Ctx::chain_cost`). On ankisyncd this took chain re-pull from
//! 30.6% to 30.1% at budget 95 and from 38.9% to 32.9% at budget 20, with blob re-pull the same
//! and images of its top-level packages sharing more (storage 1.06 to 1.02, 1.92 to 1.49).
//!
//! **Big paths stay alone.** A path of at least half an average layer (the image's bytes over
//! twice the budget; largest first, as many as the budget's square root) keeps a layer of its own.
//! Such paths hold most of an image's bytes; alone, each one's layer is the same in every image
//! that holds it, so a registry stores it once, and it is re-pulled only when its own closure
//! changes. Merged, it would follow whatever the budget forced it together with, and that differs
//! between a large image and a small one. Closures the tree phase reduces first hold more apart
//! (paths of an eighth of an average layer, up to half the budget): that phase cannot see what
//! smaller images keep alone (see **Paths kept alone**), so the rule does it for the largest.
//!
//! **Storage** is the second part of each merge's cost: images built from the same packages share
//! a layer only if they hold all of its paths, so merging `a` and `b` stores bytes twice for every
//! image holding one but not the other. Images hold a path when they hold something depending on
//! it, so this cost has the same form as the update cost, with each path's *dependents* in place
//! of its closure: `size(a) × |D(b) \ D(a)| + size(b) × |D(a) \ D(b)|`.
//!
//! **Paths kept alone** add a third part to each merge's cost: images of the same packages smaller
//! than this one keep more of their paths in layers of their own, and a path merged here but alone
//! there is stored twice. So ending a path's layer of its own costs in proportion to its bytes, as
//! if it had [`ALONE_PATHS`] more paths to change with; merging into a group already merged costs
//! only the other side's. Under budget pressure, the large paths then keep their layers and the
//! small ones go together (pairwise phase only; on ankisyncd's images of 1 to 4 packages, storage
//! 1.28 to 1.15 at budget 95 and 2.10 to 1.86 at budget 20, re-pull within 0.3 point).
//!
//! **Popularity**, where given, scales that cost: a path many packages of the package set
//! reference is in many images, alone in those that can afford it (weight 4 + log2(1 +
//! popularity), against 4 without data). Without data the strategy works the same.
//!
//! **Order.** Classic Docker reuses a layer only if every layer below it is unchanged too, so
//! layers go bottom-up greedily: next is always the layer adding the fewest paths to the union of
//! what the layers below depend on (ties: the bigger layer first, then by name). Base libraries
//! end at the bottom, the application on top.
//!
//! **Determinism.** Every step depends only on the graph's shape, the paths' names (not their
//! hashes), sizes and popularity; all arithmetic is on integers, and ties are broken by name,
//! then path. A new build of a package (same name, new hash) moves no other path between layers.
//! Sizes are rounded to quarter octaves and merge costs to eighth octaves, so that small
//! differences (a package grown by a few bytes, an image with one root more) leave the costs
//! equal and the name tie-break makes the same merges: images of the same packages then share
//! their layers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::graph::{Closure, NodeId};
use crate::popularity::{name_of, Popularity};

use super::sketch::{name_hash, Set, SetTable, Universe, EXACT_LIMIT};
use super::{DomTree, Layer, Options, Reason};

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
/// not the other, not images whose budget lets them keep both apart. On ankisyncd's images of
/// 1 to 4 packages at budget 95, 32 took storage from 1.28 to 1.15 (16: 1.17), with re-pull
/// within 0.3 point; 64 split its images of top-level packages (storage 1.02 to 1.21). The tree
/// phase leaves this part out: there it re-pulled up to 0.8 point more (synthetic closures of
/// 3k paths, budget 20) and stored no less.
pub const ALONE_PATHS: u128 = 32;

/// A size rounded down to one of four steps per octave (1, 1.25, 1.5, 1.75 times a power of two).
/// Updates change sizes a little; costs computed from rounded sizes mostly stay the same, so the
/// sequence of merges, and with it every other layer, stays the same too.
pub fn rounded(size: u64) -> u64 {
    if size < 8 {
        return size;
    }
    let shift = 63 - size.leading_zeros() - 2;
    (size >> shift) << shift
}

/// A merge cost rounded down to one of eight steps per octave. The storage half of a cost counts
/// the paths depending on a group, and those differ a little between images of the same packages
/// (one root more or less). Exact costs would let such a difference reorder nearly-equal merges
/// and, through them, regroup unrelated paths; rounded, most costs stay equal and the tie-break by
/// name decides the same way in every image, so the images share their layers.
fn rounded_cost(cost: u128) -> u128 {
    if cost < 16 {
        return cost;
    }
    let shift = 127 - cost.leading_zeros() - 3;
    (cost >> shift) << shift
}

/// A merge's cost and its tie-break (the two groups' tops by name rank, lower first).
type Cost = (u128, u32, u32);

/// A rounded merge cost (see [`rounded_cost`]) in 16 bits, order kept: below 16 as is, above
/// by octave and the three bits below the leading one; `u128::MAX` (never merge) as `u16::MAX`.
fn cost_code(cost: u128) -> u16 {
    if cost == u128::MAX {
        return u16::MAX;
    }
    debug_assert_eq!(cost, rounded_cost(cost), "only rounded costs have a code");
    if cost < 16 {
        return cost as u16;
    }
    let shift = 127 - cost.leading_zeros() - 3;
    16 + (shift as u16 - 1) * 8 + ((cost >> shift) as u16 - 8)
}

fn cost_of_code(code: u16) -> u128 {
    match code {
        u16::MAX => u128::MAX,
        0..16 => u128::from(code),
        _ => u128::from((code - 16) % 8 + 8) << ((code - 16) / 8 + 1),
    }
}

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
    let hashes = name_hashes(&names);
    // The two directions are independent and the larger part of the work on big closures: one
    // each on two threads. Each result is the same whichever thread computes it. The dominator
    // tree (for closures the tree phase handles) and the name ranks go beside the closure sets,
    // the weights beside the dependents, which makes the two threads about as long.
    let ((sets, count, tree, rank), (up, up_count, weight)) = std::thread::scope(|scope| {
        let down = scope.spawn(|| {
            let (sets, count) = sets_and_counts(&closure.nodes.iter().map(|x| &x.references[..]).collect::<Vec<_>>(), &hashes, universe);
            (sets, count, (closure.len() > PAIRWISE_LIMIT).then(|| DomTree::of_path_set(closure)), name_rank(closure, &names))
        });
        let referrers = closure.referrers();
        let (up, up_count) = sets_and_counts(&referrers.iter().map(|r| &r[..]).collect::<Vec<_>>(), &hashes, universe);
        drop(referrers);
        (down.join().expect("closure sets thread"), (up, up_count, weights(closure, pop)))
    });
    let big = big_paths(closure, &rank, opts.budget);
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
        tree_phase(&cx, tree.expect("a dominator tree for closures this large"), opts.budget.max(pairwise), free)
    } else {
        (0..closure.len() as NodeId).map(|i| cx.single(i)).collect()
    };
    let groups = if groups.len() <= 4 * PAIRWISE_LIMIT {
        let (groups, chain) = reference_order(&cx, groups);
        cx.chain = chain;
        pairwise_phase(&cx, groups, opts.budget, free)
    } else {
        groups
    };
    order_bottom_up(&cx, groups)
}

/// The paths that keep a layer of their own: those of at least half an average layer (rounded
/// sizes, see [`rounded`]), the largest first (ties by name), at most the square root of the
/// budget and a quarter of it, so that the rest of the closure keeps most of the layers: each
/// path held apart forces one more merge elsewhere, and in images a few paths apart forced merges
/// are where their layers start to differ (on ankisyncd's images, a quarter of 95 cost more sharing
/// than it gained; the square root, 5 of 20 and 10 of 95, gains at both budgets).
///
/// Closures the tree phase reduces first (over [`PAIRWISE_LIMIT`] paths) hold more apart: paths
/// of at least an eighth of an average layer, at most half the budget. The tree phase has no
/// alone part (see [`ALONE_PATHS`]), so there mid-size paths go into their dominators' groups,
/// while the smaller images of the same packages, which skip that phase, keep them alone: each
/// such path was stored twice. On the synthetic closures of 10k paths at budget 95 this took
/// storage from 1.043 to 1.032 (auto-layer: 1.033; seeds 2 and 3: 1.055 to 1.033, 1.129 to
/// 1.086), for 1.2 points more blob re-pull (5.5%, auto-layer 70%). Below the limit the pairwise
/// phase's alone part does this work, and more paths held apart only forced other merges.
fn big_paths(closure: &Closure, rank: &[u32], budget: usize) -> Vec<bool> {
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

impl Ctx<'_> {
    /// A group holding one big path alone (see [`big_paths`]): it merges with nothing.
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

    /// The cost of merging two groups in the pairwise phase, and its tie-break (the groups' tops
    /// by name): the bytes re-pulled more often after updates, blob level (from what they depend
    /// on) and chain level (from where they stand in the reference order), plus the bytes stored
    /// twice by images holding one group but not the other (from what depends on them).
    fn merge_cost(&self, a: &Group, b: &Group) -> Cost {
        let (ra, rb) = self.tie_break(a, b);
        if self.held_apart(a) || self.held_apart(b) {
            // After every other merge: never needed, as big paths are at most half the
            // budget and everything else could merge into one layer first.
            return (u128::MAX, ra, rb);
        }
        let (sa, sb) = (self.side(a), self.side(b));
        let blob_and_storage = self.exact_cost_of_unions(&sa, &sb, self.unions(&sa, &sb));
        (rounded_cost(blob_and_storage + self.chain_cost(a, b) * BASE_WEIGHT), ra, rb)
    }

    /// The chain half of a merge's cost. With the layers in the reference order, each placed
    /// where its highest member stands, a layer is re-pulled (chain level) whenever anything in
    /// the order up to there changes; merged, the lower of the two groups moves up to the higher
    /// one's place, and its bytes are re-pulled for every path in the order between the two.
    /// That order changes little as groups merge, so this stays a close estimate of what the
    /// final order makes of the merge. Blob cost alone cannot see it: a small tool merged into
    /// the base libraries' layer costs little there, but every update of the tool then re-pulls
    /// the bottom layer and everything above it.
    fn chain_cost(&self, a: &Group, b: &Group) -> u128 {
        // Positions are distinct: each starting group has its own, and a group takes its highest.
        let (low, high) = if a.pos < b.pos { (a, b) } else { (b, a) };
        u128::from(low.size) * u128::from(self.chain[high.pos as usize] - self.chain[low.pos as usize])
    }

    /// The sizes of the unions of two groups' sets: what the merged group would depend on, and
    /// what would depend on it. Most of a merge cost's work; it changes only when a set does.
    fn unions(&self, a: &Side, b: &Side) -> (u64, u64) {
        (self.universe.union_count(a.set, b.set), self.universe.union_count(a.up, b.up))
    }

    /// The rounded blob and storage cost of merging two groups, from the sizes of the unions of
    /// their sets (see [`Ctx::merge_cost`]; the tree phase has no chain half).
    fn cost_of_unions(&self, a: &Side, b: &Side, unions: (u64, u64)) -> u128 {
        rounded_cost(self.exact_cost_of_unions(a, b, unions))
    }

    /// [`Ctx::cost_of_unions`] before rounding.
    fn exact_cost_of_unions(&self, a: &Side, b: &Side, (set, up): (u64, u64)) -> u128 {
        let (sa, sb) = (u128::from(a.size), u128::from(b.size));
        let extra = |both: u64, ca: u64, cb: u64| ((sa + sb) * u128::from(both)).saturating_sub(sa * u128::from(ca) + sb * u128::from(cb));
        let update = extra(set, a.depends, b.depends);
        let storage = extra(up, a.up_count, b.up_count);
        (update + storage) * BASE_WEIGHT + a.alone + b.alone
    }

    /// The tie-break between merges of equal cost: the two groups' tops by name rank.
    fn tie_break(&self, a: &Group, b: &Group) -> (u32, u32) {
        let (ra, rb) = (self.rank[a.top as usize], self.rank[b.top as usize]);
        (ra.min(rb), ra.max(rb))
    }

    /// Moves `from` into `into`.
    fn absorb(&self, into: &mut Group, from: Group) {
        self.universe.union_in_place(&mut into.set, &from.set);
        into.depends = self.universe.count(&into.set);
        self.universe.union_in_place(&mut into.up, &from.up);
        into.up_count = self.universe.count(&into.up);
        into.size += from.size;
        into.pos = into.pos.max(from.pos);
        let key = |t: NodeId| (self.count[t as usize], Reverse(self.rank[t as usize]));
        if key(from.top) > key(into.top) {
            into.top = from.top;
        }
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

/// Greedy agglomeration over all pairs. Each group keeps one entry in a heap: its cheapest
/// partner at the time it last changed. An entry naming a group that changed since is refreshed
/// when it reaches the top; a merged group looks at every other group again, so every pair is
/// covered by the entry of whichever of its two groups changed last. A pair's cost changes only
/// when one of its groups does, so a table keeps every pair's cost (16 bits, see [`cost_code`])
/// and a refresh reads it instead of comparing the groups' sets again.
fn pairwise_phase(cx: &Ctx, groups: Vec<Group>, budget: usize, free: u128) -> Vec<Group> {
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
            .filter_map(|j| slots[j].as_ref().map(|gj| ((cost_of_code(row[j]), cx.tie_break(gi, gj)), j)))
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

/// For large closures: merges along the dominator tree (and between neighbouring top-level
/// layers) in cost order, down to `target` groups.
fn tree_phase(cx: &Ctx, tree: DomTree, target: usize, free: u128) -> Vec<Group> {
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
        let (ra, rb) = (self.cx.rank[self.top[a as usize] as usize], self.cx.rank[self.top[b as usize] as usize]);
        (ra.min(rb), ra.max(rb))
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
        let key = |t: NodeId| (cx.count[t as usize], Reverse(cx.rank[t as usize]));
        if key(self.top[f]) > key(self.top[i]) {
            self.top[i] = self.top[f];
        }
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

/// Each node's merge-cost weight: [`BASE_WEIGHT`], plus the bit length of 1 + popularity (about
/// its log2) where the popularity data knows the name.
fn weights(closure: &Closure, pop: &Popularity) -> Vec<u8> {
    // At most 4 + 64: a byte each keeps the tree phase's arrays small.
    let base = BASE_WEIGHT as u8;
    closure.nodes.iter().map(|x| pop.get(&x.path).map_or(base, |p| base + (64 - p.saturating_add(1).leading_zeros()) as u8)).collect()
}

/// Each node's rank in (name, path) order: the tie-break that survives renaming.
fn name_rank(closure: &Closure, names: &[&str]) -> Vec<u32> {
    // The first 16 bytes of a name, zero-padded, as one integer: where two of them differ they
    // order the names as the bytes do, so the string comparisons are left to equal prefixes
    // (100k names: 19 ms -> 8 ms).
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
fn name_hashes(names: &[&str]) -> Vec<u64> {
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
fn sets_and_counts(edges: &[&[NodeId]], hashes: &[u64], universe: Universe) -> (SetTable, Vec<u64>) {
    let sets = closure_sets(edges, hashes, universe);
    let counts = (0..edges.len()).map(|i| universe.count(sets.get(i))).collect();
    (sets, counts)
}

/// For each node, the set of nodes reachable from it through `edges` (itself included), built
/// from the far end: with references, each path's closure; with referrers, its dependents.
fn closure_sets(edges: &[&[NodeId]], hashes: &[u64], universe: Universe) -> SetTable {
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
/// cost more than it gains (on 10k paths, a tenth of a second per round for no better layers).
/// Sets each group's position (from 1) and returns how many paths the first `t` groups depend on
/// together, for every `t`.
fn reference_order(cx: &Ctx, groups: Vec<Group>) -> (Vec<Group>, Vec<u64>) {
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
fn order_bottom_up(cx: &Ctx, groups: Vec<Group>) -> Vec<Layer> {
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
        groups.sort_by(|a, b| {
            (u128::from(a.depends) * u128::from(b.size.max(1)))
                .cmp(&(u128::from(b.depends) * u128::from(a.size.max(1))))
                .then_with(|| b.size.cmp(&a.size))
                .then_with(|| cx.rank[a.top as usize].cmp(&cx.rank[b.top as usize]))
        });
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
            .min_by(|&a, &b| {
                let (ga, gb) = (&groups[a], &groups[b]);
                (u128::from(growth[a]) * u128::from(gb.size.max(1)))
                    .cmp(&(u128::from(growth[b]) * u128::from(ga.size.max(1))))
                    .then_with(|| gb.size.cmp(&ga.size))
                    .then_with(|| cx.rank[ga.top as usize].cmp(&cx.rank[gb.top as usize]))
            })
            .expect("non-empty");
        let g = groups.swap_remove(best);
        below = if below.is_empty() { g.set.clone() } else { cx.universe.union(&below, &g.set) };
        below_count = cx.universe.count(&below);
        ordered.push(g);
    }
    ordered
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_codes_round_trip_in_order() {
        let mut costs: Vec<u128> = (0..200u32).flat_map(|e| [1u128, 3, 5, 7, 9, 11, 13, 15].map(|m| rounded_cost(m.checked_shl(e).unwrap_or(0)))).collect();
        costs.extend([u128::MAX, rounded_cost(u128::MAX - 1)]);
        costs.sort_unstable();
        costs.dedup();
        for w in costs.windows(2) {
            assert!(cost_code(w[0]) < cost_code(w[1]), "{} and {}", w[0], w[1]);
        }
        for &c in &costs {
            assert_eq!(cost_of_code(cost_code(c)), c);
        }
    }

    #[test]
    fn rounded_costs_keep_three_bits_below_the_leading_one() {
        assert_eq!(rounded_cost(15), 15);
        assert_eq!(rounded_cost(0b1_0111_0110), 0b1_0110_0000);
        assert_eq!(rounded_cost(u128::MAX), 0b1111 << 124);
        for c in [100u128, 12345, 1 << 40, (1 << 70) + 12345] {
            let r = rounded_cost(c);
            assert!(r <= c && c - r < (c >> 3), "{c} -> {r}");
            assert_eq!(rounded_cost(r), r);
        }
    }
}
