#!/usr/bin/env bash
# Benchmark: one layer of a multi-GB store-like tree, in the same run:
#   (a) the pipeline of Nixery (2019): GNU tar, then sha256sum, then openssl md5 | base64;
#   (b) md5 alone over the same tarball (openssl dgst -md5): the practical limit here;
#   (c) layer-hash layer --compression none: tar, sha256 and md5 in one pass;
#   (d) the same with a `perms` rule on every store path matching every entry (owner and mode set
#       on each): what perms costs.
# Throughput is tarball bytes per second, median of $RUNS runs; peak RSS of (c) from GNU time.
#   SIZE_GB=4 RUNS=3 bash benches/layer-hash.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_GB=${SIZE_GB:-4}
RUNS=${RUNS:-3}
cargo build --release --quiet --bin layer-hash
bin=$PWD/target/release/layer-hash
work=$(mktemp -d /var/tmp/layer-hash-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
store=$work/root/nix/store
mkdir -p "$store"

# A store-like tree: 24 store paths, each with bin/, lib/ and share/ holding files from 100 bytes
# to a few hundred MB (heavy-tailed, as real closures), plus symlinks and hard links.
python3 - "$store" "$SIZE_GB" <<'PY'
import os, random, sys
store, gb = sys.argv[1], float(sys.argv[2])
target = int(gb * 1e9)
rnd = random.Random(42)
block = rnd.randbytes(64 << 20)
written, i = 0, 0
while written < target:
    p = os.path.join(store, "%032x-pkg-%d" % (rnd.getrandbits(128), i)); i += 1
    for d in ("bin", "lib", "share/doc"):
        os.makedirs(os.path.join(p, d))
    for j in range(rnd.randint(20, 400)):
        size = min(int(rnd.paretovariate(0.9) * 2000), 400 << 20, target - written)
        f = os.path.join(p, rnd.choice(("bin", "lib", "share/doc")), "f%04d" % j)
        with open(f, "wb") as out:
            left, off = size, rnd.randrange(len(block))
            while left:
                n = min(left, len(block) - off); out.write(block[off:off + n]); left -= n; off = 0
        written += size
        if written >= target: break
    os.symlink("lib", os.path.join(p, "lib64"))
    first = os.path.join(p, "bin", sorted(os.listdir(os.path.join(p, "bin")))[0]) if os.listdir(os.path.join(p, "bin")) else None
    if first: os.link(first, os.path.join(p, "share", "hardlink"))
print("tree: %d store paths, %.2f GB" % (i, written / 1e9), file=sys.stderr)
PY
paths=("$store"/*)
find "$store" -type f -exec cat {} + > /dev/null   # the tree in the page cache, as a store in use

median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }
# Fairness on these VMs: writing a fresh file is cheap only on memory freed moments before (the
# host takes idle guest memory back), so each writer removes the *other* writer's output right
# before it starts, untimed, and flushes pending writeback with sync. Order per round: seed,
# layer-hash, md5-alone; each writer then follows the other, the same way in every round.
timed() {
  local remove=$1; shift
  rm -f "$remove"; sync
  local t0 t1; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
seed_pipeline() {
  tar --sort=name --hard-dereference --mtime=@1 --owner=0 --group=0 -cf "$work/seed.tar" -C "$work/root" nix
  sha256sum "$work/seed.tar" > /dev/null
  openssl dgst -md5 -binary "$work/seed.tar" | base64 > /dev/null
}
md5_alone() { openssl dgst -md5 "$work/ref.tar" > /dev/null; }
ours() { /usr/bin/time -o "$work/time" -f "%M" "$bin" layer --compression none --store-dir "$store" --out "$work/ours.tar" "${paths[@]}" > /dev/null 2>&1; }
perms=$(python3 -c 'import json, sys; print(json.dumps([{"path": p, "regex": ".*", "mode": "0750", "uid": 1000, "gid": 1000} for p in sys.argv[1:]]))' "${paths[@]}")
ours_perms() { "$bin" layer --compression none --store-dir "$store" --perms "$perms" --out "$work/ours.tar" "${paths[@]}" > /dev/null 2>&1; }

"$bin" layer --compression none --store-dir "$store" --out "$work/ref.tar" "${paths[@]}" > /dev/null 2>&1
bytes=$(stat -c %s "$work/ref.tar")
timed /nonexistent seed_pipeline > /dev/null   # warm-up round, not counted
timed "$work/seed.tar" ours > /dev/null
r_seed=() r_md5=() r_perms=() tp_seed=() tp_md5=() tp_ours=() rss=0
for r in $(seq "$RUNS"); do
  a=$(timed "$work/ours.tar" seed_pipeline); c=$(timed "$work/seed.tar" ours); b=$(timed /nonexistent md5_alone)
  m=$(cat "$work/time"); if (( m > rss )); then rss=$m; fi
  p=$(timed "$work/ours.tar" ours_perms)
  echo "run $r: Nixery (2019) $a s, md5 $b s, ours $c s, ours with perms $p s" >&2
  r_perms+=("$(echo "$p / $c" | bc -l)")
  tp_seed+=("$(echo "$bytes / $a / 1000000" | bc -l)"); tp_md5+=("$(echo "$bytes / $b / 1000000" | bc -l)"); tp_ours+=("$(echo "$bytes / $c / 1000000" | bc -l)")
  r_seed+=("$(echo "$a / $c" | bc -l)"); r_md5+=("$(echo "100 * $b / $c" | bc -l)")
done
printf 'layer: %.2f GB, %d runs, medians\n' "$(echo "$bytes / 1000000000" | bc -l)" "$RUNS"
printf '(a) Nixery (2019) pipeline (tar; sha256sum; openssl md5) %8.0f MB/s\n' "$(printf '%s\n' "${tp_seed[@]}" | median)"
printf '(b) md5 alone (openssl dgst -md5)               %8.0f MB/s\n' "$(printf '%s\n' "${tp_md5[@]}" | median)"
printf '(c) layer-hash layer                            %8.0f MB/s   peak RSS %.1f MB\n' "$(printf '%s\n' "${tp_ours[@]}" | median)" "$(echo "$rss / 1024" | bc -l)"
printf 'per-run ratios: layer-hash / seed = %.2f x, layer-hash / md5-alone = %.0f%%\n' "$(printf '%s\n' "${r_seed[@]}" | median)" "$(printf '%s\n' "${r_md5[@]}" | median)"
printf '(d) with a perms rule matching every entry: %.2f x the time of (c)\n' "$(printf '%s\n' "${r_perms[@]}" | median)"
