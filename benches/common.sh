# Shared by the image-build benchmarks (sourced; they set `work`, their scratch directory).

# Deletes every image output of both pipelines, ours and Nixery (2019)'s (never a closure or the
# stand-in packages), referrers included, so that the next build starts from nothing.
clean() {
  rm -f "$work/ours-result" "$work/seed-result"
  local outs
  outs=$(ls /nix/store | grep -v '\.drv$' | grep -E -- '-(manifest-output\.json(-config)?|fs-layer-list\.json|bulk-layers|layer\.tar(\.gz|\.zst)?(-record)?|[^/]*grouped-layers\.json(-explain)?|customisation-layer\.tar(\.gz|\.zst)?(-record)?|seed-baseline-config\.json|config-meta|[^/]*-(image|oci|index-oci)-layout|[^/]*-index\.json(-layout)?|[^/]*-stream|[^/]*-sbom)$' | sed 's|^|/nix/store/|' || true)
  if [ -n "$outs" ] && ! nix-store --delete --ignore-liveness $outs >/dev/null 2>"$work/clean.log"; then
    echo "$(basename "$0"): could not delete the image outputs (are other builds running?):" >&2; tail -3 "$work/clean.log" >&2; return 1
  fi
  sync
}

# Runs a command, its output discarded (its stderr kept in $work/log), and prints its wall time in seconds.
timed() {
  local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>"$work/log" || { cat "$work/log" >&2; return 1; }; t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

# Our programs, static, as build-image.nix's `tools`, in $work/tools.
static_tools() {
  local host; host=$(rustc -vV | sed -n 's/^host: //p')
  RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release --target "$host" --target-dir target/static --bin group-layers --bin layer-hash
  mkdir -p "$work/tools/bin"
  cp "target/static/$host/release/group-layers" "target/static/$host/release/layer-hash" "$work/tools/bin/"
}
