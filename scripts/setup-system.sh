#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages longattn needs besides Node, only those missing:
#   - the `gl` addon's build deps (gpujs backend, headlessgl mode): libxi-dev libxext-dev
#     libx11-dev libglu1-mesa-dev libglew-dev pkg-config
#   - an X server and GL for it: xvfb xauth libgl1-mesa-dri (Mesa llvmpipe where no GPU is)
#   - redis-server (queue engine and its tests), chromium (dashboard tests)
#   - python3-numpy: the numpy interop test and the bench's numpy peer run Debian's /usr/bin/python3
#     with it when the python3 on PATH (e.g. a pyenv one) has no numpy; the tests fail without it
# Idempotent: checks each package with dpkg first; runs `apt-get update` once, only when something
# is missing. As root it installs; otherwise through `sudo -n`; if neither works it prints what to
# install and carries on (exit 0). A package that cannot be installed is reported, never fatal:
# `gl` is an optional dependency, so everything else still installs and runs, and the gpujs
# backend's probe says why headlessgl is unavailable.
set -u

PACKAGES=(
  libxi-dev libxext-dev libx11-dev libglu1-mesa-dev libglew-dev pkg-config
  xvfb xauth libgl1-mesa-dri
  redis-server chromium
  python3-numpy
)

say() { printf 'setup-system: %s\n' "$*"; }

if ! command -v dpkg >/dev/null 2>&1; then
  say "no dpkg here (not Debian/Ubuntu); install the equivalents of: ${PACKAGES[*]}"
  exit 0
fi

installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }

missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]} == 0)); then
  say "all ${#PACKAGES[@]} system packages present"
  exit 0
fi
say "missing: ${missing[*]}"

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  say "not root and no password-less sudo; please run:"
  say "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
  exit 0
fi

APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q)
"${APT[@]}" update >/dev/null || say "apt-get update failed; trying the install with the lists there are"
if ! "${APT[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null; then
  # One unknown or broken package fails the whole transaction: retry one by one.
  for p in "${missing[@]}"; do
    installed "$p" || "${APT[@]}" install -y --no-install-recommends "$p" >/dev/null || say "could not install $p"
  done
fi

still=()
for p in "${missing[@]}"; do installed "$p" || still+=("$p"); done
if ((${#still[@]} == 0)); then
  say "installed: ${missing[*]}"
else
  say "still missing: ${still[*]} (the parts that need them will say so; everything else works)"
fi
exit 0
