#!/usr/bin/env bash
# Installs those of the named Debian packages that are missing (as root, with apt-get); elsewhere
# (not root, or no apt-get) prints the one command that would, and exits 1. The README's two
# commands use it to set up a fresh machine.
#   tools/need-packages.sh PACKAGE...
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]}..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q "${missing[@]}" >&2
else
  echo "missing ${missing[*]}; on Debian or Ubuntu install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
