#!/usr/bin/env bash
# The whole test suite, from a fresh clone: install, lint + format check, typecheck, every ava test under Xvfb
# (gpu.js's headless-gl mode runs real GLSL shaders on Mesa there).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== lint and format (biome)"
npx biome check --error-on-warnings .
echo "== typecheck"
npx tsc -p tsconfig.json
echo "== tests"
xvfb-run -a --server-args="-screen 0 1280x1024x24" npx ava "$@"
