#!/usr/bin/env bash
# Benchmark: group-layers on synthetic nixpkgs-shaped closures of 1k, 10k and 100k paths.
# Reports wall time (median of 5) and peak RSS, next to the reference model of Nixery (2019) (Python) and
# process start-up (`group-layers --version`) measured in the same run as baselines.
#   bash benches/group-layers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin group-layers --bin layer-eval
bin=target/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model=../shared/tools/seed-harness/group-layers-model.py

# median wall seconds and max RSS (KB) of 5 runs of a command
measure() {
  local times=() rss=0 t m
  for _ in 1 2 3 4 5; do
    /usr/bin/time -o "$work/time" -f "%e %M" "$@" >/dev/null 2>&1
    read -r t m < "$work/time"
    times+=("$t"); if (( m > rss )); then rss=$m; fi
  done
  printf '%s %s\n' "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)" "$rss"
}

printf '%-8s %-24s %10s %10s\n' paths program "median s" "peak MB"
read -r t m < <(measure $bin/group-layers --version)
printf '%-8s %-24s %10s %10.1f\n' - "start-up (--version)" "$t" "$(echo "$m/1024" | bc -l)"
for n in 1000 10000 100000; do
  $bin/layer-eval generate --paths $n --seed 1 --out "$work/g.json" --pop "$work/p.json" 2>/dev/null
  for strategy in stable nixery; do
    read -r t m < <(measure $bin/group-layers --graph "$work/g.json" --pop "$work/p.json" --budget 95 --strategy $strategy --out "$work/o.json")
    printf '%-8s %-24s %10s %10.1f\n' $n "group-layers $strategy" "$t" "$(echo "$m/1024" | bc -l)"
  done
  if [ -f "$model" ] && [ $n -le 10000 ]; then
    read -r t m < <(measure python3 "$model" --graph "$work/g.json" --pop "$work/p.json" --budget 95 --out "$work/m.json")
    printf '%-8s %-24s %10s %10.1f\n' $n "Nixery (2019) model (python)" "$t" "$(echo "$m/1024" | bc -l)"
  fi
done
