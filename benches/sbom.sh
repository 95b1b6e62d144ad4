#!/usr/bin/env bash
# Benchmark: `layer-hash sbom` (both documents) on synthetic nixpkgs-shaped closures of 1k, 10k
# and 100k paths (layer-eval generate, plus a narHash per path). Median of 5 and peak RSS, next
# to a baseline measured in the same run: Python reading the same graph and writing it back
# (json.load + json.dump), the least any Python SBOM tool does with it.
#   bash benches/sbom.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin layer-hash --bin layer-eval
bin=target/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() {
  local times=() rss=0 t m
  for _ in 1 2 3 4 5; do
    rm -rf "$work/out"
    /usr/bin/time -o "$work/time" -f "%e %M" "$@" >/dev/null 2>&1
    read -r t m < "$work/time"
    times+=("$t"); if (( m > rss )); then rss=$m; fi
  done
  printf '%s %s\n' "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)" "$rss"
}

printf '%-8s %-34s %10s %10s %8s\n' paths program "median s" "peak MB" ratio
for n in 1000 10000 100000; do
  $bin/layer-eval generate --paths $n --seed 1 --out "$work/raw.json" 2>/dev/null
  python3 - "$work/raw.json" "$work/g.json" <<'PY'
import hashlib, json, sys
g = json.load(open(sys.argv[1]))
for e in g["graph"]:
    e["narHash"] = "sha256:" + hashlib.sha256(e["path"].encode()).hexdigest()
json.dump(g, open(sys.argv[2], "w"))
PY
  read -r tb mb < <(measure python3 -c 'import json, sys; json.dump(json.load(open(sys.argv[1])), open(sys.argv[2], "w"))' "$work/g.json" "$work/copy.json")
  read -r t m < <(measure $bin/layer-hash sbom --graph "$work/g.json" --image-name bench --out "$work/out")
  printf '%-8s %-34s %10s %10.1f %8s\n' $n "python json.load + json.dump" "$tb" "$(echo "$mb/1024" | bc -l)" ""
  printf '%-8s %-34s %10s %10.1f %8.2f\n' $n "layer-hash sbom (SPDX + CycloneDX)" "$t" "$(echo "$m/1024" | bc -l)" "$(echo "$t / $tb" | bc -l)"
done
