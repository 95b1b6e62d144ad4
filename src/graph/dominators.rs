//! Dominators: which paths are in an image only because of another.
//!
//! Path `d` dominates path `p` when every chain of references from the image's root to `p` passes
//! through `d`. Both the `nixery` strategy (its candidate layers) and `stable` (its tree phase)
//! group paths along this tree.

use super::walk::reach_into;
use super::{Closure, NodeId};

/// The dominator tree of a closure under a synthetic image root.
///
/// Path `d` dominates path `p` when every chain of references from the image root to `p` passes
/// through `d`: then `p` is in the image only because of `d`, and belongs with it. The synthetic
/// root references the image's roots and any `hoisted` paths; a path nothing reaches gets a root
/// edge too (the sources of the unreached part first), so that no path is ever lost.
pub struct DomTree {
    /// Immediate dominator of each node; `closure.len()` stands for the synthetic root.
    pub idom: Vec<u32>,
    /// Nodes that got a root edge only because nothing else reached them.
    pub unreachable: Vec<NodeId>,
}

impl DomTree {
    pub fn build(closure: &Closure, hoisted: &[NodeId]) -> DomTree {
        let mut root_edges: Vec<NodeId> = closure.roots.iter().chain(hoisted).copied().collect();
        root_edges.sort_unstable();
        root_edges.dedup();
        DomTree::with_root_edges(closure, root_edges)
    }

    /// The tree whose synthetic root references only the paths nothing references, whichever
    /// paths were named as roots: it depends on the set of paths alone.
    pub fn of_path_set(closure: &Closure) -> DomTree {
        DomTree::with_root_edges(closure, Vec::new())
    }

    fn with_root_edges(closure: &Closure, root_edges: Vec<NodeId>) -> DomTree {
        let n = closure.len();
        let tree_with = |unreachable: Vec<NodeId>| {
            let edges: Vec<NodeId> = root_edges.iter().chain(&unreachable).copied().collect();
            let succ = |v: u32| -> &[u32] {
                if v as usize == n { &edges } else { &closure.nodes[v as usize].references }
            };
            let idom = immediate_dominators(n + 1, n as u32, succ)?;
            Some(DomTree { idom: idom[..n].to_vec(), unreachable })
        };
        // Without named roots the paths nothing references reach everything, unless a reference
        // cycle (malformed input) hides some: only then is the slower search needed.
        if root_edges.is_empty()
            && let Some(tree) = tree_with(closure.sources())
        {
            return tree;
        }
        tree_with(unreached_sources(closure, &root_edges)).expect("every node reachable once unreached sources have root edges")
    }

    /// For each node, the child of the synthetic root whose subtree holds it.
    pub fn top_of_each(&self) -> Vec<NodeId> {
        let root = self.idom.len() as u32;
        let mut top = vec![u32::MAX; self.idom.len()];
        let mut chain = Vec::new();
        for v in 0..self.idom.len() {
            let mut x = v as u32;
            while top[x as usize] == u32::MAX {
                let d = self.idom[x as usize];
                if d == root {
                    top[x as usize] = x;
                    break;
                }
                chain.push(x);
                x = d;
            }
            let t = top[x as usize];
            for y in chain.drain(..) {
                top[y as usize] = t;
            }
        }
        top
    }
}

/// Nodes to give a root edge so that everything is reachable: the sources (no referrer) of the
/// unreached part, then, should a reference cycle hide the rest, its smallest node, until done.
fn unreached_sources(closure: &Closure, root_edges: &[NodeId]) -> Vec<NodeId> {
    let n = closure.len();
    let mut reached = vec![false; n];
    let visit = |from: &[NodeId], reached: &mut [bool]| {
        reach_into(reached, from.iter().copied(), |x| &closure.nodes[x as usize].references, |_| true);
    };
    visit(root_edges, &mut reached);
    if reached.iter().all(|&r| r) {
        return Vec::new();
    }
    let mut has_unreached_referrer = vec![false; n];
    for (i, node) in closure.nodes.iter().enumerate() {
        if !reached[i] {
            for &r in &node.references {
                has_unreached_referrer[r as usize] = true;
            }
        }
    }
    let mut extra: Vec<NodeId> = (0..n as u32).filter(|&i| !reached[i as usize] && !has_unreached_referrer[i as usize]).collect();
    visit(&extra, &mut reached);
    while let Some(first) = reached.iter().position(|r| !r) {
        extra.push(first as NodeId);
        visit(&[first as NodeId], &mut reached);
    }
    extra
}

/// Immediate dominators by Cooper, Harvey and Kennedy's iterative algorithm ("A Simple, Fast
/// Dominance Algorithm", 2001), on flat arrays: petgraph's version of the same algorithm keeps its
/// state in hash maps, several times slower on large closures (docs/evaluation.md).
/// `succ(v)` lists the successors of `v`; `None` if some node is not reachable from `root`. A
/// reference graph is acyclic, and then one pass in reverse postorder settles every node (its
/// predecessors all come before it); only a cycle, which the depth-first search notices, needs
/// passes until nothing changes.
pub fn immediate_dominators<'a>(count: usize, root: u32, succ: impl Fn(u32) -> &'a [u32]) -> Option<Vec<u32>> {
    const UNSET: u32 = u32::MAX;
    // Reverse postorder by an explicit-stack depth-first search.
    let mut postorder = Vec::with_capacity(count);
    // 0: not seen, 1: on the search's stack, 2: done.
    let mut state = vec![0u8; count];
    let mut cyclic = false;
    let mut stack: Vec<(u32, usize)> = vec![(root, 0)];
    state[root as usize] = 1;
    while let Some(&mut (v, ref mut next)) = stack.last_mut() {
        let s = succ(v);
        if let Some(&w) = s.get(*next) {
            *next += 1;
            match state[w as usize] {
                0 => {
                    state[w as usize] = 1;
                    stack.push((w, 0));
                }
                1 => cyclic = true,
                _ => {}
            }
        } else {
            state[v as usize] = 2;
            postorder.push(v);
            stack.pop();
        }
    }
    if postorder.len() != count {
        return None;
    }
    // Work in postorder numbers: a dominator always has a higher number than what it dominates.
    let mut number = vec![0u32; count];
    for (i, &v) in postorder.iter().enumerate() {
        number[v as usize] = i as u32;
    }
    let mut pred_start = vec![0u32; count + 1];
    for v in 0..count as u32 {
        for &w in succ(v) {
            pred_start[number[w as usize] as usize + 1] += 1;
        }
    }
    for i in 0..count {
        pred_start[i + 1] += pred_start[i];
    }
    let mut fill = pred_start.clone();
    let mut preds = vec![0u32; pred_start[count] as usize];
    for v in 0..count as u32 {
        for &w in succ(v) {
            let slot = &mut fill[number[w as usize] as usize];
            preds[*slot as usize] = number[v as usize];
            *slot += 1;
        }
    }
    let top = count as u32 - 1;
    let mut idom = vec![UNSET; count];
    idom[top as usize] = top;
    let mut changed = true;
    while changed {
        changed = false;
        for b in (0..top).rev() {
            let mut new = UNSET;
            for &p in &preds[pred_start[b as usize] as usize..pred_start[b as usize + 1] as usize] {
                if idom[p as usize] == UNSET {
                    continue;
                }
                new = if new == UNSET {
                    p
                } else {
                    let (mut x, mut y) = (p, new);
                    while x != y {
                        while x < y {
                            x = idom[x as usize];
                        }
                        while y < x {
                            y = idom[y as usize];
                        }
                    }
                    x
                };
            }
            if idom[b as usize] != new {
                idom[b as usize] = new;
                changed = true;
            }
        }
        changed &= cyclic;
    }
    let mut by_node = vec![0u32; count];
    for (i, &v) in postorder.iter().enumerate() {
        by_node[v as usize] = postorder[idom[i] as usize];
    }
    Some(by_node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Successor lists of `n` nodes from random pairs (lower to higher index when `acyclic`, so
    /// no cycles), and a root `n` with edges to every node nothing references (and to node 0).
    fn random_graph(n: usize, pairs: Vec<(usize, usize)>, acyclic: bool) -> Vec<Vec<u32>> {
        let mut succ: Vec<Vec<u32>> = vec![Vec::new(); n + 1];
        for (a, b) in pairs {
            let (a, b) = (a % n, b % n);
            let (from, to) = if acyclic { (a.max(b), a.min(b)) } else { (a, b) };
            if from != to && !succ[from].contains(&(to as u32)) {
                succ[from].push(to as u32);
            }
        }
        let referenced: Vec<bool> = (0..n).map(|i| succ.iter().any(|s| s.contains(&(i as u32)))).collect();
        succ[n] = (0..n as u32).filter(|&i| i == 0 || !referenced[i as usize]).collect();
        succ
    }

    /// petgraph's immediate dominators of every node but the root; `None` where unreachable.
    fn petgraph_dominators(succ: &[Vec<u32>]) -> Vec<Option<usize>> {
        use petgraph::graph::{DiGraph, NodeIndex};
        let n = succ.len() - 1;
        let mut g: DiGraph<(), ()> = DiGraph::new();
        for _ in 0..=n {
            g.add_node(());
        }
        for (v, s) in succ.iter().enumerate() {
            for &w in s {
                g.add_edge(NodeIndex::new(v), NodeIndex::new(w as usize), ());
            }
        }
        let theirs = petgraph::algo::dominators::simple_fast(&g, NodeIndex::new(n));
        (0..n).map(|v| theirs.immediate_dominator(NodeIndex::new(v)).map(|d| d.index())).collect()
    }

    proptest! {
        /// Our flat-array dominators agree with petgraph's on random DAGs under a root.
        #[test]
        fn dominators_match_petgraph(n in 1usize..60, pairs in prop::collection::vec((0usize..60, 0usize..60), 0..200)) {
            let succ = random_graph(n, pairs, true);
            let ours = immediate_dominators(n + 1, n as u32, |v| &succ[v as usize]).expect("all reachable");
            let theirs = petgraph_dominators(&succ);
            prop_assert_eq!(ours[..n].iter().map(|&d| Some(d as usize)).collect::<Vec<_>>(), theirs);
        }

        /// The same with reference cycles (malformed input, where one pass is not enough), and
        /// `None` exactly when a cycle leaves nodes unreachable from the root.
        #[test]
        fn dominators_match_petgraph_with_cycles(n in 1usize..40, pairs in prop::collection::vec((0usize..40, 0usize..40), 0..120)) {
            let succ = random_graph(n, pairs, false);
            let theirs = petgraph_dominators(&succ);
            match immediate_dominators(n + 1, n as u32, |v| &succ[v as usize]) {
                None => prop_assert!(theirs.iter().any(Option::is_none)),
                Some(ours) => prop_assert_eq!(ours[..n].iter().map(|&d| Some(d as usize)).collect::<Vec<_>>(), theirs),
            }
        }
    }
}
