#!/usr/bin/env python3
"""The least chain re-pull that any layering of a closure can reach, over updates of every path.

    pip install highspy networkx
    python3 tools/chain-optimum.py ../shared/data/ankisyncd.multiroot.attrs.json

`layer-eval` reports a chain floor (src/chain_floor.rs) that is cheap and always valid but can be
loose: on ankisyncd it says 29.2% where, as this script shows, nothing goes below 30.24%. This
script finds the true least value, or brackets it closely, with a MIP solver. It takes minutes, so
it is an analysis to run by hand, not part of the tests.

Why it is a scheduling problem. Chain re-pull after an update of `v` is at least the bytes of
every layer from the lowest one holding `v` or a path depending on it, up to the top (those
layers change; a grouping that moves other paths too only adds to it). Splitting a layer can
only lower that, so the least value over all layerings is the least over orders of single paths.
In such an order a path placed below something it references only makes things worse, so the
order can be taken bottom-up (dependencies first). Then the cost of updating `v` is the bytes from
`v`'s own position up, and summed over every `v` it is the sum, over paths, of the path's size
times its position counted from 1. That is one machine, unit-time jobs (the paths), weights (their
sizes), precedence (references first), least weighted sum of completion times: NP-hard in general.

How it is solved. Sidney's theorem: some optimal order starts with the downward-closed set of
most bytes per path, then does the same among the rest, block after block; the blocks are found
exactly, as maximum-weight closures (minimum cuts) in Dinkelbach's iteration. Inside a block the
order is a time-indexed integer program: `done[j][t]` says path `j` is placed among the block's
first `t`, monotone in `t`, exactly `t` paths done at `t`, and a path done at `t` only if what it
references was done at `t - 1`. HiGHS solves the small blocks exactly; for a large one it stops at
the time limit with a proven lower bound and the best order it found. The report gives both, as
shares of the closure's bytes averaged over updates of every path (what `layer-eval measure` gives
with `--samples` at least the closure's size; a sample of fewer paths is an unbiased estimate of
it for any layering chosen without knowing the sample).

Options: --time-limit SECONDS per block (default 600); --order FILE writes the best order found,
as store paths from the bottom up.
"""

import argparse
import json
import os
import sys
import time
import math
from fractions import Fraction

try:
    import highspy
    import networkx
    import numpy
except ImportError as missing:
    sys.exit(f"chain-optimum: {missing.name} is missing: pip install highspy networkx")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def quiet_highs():
    """A HiGHS instance with its log off; its banner, printed on creation, goes to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        highs = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    highs.setOptionValue("output_flag", False)
    return highs


def load(path):
    """Store paths sorted by name, their sizes, and their references as indices (no self-references)."""
    try:
        with open(path) as f:
            graph = json.load(f)["graph"]
        for e in graph:
            e["path"], e["narSize"], e["references"]  # noqa: B018 - every entry needs all three
    except (OSError, ValueError) as err:
        sys.exit(f"chain-optimum: {path}: {err}")
    except (KeyError, TypeError) as err:
        sys.exit(f"chain-optimum: {path}: not a closure graph (entries of path, narSize, references): missing {err}")
    graph.sort(key=lambda e: e["path"].encode())
    index = {e["path"]: i for i, e in enumerate(graph)}
    refs = []
    for i, e in enumerate(graph):
        try:
            refs.append(sorted({index[r] for r in e["references"]} - {i}))
        except KeyError as missing:
            sys.exit(f"chain-optimum: {path}: {e['path']} references {missing}, which is not in the graph")
    return [e["path"] for e in graph], [e["narSize"] for e in graph], refs


def densest_ideal(left, size, refs):
    """The downward-closed subset of `left` with the most bytes per path (Dinkelbach's iteration).

    Each step asks for the closure maximising `size(X) - ratio * |X|`; scaling by the current set's
    path count keeps every capacity an integer, so the cut and the ratio are exact.
    """
    best = sorted(left)
    while True:
        ratio = Fraction(sum(size[i] for i in best), len(best))
        net = networkx.DiGraph()
        net.add_nodes_from(["s", "t"])
        for i in left:
            gain = size[i] * ratio.denominator - ratio.numerator
            if gain > 0:
                net.add_edge("s", i, capacity=gain)
            elif gain < 0:
                net.add_edge(i, "t", capacity=-gain)
            for r in refs[i]:
                if r in left:
                    net.add_edge(i, r)  # no capacity: infinite, taking i takes what it references
        _, (source_side, _) = networkx.minimum_cut(net, "s", "t")
        found = sorted(v for v in source_side if v != "s")
        if not found or sum(size[i] for i in found) * ratio.denominator <= ratio.numerator * len(found):
            return best
        best = found


def order_block(block, size, refs, time_limit):
    """The best order of one Sidney block by a time-indexed MIP: (order, cost, proven lower bound, status).

    Costs are in position units (size times position within the block, counted from 1).
    """
    k = len(block)
    if k == 1:
        return list(block), size[block[0]], size[block[0]], "single"
    where = {j: n for n, j in enumerate(block)}
    steps = k - 1  # done[j][t] for t in 1..k-1; nothing is done at 0, everything at k

    def col(j, t):
        return where[j] * steps + t - 1

    total = sum(size[j] for j in block)
    scale = 1.0 / total  # keeps the objective near 1 for the solver's tolerances
    highs = quiet_highs()
    highs.setOptionValue("time_limit", float(time_limit))
    highs.setOptionValue("mip_rel_gap", 1e-9)
    cols = k * steps
    # position of j = k - sum_t done[j][t]; the constant k * total is added back below
    cost = numpy.zeros(cols)
    for j in block:
        for t in range(1, k):
            cost[col(j, t)] = -size[j] * scale
    highs.addVars(cols, numpy.zeros(cols), numpy.ones(cols))
    everything = numpy.arange(cols, dtype=numpy.int32)
    highs.changeColsCost(cols, everything, cost)
    highs.changeColsIntegrality(cols, everything, numpy.full(cols, highspy.HighsVarType.kInteger))
    lo, hi, starts, idx, val = [], [], [], [], []

    def row(low, high, terms):
        starts.append(len(idx))
        lo.append(low)
        hi.append(high)
        for c, v in terms:
            idx.append(c)
            val.append(v)

    inf = highspy.kHighsInf
    for j in block:
        for t in range(2, k):
            row(-inf, 0, [(col(j, t - 1), 1), (col(j, t), -1)])
    for t in range(1, k):
        row(t, t, [(col(j, t), 1) for j in block])
    for j in block:
        for r in direct_in(j, where, refs):
            row(-inf, 0, [(col(j, 1), 1)])
            for t in range(2, k):
                row(-inf, 0, [(col(j, t), 1), (col(r, t - 1), -1)])
    highs.addRows(len(lo), numpy.array(lo, float), numpy.array(hi, float), len(idx),
                  numpy.array(starts, dtype=numpy.int32), numpy.array(idx, dtype=numpy.int32),
                  numpy.array(val, float))
    highs.run()
    status = highs.modelStatusToString(highs.getModelStatus())
    info = highs.getInfo()
    if info.primal_solution_status == 2:  # 2: feasible
        done = highs.getSolution().col_value
        position = {j: k - sum(round(done[col(j, t)]) for t in range(1, k)) for j in block}
        order = sorted(block, key=lambda j: position[j])
    else:
        order, status = heaviest_first(block, size, refs), status + ", no order from the solver: heaviest first"
    cost_found = sum(size[j] * (n + 1) for n, j in enumerate(order))
    # Without a solver bound, a path still sits no lower than its closure within the block.
    bound = sum(size[j] * len(closure_in(j, where, refs)) for j in block)
    if math.isfinite(info.mip_dual_bound):
        bound = max(bound, info.mip_dual_bound / scale + k * total)
    return order, cost_found, min(bound, cost_found), status


def closure_in(j, block, refs):
    seen, stack = {j}, [j]
    while stack:
        for r in refs[stack.pop()]:
            if r in block and r not in seen:
                seen.add(r)
                stack.append(r)
    return seen


def direct_in(j, block, refs):
    """What `j` references in the block and reaches no other way: the rest follows, and fewer rows solve faster."""
    inside = [r for r in refs[j] if r in block]
    return [r for r in inside if not any(r != o and r in closure_in(o, block, refs) for o in inside)]


def heaviest_first(block, size, refs):
    """A bottom-up order of the block placing, at each step, the largest path whose references are placed."""
    members, placed, order = set(block), set(), []
    while len(order) < len(block):
        ready = [j for j in block if j not in placed and all(r in placed or r not in members for r in refs[j])]
        pick = max(ready, key=lambda j: (size[j], -j))
        placed.add(pick)
        order.append(pick)
    return order


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graph", help="closure graph in the .attrs.json shape (what group-layers reads)")
    parser.add_argument("--time-limit", type=float, default=600, help="seconds per block (default 600)")
    parser.add_argument("--order", help="write the best order found here, bottom first")
    args = parser.parse_args()

    paths, size, refs = load(args.graph)
    n, total = len(paths), sum(size)
    if n == 0 or total == 0:
        sys.exit(f"chain-optimum: {args.graph}: the graph holds no bytes")
    log(f"read {n} paths, {total / 2**20:.1f} MiB, from {args.graph}")
    started = time.monotonic()
    left, order, found, proven = set(range(n)), [], 0, 0.0
    while left:
        block = densest_ideal(left, size, refs)
        before = len(order)
        block_order, cost, bound, status = order_block(block, size, refs, args.time_limit)
        block_bytes = sum(size[j] for j in block)
        # every path of the block sits `before` positions higher than within the block
        found += cost + before * block_bytes
        proven += bound + before * block_bytes
        order += block_order
        left -= set(block)
        if len(block) > 1:
            log(f"block of {len(block)} paths ({block_bytes / 2**20:.1f} MiB) after {before}: {status}, "
                f"gap {100 * (cost - bound) / (n * total):.4f} points")
    # Check the order on its own terms: dependencies first, and its cost recomputed from scratch.
    position = {j: p for p, j in enumerate(order)}
    assert sorted(order) == list(range(n))
    assert all(position[r] < position[j] for j in range(n) for r in refs[j]), "order is not bottom-up"
    recomputed = sum(size[j] * (position[j] + 1) for j in range(n))
    assert recomputed == found, (recomputed, found)
    log(f"solved in {time.monotonic() - started:.0f} s")
    print(f"least chain re-pull over updates of every path: at least {100 * proven / (n * total):.4f}%, "
          f"reached {100 * found / (n * total):.4f}% (best order found)")
    if args.order:
        with open(args.order, "w") as f:
            json.dump([paths[j] for j in order], f, indent=1)


if __name__ == "__main__":
    main()
