//! Walks over the reference graph: what a path depends on, and what depends on it.
//!
//! An update of a package gives it and every path depending on it new store paths; an image of
//! some roots holds everything they reference. Both are the same walk, along referrers or along
//! references, and every part of the library that needs one uses these.

use super::{Closure, NodeId};

/// Marks every node reached from `starts` by following `next` (the starts included), entering
/// only nodes `within` allows. Reference cycles (malformed input) are walked once.
pub fn reach<'a>(
    count: usize,
    starts: impl IntoIterator<Item = NodeId>,
    next: impl Fn(NodeId) -> &'a [NodeId],
    within: impl Fn(NodeId) -> bool,
) -> Vec<bool> {
    let mut reached = vec![false; count];
    reach_into(&mut reached, starts, next, within);
    reached
}

/// [`reach`] that adds to marks already made: nodes marked before are neither entered again nor
/// walked through, so a search can go on from where an earlier one stopped.
pub fn reach_into<'a>(
    reached: &mut [bool],
    starts: impl IntoIterator<Item = NodeId>,
    next: impl Fn(NodeId) -> &'a [NodeId],
    within: impl Fn(NodeId) -> bool,
) {
    let mut stack: Vec<NodeId> = starts.into_iter().filter(|&s| !reached[s as usize] && within(s)).collect();
    while let Some(x) = stack.pop() {
        if !std::mem::replace(&mut reached[x as usize], true) {
            stack.extend(next(x).iter().copied().filter(|&r| !reached[r as usize] && within(r)));
        }
    }
}

impl Closure {
    /// `v` and every path that depends on it, marked by id: what an update of `v` changes.
    /// `referrers` is [`Closure::referrers`], passed in so that many calls share it.
    pub fn dependents_of(&self, referrers: &[Vec<NodeId>], v: NodeId) -> Vec<bool> {
        reach(self.len(), [v], |x| &referrers[x as usize], |_| true)
    }

    /// The paths `roots` reference, directly or not, themselves included, marked by id: what an
    /// image of those roots holds.
    pub fn closure_of(&self, roots: &[NodeId]) -> Vec<bool> {
        reach(self.len(), roots.iter().copied(), |x| &self.nodes[x as usize].references, |_| true)
    }

    /// For each path, how many other paths depend on it, directly or not.
    pub fn dependent_counts(&self) -> Vec<u64> {
        let referrers = self.referrers();
        // One stamp array for every walk: a node is counted once per start.
        let mut stamp = vec![u32::MAX; self.len()];
        let mut stack = Vec::new();
        (0..self.len() as NodeId)
            .map(|start| {
                let mut count = 0;
                stack.push(start);
                stamp[start as usize] = start;
                while let Some(x) = stack.pop() {
                    for &r in &referrers[x as usize] {
                        if stamp[r as usize] != start {
                            stamp[r as usize] = start;
                            count += 1;
                            stack.push(r);
                        }
                    }
                }
                count
            })
            .collect()
    }

    /// The paths nothing references: where every chain of references starts.
    pub fn sources(&self) -> Vec<NodeId> {
        let mut referenced = vec![false; self.len()];
        self.nodes.iter().flat_map(|x| &x.references).for_each(|&r| referenced[r as usize] = true);
        (0..self.len() as NodeId).filter(|&i| !referenced[i as usize]).collect()
    }
}
