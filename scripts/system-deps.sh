#!/usr/bin/env bash
# Installs the Debian packages Stagegate's features need, when missing and when we can.
set -euo pipefail
packages=(fonts-dejavu-core poppler-utils)
# Chromium for the browser tests: in CI, or when asked for (`make test BROWSER=1`).
if [ -n "${CI:-}" ] || [ "${BROWSER:-0}" = 1 ]; then
  packages+=(chromium chromium-driver)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "note: missing system packages ${missing[*]}; PDF and browser tests will skip" >&2
fi
