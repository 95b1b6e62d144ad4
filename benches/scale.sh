#!/usr/bin/env bash
# Scale: what the programs do with inputs far past the usual, with time and peak memory.
#   (1) group-layers on a synthetic closure of PATHS paths (default 1,000,000), every strategy
#       that finishes in reasonable time (stable, nixery), next to reading the graph alone
#       (popularity-order is linear too);
#   (2) layer-hash on a store path holding one sparse file of BIG_GB (default 8.5) GiB: the tar
#       read back by GNU tar byte for byte (streamed into cmp), peak RSS;
#   (3) layer-hash on a store path of FILES (default 1,000,000) small files: GNU tar lists every
#       one, and umoci unpacks the layer into exactly the same files.
# Needs about 3 GB free in /var/tmp (the sparse file takes no room; its tar does: ~BIG_GB).
#   bash benches/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PATHS=${PATHS:-1000000}
BIG_GB=${BIG_GB:-8.5}
FILES=${FILES:-1000000}
cargo build --release --quiet --bin group-layers --bin layer-hash --bin layer-eval
bin=$PWD/target/release
work=$(mktemp -d /var/tmp/scale-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Runs a command (its output discarded) and prints its wall time and peak RSS.
t() { /usr/bin/time -o "$work/time" -f "%e %M" "$@" >/dev/null 2>&1; read -r s m < "$work/time"; printf '%8.2f s %9.1f MB' "$s" "$(echo "$m / 1024" | bc -l)"; }

if [ "${SKIP_GRAPH:-}" != 1 ]; then
echo "(1) group-layers, $PATHS paths"
"$bin/layer-eval" generate --paths "$PATHS" --seed 1 --out "$work/g.json" --pop "$work/p.json" 2>/dev/null
printf '  graph file %.0f MB\n' "$(echo "$(stat -c %s "$work/g.json") / 1000000" | bc -l)"
for strategy in stable nixery popularity-order; do
  printf '  %-18s ' "$strategy"; t "$bin/group-layers" --graph "$work/g.json" --pop "$work/p.json" --budget 95 --strategy $strategy --out "$work/o.json"
  printf '  %s layers\n' "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/o.json")"
done
printf '  %-18s ' "python json.load"; t python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$work/g.json"; echo
rm -f "$work/g.json" "$work/o.json"
fi

echo "(2) one sparse file of $BIG_GB GiB"
store=$work/big/nix/store; mkdir -p "$store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-big"
truncate -s "$(python3 -c "print(int($BIG_GB * 2**30))")" "$store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-big/file"
printf '  layer-hash layer     '; t "$bin/layer-hash" layer --compression none --store-dir "$store" --out "$work/big.tar" "$store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-big"; echo
tar -tvf "$work/big.tar" | sed 's/^/  /'
if tar -xOf "$work/big.tar" "${store#/}/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-big/file" | cmp - "$store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-big/file"; then echo "  GNU tar reads the file back byte for byte"; else echo "  FAILED: the file read back differs"; exit 1; fi
printf '  layer-hash, zstd     '; t "$bin/layer-hash" layer --compression zstd --store-dir "$store" --out "$work/big.tar.zst" "$store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-big"
printf '  (%s bytes)\n' "$(stat -c %s "$work/big.tar.zst")"
rm -rf "$work/big" "$work/big.tar" "$work/big.tar.zst"

echo "(3) $FILES small files"
store=$work/many/nix/store; d=$store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-many; mkdir -p "$d"
python3 - "$d" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(root, "d%03d" % (i % 1000))
    if i < 1000: os.mkdir(sub)
    with open(os.path.join(sub, "f%07d" % i), "w") as f: f.write("%d\n" % i)
PY
printf '  layer-hash layer     '; t "$bin/layer-hash" layer --compression gzip --store-dir "$store" --out "$work/many.tar.gz" "$d"; echo
entries=$(tar -tzf "$work/many.tar.gz" | grep -c -v '/$')
echo "  GNU tar lists $entries files"
[ "$entries" = "$FILES" ] || { echo "  FAILED: expected $FILES"; exit 1; }
if command -v umoci >/dev/null; then
  # An OCI image of this one layer, for umoci to unpack (it checks the diff_id and sizes).
  python3 - "$work" "$work/many.tar.gz" <<'PY'
import gzip, hashlib, json, os, shutil, sys
work, layer = sys.argv[1], sys.argv[2]
oci = os.path.join(work, "oci"); blobs = os.path.join(oci, "blobs", "sha256"); os.makedirs(blobs)
def put(b):
    d = hashlib.sha256(b).hexdigest(); open(os.path.join(blobs, d), "wb").write(b); return d, len(b)
h = hashlib.sha256(); size = 0
with open(layer, "rb") as f:
    data = f.read()
ld = hashlib.sha256(data).hexdigest(); open(os.path.join(blobs, ld), "wb").write(data)
diff = hashlib.sha256(gzip.decompress(data)).hexdigest()
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff]}}).encode()
cd, cs = put(cfg)
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": cs},
  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + ld, "size": len(data)}]}).encode()
md, ms = put(m)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "many"}}]}, open(os.path.join(oci, "index.json"), "w"))
open(os.path.join(oci, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
  printf '  umoci unpack         '; t umoci unpack --rootless --image "$work/oci:many" "$work/bundle"; echo
  if diff -r "$d" "$work/bundle/rootfs/${d#/}" >/dev/null; then echo "  umoci's files are the store's"; else echo "  FAILED: umoci's files differ"; exit 1; fi
fi
