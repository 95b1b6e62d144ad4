#!/usr/bin/env bash
# Prints one line per group-layers and layer-eval run: what ran and the sha256 of its output.
# Run it with the binaries of two commits and diff the lists to show a change keeps the bytes:
#   tools/output-digests.sh OLD_BIN_DIR > old.txt; tools/output-digests.sh target/release > new.txt
#   diff old.txt new.txt
# Inputs: the real graphs and popularity files of ../shared/data, and synthetic closures of 1k,
# 10k and 20k paths (the last above the exact-set limit), every strategy, budgets 95 and 20,
# with and without popularity; the --explain tables too.
set -euo pipefail
bin=${1:?usage: tools/output-digests.sh BIN_DIR}
cd "$(dirname "$0")/.."
data=../shared/data
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin/layer-eval" generate --paths 1000 --seed 3 --out "$work/synth-1k.json" --pop "$work/synth-1k.pop" 2>/dev/null
"$bin/layer-eval" generate --paths 10000 --seed 1 --out "$work/synth-10k.json" --pop "$work/synth-10k.pop" 2>/dev/null
"$bin/layer-eval" generate --paths 20000 --seed 2 --out "$work/synth-20k.json" --pop "$work/synth-20k.pop" 2>/dev/null
for g in "$work"/synth-*.json; do echo "generate $(basename "$g") $(sha256sum < "$g" | cut -c1-64)"; done
run() {
  local label=$1; shift
  if "$bin/group-layers" "$@" --out "$work/out.json" --explain 2> "$work/err"; then
    grep -v '^grouping\|^wrote' "$work/err" > "$work/explain" || true
    echo "$label $(sha256sum < "$work/out.json" | cut -c1-64) explain $(sha256sum < "$work/explain" | cut -c1-64)"
  else
    echo "$label failed: $(tail -1 "$work/err")"
  fi
}
for strategy in stable nixery popularity-order auto-layer; do
  for budget in 95 20; do
    for g in ankisyncd ankisyncd.multiroot hello-2.10; do
      run "$g $strategy $budget nopop" --graph "$data/$g.attrs.json" --budget "$budget" --strategy "$strategy"
      run "$g $strategy $budget pop" --graph "$data/$g.attrs.json" --pop "$data/popularity-ankisyncd.json" --budget "$budget" --strategy "$strategy"
      run "$g $strategy $budget narinfo" --graph "$data/$g.attrs.json" --pop "$data/popularity-narinfo-sample.json" --budget "$budget" --strategy "$strategy"
    done
    for s in 1k 10k 20k; do
      run "synth-$s $strategy $budget nopop" --graph "$work/synth-$s.json" --budget "$budget" --strategy "$strategy"
      run "synth-$s $strategy $budget pop" --graph "$work/synth-$s.json" --pop "$work/synth-$s.pop" --budget "$budget" --strategy "$strategy"
    done
  done
done
# The evaluation: re-pull, storage and floors on the real closure (every strategy, one sample).
"$bin/layer-eval" measure --graph "$data/ankisyncd.attrs.json" --pop "$data/popularity-ankisyncd.json" --budget 95 \
  --strategy stable --strategy nixery --strategy auto-layer --strategy popularity-order > "$work/measure" 2>/dev/null
echo "layer-eval measure ankisyncd 95 $(sha256sum < "$work/measure" | cut -c1-64)"
