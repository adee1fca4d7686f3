#!/usr/bin/env bash
# Prepares a machine to run tapepath: Debian packages (when root), a venv, the package in editable mode.
#   scripts/bootstrap.sh [--system] [--extras LIST]
#     --system   also install the Debian packages in scripts/debian-packages.txt (needs root; skipped otherwise)
#     --extras   pip extras to install (default: dev)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
system=0
extras=dev
while [ $# -gt 0 ]; do
  case "$1" in
    --system) system=1 ;;
    --extras) extras=$2; shift ;;
    *) echo "bootstrap: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

missing_debs() {
  local pkg
  sed -e 's/#.*//' -e '/^[[:space:]]*$/d' scripts/debian-packages.txt | awk '{print $1}' | while read -r pkg; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

if [ "$system" = 1 ] || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    want=$(missing_debs | tr '\n' ' ')
    if [ "$system" = 0 ]; then want="python3 python3-venv"; fi
    if [ -n "${want// /}" ]; then
      echo "bootstrap: apt-get install $want"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      # tshark asks whether non-root users may capture; the default answer is fine.
      apt-get install -y -qq --no-install-recommends $want >/dev/null
    fi
  elif [ "$system" = 1 ]; then
    echo "bootstrap: not root (or no apt-get): Debian packages not installed; tests that need them skip" >&2
  fi
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=.venv/.tapepath-$(cat pyproject.toml | sha256sum | cut -c1-16)-$extras
if [ ! -e "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$extras]"
  rm -f .venv/.tapepath-*
  touch "$stamp"
fi
