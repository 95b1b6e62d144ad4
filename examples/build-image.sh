#!/usr/bin/env bash
# Builds an image from the example package set (examples/pkgs.nix), on a machine with cargo but
# no nixpkgs: installs Nix and busybox where they are missing (Debian, as root; elsewhere it says
# the command), builds the two programs with cargo (statically linked, so they also run in the
# Nix sandbox), then the image with build-image.nix, and says where it is and how to push it.
#   examples/build-image.sh [PACKAGES_JSON] [NAME]      e.g. examples/build-image.sh '["hello", "busybox"]' hello
set -euo pipefail
cd "$(dirname "$0")/.."
packages=${1:-'["hello", "busybox"]'}
name=${2:-hello}

# Nix to build with; Debian's static busybox is the example package set's only builder.
# Nix installed some other way is fine too.
needed=(busybox-static)
command -v nix-build >/dev/null || needed+=(nix-bin)
tools/need-packages.sh "${needed[@]}"

host=$(rustc -vV | sed -n 's/^host: //p')
echo "building group-layers and layer-hash (static, $host)..." >&2
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release --target "$host" \
  --target-dir target/static --bin group-layers --bin layer-hash
mkdir -p target/image-tools/bin
cp "target/static/$host/release/group-layers" "target/static/$host/release/layer-hash" target/image-tools/bin/

args=(build-image.nix --option substituters '' --arg pkgs 'import ./examples/pkgs.nix { }'
      --arg tools ./target/image-tools --argstr name "$name" --argstr packages "$packages")
echo "building image $name from $packages..." >&2
nix-build "${args[@]}" -o result
nix-build "${args[@]}" -A layout -o result-layout >/dev/null
tag=$(nix-instantiate --eval --read-write-mode --option substituters '' --expr \
  "(import ./build-image.nix { pkgs = import ./examples/pkgs.nix { }; tools = ./target/image-tools; name = \"$name\"; packages = ''$packages''; }).imageTag" | tr -d '"')

if grep -q '"error"' result; then
  echo "no image: $(cat result)" >&2
  exit 1
fi
cat >&2 <<MSG

image $name:$tag
  manifest-output.json (manifest + layerLocations): ./result -> $(readlink result)
  skopeo dir: layout:                             ./result-layout
push it to a registry with:
  skopeo copy --preserve-digests dir:./result-layout docker://HOST/$name:$tag
MSG
