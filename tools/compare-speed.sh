#!/usr/bin/env bash
# group-layers of two builds interleaved on the same synthetic closures (10k and 100k paths, with
# popularity, budget 95), with hyperfine: the ratio tells whether a change made it slower.
#   tools/compare-speed.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS]
set -euo pipefail
old=${1:?usage: tools/compare-speed.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS]}
new=${2:?usage: tools/compare-speed.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS]}
rounds=${3:-15}
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in 10000 100000; do
  "$new/layer-eval" generate --paths $n --seed 1 --out "$work/g$n.json" --pop "$work/p$n.json" 2>/dev/null
  hyperfine --warmup 2 --runs "$rounds" -N --export-markdown "$work/r$n.md" \
    -n "old $n" "$old/group-layers --graph $work/g$n.json --pop $work/p$n.json --budget 95 --out $work/o-old.json" \
    -n "new $n" "$new/group-layers --graph $work/g$n.json --pop $work/p$n.json --budget 95 --out $work/o-new.json" >&2
  cmp "$work/o-old.json" "$work/o-new.json" || { echo "outputs differ at $n paths" >&2; exit 1; }
  cat "$work/r$n.md"
done
