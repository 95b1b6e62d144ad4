#!/usr/bin/env bash
# Whole-image build time: build-image.nix (ours) against Nixery (2019) (made runnable by
# ../shared/tools/seed-harness), in the same run, on the ankisyncd closure replayed as real store
# paths (1.11 GB, 333 paths), no layer built yet; then the rebuild after one package changes.
#   RUNS=5 bash benches/image-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
repo=$PWD
shared=$(cd ../shared && pwd)
work=${WORK:-/var/tmp/image-build-bench}
mkdir -p "$work"
nixopts=(--option substituters '')

# The closure (about a minute the first time; the corpus is rescanned each time, as host files
# change), and a second one where one package, python3.8-requests, is rebuilt: an extra
# `mkdir bin` in its build script gives it a new store path with the same contents, so it and the
# 4 paths depending on it change, nothing else. (Changing its size in the graph would not do: the
# replay fills paths from a corpus in order, so every later path would change too.)
python3 "$shared/tools/replay/gen_replay.py" scan-corpus --out "$work/corpus.tsv" 2>/dev/null
python3 "$shared/tools/replay/gen_replay.py" generate "$shared/data/ankisyncd.multiroot.attrs.json" --corpus "$work/corpus.tsv" --out "$work/ankisyncd.nix" 2>/dev/null
python3 - "$work/ankisyncd.nix" "$work/changed.nix" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
i = next(k for k, l in enumerate(lines) if l.lstrip().startswith('"python3.8-requests-2.25.0" = mk'))
lines[i + 1] = lines[i + 1].replace('spec = "', 'spec = "D\tbin\\n', 1)
open(sys.argv[2], "w").write("\n".join(lines))
PY
for v in ankisyncd changed; do
  nix-build "${nixopts[@]}" --max-jobs 2 "$work/$v.nix" -o "$work/closure-$v" >/dev/null 2>&1
done

# Our programs, static, as build-image.nix's `tools`.
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release --target "$host" --target-dir target/static --bin group-layers --bin layer-hash
mkdir -p "$work/tools/bin"
cp "target/static/$host/release/group-layers" "target/static/$host/release/layer-hash" "$work/tools/bin/"

ours() {  # $1: closure file
  nix-build "${nixopts[@]}" "$repo/build-image.nix" --arg pkgs '{ }' --arg tools "$work/tools" --argstr name ankisyncd \
    --arg contents "import $1 { }" --arg popularity "$shared/tools/seed-harness/popularity.json" "${@:2}" -o "$work/ours-result"
}
seed() {
  nix-build "${nixopts[@]}" "$shared/tools/seed-harness/run.nix" --arg closure "$1" -o "$work/seed-result"
}
# Every image output of both pipelines (never the closure or the stand-ins), referrers included.
clean() {
  rm -f "$work/ours-result" "$work/seed-result"
  local outs
  outs=$(ls /nix/store | grep -v '\.drv$' | grep -E -- '-(manifest-output\.json(-config)?|fs-layer-list\.json|bulk-layers|layer\.tar(-record)?|[^/]*grouped-layers\.json(-explain)?|customisation-layer\.tar(-record)?|seed-baseline-config\.json|config-meta|[^/]*-image-layout)$' | sed 's|^|/nix/store/|' || true)
  if [ -n "$outs" ]; then nix-store --delete --ignore-liveness $outs >/dev/null 2>&1; fi
  sync
}
timed() {
  local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>"$work/log" || { cat "$work/log" >&2; return 1; }; t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }

# Warm-up: builds the stand-in packages of Nixery (2019) once, and checks Nixery (2019) still fails with 2 jobs.
seed "$work/ankisyncd.nix" >/dev/null 2>&1; ours "$work/ankisyncd.nix" >/dev/null 2>&1
clean
if seed "$work/ankisyncd.nix" --max-jobs 2 >/dev/null 2>"$work/seed-jobs2.log"; then seed_jobs2="succeeded"; else seed_jobs2="FAILED ($(grep -o 'file changed as we read it' "$work/seed-jobs2.log" | head -1))"; fi

s=() o=() o2=() su=() ou=()
for r in $(seq "$RUNS"); do
  clean; a=$(timed seed "$work/ankisyncd.nix")
  clean; b=$(timed ours "$work/ankisyncd.nix")
  clean; c=$(timed ours "$work/ankisyncd.nix" --max-jobs 2)
  # Rebuild after one package changed: the old image exists, the changed closure is built.
  seed "$work/ankisyncd.nix" >/dev/null 2>&1; d=$(timed seed "$work/changed.nix")
  ours "$work/ankisyncd.nix" >/dev/null 2>&1; e=$(timed ours "$work/changed.nix")
  echo "run $r: Nixery (2019) $a s, ours $b s, ours with 2 jobs $c s; after one change: Nixery (2019) $d s, ours $e s" >&2
  s+=("$a"); o+=("$b"); o2+=("$c"); su+=("$d"); ou+=("$e")
done
ms=$(printf '%s\n' "${s[@]}" | median); mo=$(printf '%s\n' "${o[@]}" | median); mo2=$(printf '%s\n' "${o2[@]}" | median)
msu=$(printf '%s\n' "${su[@]}" | median); mou=$(printf '%s\n' "${ou[@]}" | median)
printf 'ankisyncd closure, 96 layers, median of %d runs\n' "$RUNS"
printf 'fresh image:      Nixery (2019) %6.2f s   ours %6.2f s (%.0f%% of Nixery (2019))   ours --max-jobs 2 %6.2f s   Nixery (2019) --max-jobs 2: %s\n' \
  "$ms" "$mo" "$(echo "100 * $mo / $ms" | bc -l)" "$mo2" "$seed_jobs2"
printf 'after one change: Nixery (2019) %6.2f s   ours %6.2f s (%.0f%% of Nixery (2019))\n' "$msu" "$mou" "$(echo "100 * $mou / $msu" | bc -l)"
# What a registry client downloads after the change: layers whose digest is new.
ours "$work/ankisyncd.nix" >/dev/null 2>&1; cp "$work/ours-result" "$work/before.json"
ours "$work/changed.nix" >/dev/null 2>&1
python3 - "$work/before.json" "$work/ours-result" <<'PY'
import json, sys
before, after = (json.load(open(f))["manifest"]["layers"] for f in sys.argv[1:])
old = {l["digest"] for l in before}
new = [l for l in after if l["digest"] not in old]
print(f"after one change: {len(new)} of {len(after)} layers new, {sum(l['size'] for l in new) / 1e6:.0f} MB "
      f"of {sum(l['size'] for l in after) / 1e6:.0f} MB")
PY
clean
