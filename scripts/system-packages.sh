#!/usr/bin/env bash
# The Debian packages a make target drives, installed when this machine lets us: one script for
# `make test`, `make bench` and .ci/run.
#
#   scripts/system-packages.sh test    # headless Chromium and its driver (the /docs page tests), curl (one of
#                                      # the clients tests/test_lingering_close.py checks)
#   scripts/system-packages.sh bench   # wrk, the load generator of scripts/benchmark_serving.py
#
# Installs with apt-get as root, or with sudo when it needs no password. Otherwise it says exactly
# what to install and exits 0, so the tests run and skip (loudly) what needs the packages; with
# CI=true a missing package is an error.
set -euo pipefail

case ${1:-} in
  test) packages=(chromium chromium-driver curl) ;;
  bench) packages=(wrk) ;;
  *)
    echo "usage: $0 test|bench" >&2
    exit 2
    ;;
esac

missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
((${#missing[@]})) || exit 0

give_up() {
  printf 'system-packages: %s\n' "$1" >&2
  printf 'system-packages: install them yourself: sudo apt-get install %s\n' "${missing[*]}" >&2
  if [[ ${CI:-} == true ]]; then
    exit 1
  fi
  printf 'system-packages: continuing without them; what needs them is skipped and listed at the end\n' >&2
  exit 0
}

command -v apt-get >/dev/null 2>&1 || give_up "no apt-get here (not Debian or Ubuntu) to install ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo)
else
  give_up "installing ${missing[*]} needs root (or sudo without a password)"
fi
echo "system-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq >/dev/null || give_up "apt-get update failed"
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
  give_up "apt-get install ${missing[*]} failed"
