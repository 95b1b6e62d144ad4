#!/usr/bin/env python3
"""A lower bound on chain-level re-pull, for any layering and any layer order of a closure.

Chain re-pull (see src/evaluate.rs) averaged over every path of the closure is, for layers in
order, sum_k size(k) * |P_k| / (n * total), where P_k is the union of the closures of layers 0..k.
Splitting layers never raises it, so one path per layer in the best order is a lower bound; that
is scheduling unit jobs (paths) with precedence (a path after everything it references) to
minimise the size-weighted sum of completion times. Sidney's decomposition splits the closure into
blocks, each the downward-closed set of largest bytes per path among what is left (found by
parametric minimum cuts); some optimal schedule takes the blocks in that order, and inside a block
B nothing can be done better than sum(size) * (|B| + 1) / 2, which gives the bound.

    python3 benches/chain-bound.py GRAPH.attrs.json [LAYERS.json]

With a group-layers output it also prints that layering's chain re-pull over all paths, the same
quantity the bound bounds (layer-eval samples packages, so its figure differs slightly).
Needs networkx (pip install networkx).
"""
import json
import sys
from fractions import Fraction

import networkx as nx


def load(path):
    graph = json.load(open(path))["graph"]
    refs = {e["path"]: [r for r in e["references"] if r != e["path"]] for e in graph}
    size = {e["path"]: e["narSize"] for e in graph}
    return refs, size


def densest_ideal(rem, refs, size):
    """The downward-closed subset of `rem` with the most bytes per path (Dinkelbach's method)."""
    best = set(rem)
    ratio = Fraction(sum(size[x] for x in best), len(best))
    while True:
        g = nx.DiGraph()
        g.add_nodes_from(["s", "t"])
        for x in rem:
            w = size[x] - ratio
            if w > 0:
                g.add_edge("s", x, capacity=w)
            elif w < 0:
                g.add_edge(x, "t", capacity=-w)
            for r in refs[x]:
                if r in rem:
                    g.add_edge(x, r)  # no capacity: infinite, taking x takes what it references
        _, (side, _) = nx.minimum_cut(g, "s", "t")
        found = side - {"s"}
        if not found:
            return best
        r = Fraction(sum(size[x] for x in found), len(found))
        if r <= ratio:
            return best
        best, ratio = found, r


def bound(refs, size):
    rem, before, total_cost, blocks = set(size), 0, Fraction(0), 0
    while rem:
        block = densest_ideal(rem, refs, size)
        total_cost += sum(size[x] for x in block) * (before + Fraction(len(block) + 1, 2))
        before += len(block)
        rem -= block
        blocks += 1
    return float(total_cost) / len(size) / sum(size.values()), blocks


def chain(refs, size, layers):
    closure = {}

    def clo(p):
        if p not in closure:
            seen, stack = {p}, [p]
            while stack:
                for r in refs[stack.pop()]:
                    if r not in seen:
                        seen.add(r)
                        stack.append(r)
            closure[p] = seen
        return closure[p]

    prefix, cost = set(), 0
    for layer in layers:
        for p in layer["contents"]:
            prefix |= clo(p)
        cost += layer["size"] * len(prefix)
    return cost / len(size) / sum(size.values())


if __name__ == "__main__":
    refs, size = load(sys.argv[1])
    lb, blocks = bound(refs, size)
    print(f"{len(size)} paths, {blocks} Sidney blocks: chain re-pull is at least {100 * lb:.1f}%")
    if len(sys.argv) > 2:
        print(f"this layering: {100 * chain(refs, size, json.load(open(sys.argv[2]))):.1f}%")
