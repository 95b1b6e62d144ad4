#!/usr/bin/env bash
# Runs every test: installs what the tests need where it is missing (Debian, as root: Nix, busybox,
# the registry and its clients, podman), then clippy with warnings as errors, then the suite.
#   tests/run.sh                 # extra arguments go to `cargo test`
# Elsewhere (not root, or not Debian) it prints the one command that installs the rest, and the
# tests that need a missing tool say SKIPPED; under CI=true they fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."
# Nix (2.8) for the image tests; busybox-static is the example package set's only builder; the
# registry and its clients (skopeo, docker-registry, umoci, oci-image-tool), podman with runc,
# Docker (docker.io) and containerd for the pull-and-run tests; sshd (openssh-server) for the
# remote-builder test; GNU tar, zstd, openssl and python3 for the other tests.
packages=(nix-bin busybox-static skopeo docker-registry umoci oci-image-tool podman runc openssh-server
          docker.io containerd zstd git tar openssl python3 python3-venv curl time bc ca-certificates)
# Without them the tests that need them say SKIPPED, except under CI=true.
if ! tools/need-packages.sh "${packages[@]}" && [ "${CI:-}" = true ]; then exit 1; fi
export PATH="$HOME/.cargo/bin:$PATH"
# Debian's busybox-static for arm64, unpacked, for the multi-architecture tests (tests/index.rs);
# without it they say SKIPPED (and fail under CI=true).
arm64=target/arm64-busybox/bin
if [ ! -x "$arm64/busybox" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  tmp=$(mktemp -d) && { chown _apt "$tmp" 2>/dev/null || chmod 777 "$tmp"; }   # apt downloads as _apt, into it
  { dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64; } &&
    apt-get update -q >/dev/null && (cd "$tmp" && apt-get download -q busybox-static:arm64 >/dev/null) &&
    dpkg-deb -x "$tmp"/busybox-static_*_arm64.deb "$tmp/x" && mkdir -p "$arm64" && cp "$tmp/x/bin/busybox" "$arm64/" \
    || echo "tests/run.sh: could not unpack Debian's busybox-static for arm64 into $arm64" >&2
  rm -rf "$tmp"
fi
# The SBOM formats' own validators, from PyPI, pinned, in a venv the SBOM tests use
# (tests/sbom.rs); without them those tests say SKIPPED (and fail under CI=true).
validators=target/validators
if [ ! -x "$validators/bin/pyspdxtools" ] || ! "$validators/bin/python" -c 'import cyclonedx.validation.json' 2>/dev/null; then
  { python3 -m venv "$validators" && "$validators/bin/pip" install -q 'spdx-tools==0.8.5' 'cyclonedx-python-lib[json-validation]==11.12.0'; } \
    || echo "tests/run.sh: could not install the SBOM validators into $validators" >&2
fi
cargo clippy --release --all-targets --quiet -- -D warnings
# Tests that could not run append a line here (tests/common/mod.rs, `skip`); counted at the end,
# so a green run says what it did not check.
skipped=target/skipped-tests.txt
rm -f "$skipped"
status=0
cargo test --release "$@" || status=$?
if [ -s "$skipped" ]; then
  echo "tests/run.sh: $(sort -u "$skipped" | wc -l) checks SKIPPED (a tool or file is missing):" >&2
  sort -u "$skipped" | sed 's/^/  /' >&2
else
  echo "tests/run.sh: no check skipped" >&2
fi
exit "$status"
