#!/usr/bin/env bash
# Whole-image build time: build-image.nix (ours) against Nixery (2019) (made runnable by
# ../shared/tools/seed-harness), in the same run, on the ankisyncd closure replayed as real store
# paths (1.11 GB, 333 paths), no layer built yet; then the rebuild after one package changes.
# Ours for each compression (none, gzip, zstd), with two jobs; and the bytes a client pulls.
#   RUNS=5 bash benches/image-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
# The C compressors, for the cost of compression alone in the same run.
for t in zstd pigz; do command -v "$t" >/dev/null || apt-get install -y -q "$t" >/dev/null; done
repo=$PWD
shared=$(cd ../shared && pwd)
work=${WORK:-/var/tmp/image-build-bench}
mkdir -p "$work"
nixopts=(--option substituters '')
# shellcheck source=benches/common.sh
. "$repo/benches/common.sh"

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

static_tools

ours() {  # $1: closure file
  nix-build "${nixopts[@]}" "$repo/build-image.nix" --arg pkgs '{ }' --arg tools "$work/tools" --argstr name ankisyncd \
    --arg contents "import $1 { }" --arg popularity "$shared/tools/seed-harness/popularity.json" "${@:2}" -o "$work/ours-result"
}
seed() {
  nix-build "${nixopts[@]}" "$shared/tools/seed-harness/run.nix" --arg closure "$1" -o "$work/seed-result"
}
median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }

# Warm-up: builds the stand-in packages of Nixery (2019) once, and checks Nixery (2019) still fails with 2 jobs.
seed "$work/ankisyncd.nix" >/dev/null 2>&1; ours "$work/ankisyncd.nix" >/dev/null 2>&1
clean
if seed "$work/ankisyncd.nix" --max-jobs 2 >/dev/null 2>"$work/seed-jobs2.log"; then seed_jobs2="succeeded"; else seed_jobs2="FAILED ($(grep -o 'file changed as we read it' "$work/seed-jobs2.log" | head -1))"; fi

compressions=(none gzip zstd)
declare -A fresh rebuilt
s=() su=()
for r in $(seq "$RUNS"); do
  clean; a=$(timed seed "$work/ankisyncd.nix")
  seed "$work/ankisyncd.nix" >/dev/null 2>&1; d=$(timed seed "$work/changed.nix")
  line="run $r: Nixery (2019) $a s, after one change $d s"
  s+=("$a"); su+=("$d")
  for c in "${compressions[@]}"; do
    clean; b=$(timed ours "$work/ankisyncd.nix" --max-jobs 2 --argstr compression "$c")
    # Rebuild after one package changed: the old image exists, the changed closure is built.
    e=$(timed ours "$work/changed.nix" --max-jobs 2 --argstr compression "$c")
    fresh[$c]+="$b "; rebuilt[$c]+="$e "
    line+="; ours $c $b s, after one change $e s"
  done
  echo "$line" >&2
done
ms=$(printf '%s\n' "${s[@]}" | median); msu=$(printf '%s\n' "${su[@]}" | median)
printf 'ankisyncd closure, 96 layers, median of %d runs, ours with --max-jobs 2 (Nixery (2019) --max-jobs 2: %s)\n' "$RUNS" "$seed_jobs2"
printf '%-22s %10s %10s %16s %22s %18s\n' "" "fresh" "÷ Nixery" "÷ ours (none)" "after one change" "÷ Nixery"
printf '%-22s %9.2fs %10s %16s %21.2fs %18s\n' "Nixery (2019)" "$ms" "" "" "$msu" ""
mnone=$(printf '%s\n' ${fresh[none]} | median)
for c in "${compressions[@]}"; do
  mf=$(printf '%s\n' ${fresh[$c]} | median); mr=$(printf '%s\n' ${rebuilt[$c]} | median)
  printf '%-22s %9.2fs %10.2f %16.2f %21.2fs %18.3f\n' "ours, $c" "$mf" "$(echo "$mf / $ms" | bc -l)" "$(echo "$mf / $mnone" | bc -l)" "$mr" "$(echo "$mr / $msu" | bc -l)"
done
# What a registry client downloads: everything on a first pull, then the layers whose digest is
# new after the change, against the changed paths' own bytes in the same compression (a layer of
# them alone, which no layering can beat).
for c in "${compressions[@]}"; do
  ours "$work/ankisyncd.nix" --argstr compression "$c" >/dev/null 2>&1; cp "$work/ours-result" "$work/before.json"
  ours "$work/changed.nix" --argstr compression "$c" >/dev/null 2>&1; cp "$work/ours-result" "$work/after.json"
  comm -13 <(nix-store -qR "$work"/closure-ankisyncd* | sort) <(nix-store -qR "$work"/closure-changed* | sort) > "$work/changed-paths"
  "$work/tools/bin/layer-hash" layer --compression "$c" --out "$work/changed-alone.tar" $(cat "$work/changed-paths") 2>/dev/null > "$work/changed-alone.json"
  python3 - "$c" "$work/before.json" "$work/after.json" "$work/changed-alone.json" <<'PY'
import json, sys
c, before, after, alone = sys.argv[1], *(json.load(open(f)) for f in sys.argv[2:])
old = {l["digest"] for l in before["manifest"]["layers"]}
layers = after["manifest"]["layers"]
new = [l for l in layers if l["digest"] not in old]
total, pulled = sum(l["size"] for l in layers), sum(l["size"] for l in new)
import os
none_total = os.path.join(os.path.dirname(sys.argv[2]), "total-none")
if c == "none":
    open(none_total, "w").write(str(total))
ratio = total / int(open(none_total).read())
print(f"{c:>5}: first pull {total / 1e6:7.0f} MB ({ratio:.3f} of uncompressed); after one change {len(new)} of {len(layers)} "
      f"layers new, {pulled / 1e6:5.1f} MB, {pulled / alone['size']:.2f}x the changed paths' own {alone['size'] / 1e6:.1f} MB")
PY
done
# What compression alone costs on this machine, in the same run: the C tools on the whole closure
# as one tar, two threads each. The cost of zstd in our build (fresh zstd − fresh none) cannot fall
# below the compressor's own time less what the smaller output saves Nix (its hash and reference
# scan of the output).
"$work/tools/bin/layer-hash" layer --compression none --out "$work/all.tar" $(nix-store -qR "$work"/closure-ankisyncd*) >/dev/null 2>&1
cat "$work/all.tar" >/dev/null
zt=$(timed zstd -q -3 -T2 -c "$work/all.tar"); gt=$(timed pigz -3 -p 2 -c "$work/all.tar")
mzstd=$(printf '%s\n' ${fresh[zstd]} | median); mgzip=$(printf '%s\n' ${fresh[gzip]} | median)
printf 'compressors alone on the %d MB closure tar: zstd -3 -T2 %.2f s, pigz -3 -p 2 %.2f s\n' "$(( $(stat -c %s "$work/all.tar") / 1000000 ))" "$zt" "$gt"
printf 'cost in our fresh build (÷ the compressor alone): zstd %.2f s (%.2f), gzip %.2f s (%.2f)\n' \
  "$(echo "$mzstd - $mnone" | bc -l)" "$(echo "($mzstd - $mnone) / $zt" | bc -l)" "$(echo "$mgzip - $mnone" | bc -l)" "$(echo "($mgzip - $mnone) / $gt" | bc -l)"
rm -f "$work/all.tar"
clean
