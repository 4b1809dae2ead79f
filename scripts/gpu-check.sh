#!/usr/bin/env bash
# One command for a person with an NVIDIA machine: does longattn's gpujs backend (gpu.js
# headlessgl → GL → the GPU) run correctly there, and how fast?
#
#   scripts/gpu-check.sh [--n 16384] [--d 64] [--h 8] [--block-q N] [--block-k N]
#
# 1. detects the GPU with nvidia-smi and, when there is one, sets __GLX_VENDOR_LIBRARY_NAME=nvidia
#    (GLVND then loads NVIDIA's GLX instead of Mesa's);
# 2. starts Xvfb when DISPLAY is unset (the gl addon needs an X display) and stops it at the end;
# 3. runs the gpujs conformance cases (packages/kernels/test/gpujs.test.ts and the cross-backend
#    suite's gpujs cases) against the float64 reference;
# 4. benchmarks dense attention n×n, D, H heads through gpujs tiles and prints
#    GFLOP/s = 4·Sq·Sk·D·H / s, with sampled rows checked against the reference.
# Assumes node and an installed workspace (pnpm install, with the optional gl addon built;
# scripts/setup-system.sh installs its build deps). Without an NVIDIA GPU it still runs, on
# whatever GL there is (Mesa llvmpipe: a correctness path, not a speed claim), and says so.
# 5. runs the compute-shader path (the webgpu backend: WGSL on Dawn, Vulkan then GL through EGL)
#    through scripts/gpu/check.ts: device reached, conformance, benchmark, dense and causal.
# On a machine without Node.js, carry the packaged check instead: scripts/gpu/pack.sh, then
# scripts/gpu/run.sh from the unpacked folder (docs/limits.md).
# Exit status: 0 all good; 1 a check failed, or an NVIDIA GPU is present but GL did not reach it.
set -u
cd "$(dirname "$0")/.."

N=16384 D=64 H=8 BENCH_ARGS=()
while (($#)); do
  case "$1" in
    --n) N=$2; shift 2 ;;
    --d) D=$2; shift 2 ;;
    --h) H=$2; shift 2 ;;
    --block-q|--block-k) BENCH_ARGS+=("$1" "$2"); shift 2 ;;
    *) echo "gpu-check: unknown argument $1 (use --n --d --h --block-q --block-k)" >&2; exit 2 ;;
  esac
done

say() { printf '\ngpu-check: %s\n' "$*"; }
status=0

# 1. The GPU.
NVIDIA=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  NVIDIA=1
  say "NVIDIA GPU(s):"
  nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
  export __GLX_VENDOR_LIBRARY_NAME=nvidia
else
  say "no NVIDIA GPU found (nvidia-smi); running on whatever GL is here — Mesa llvmpipe is software, a correctness path only"
fi

# 2. An X display for the gl addon.
XVFB_PID=
XVFB_LOG=/tmp/gpu-check-xvfb.$$.log
cleanup() {
  if [[ -n $XVFB_PID ]]; then kill "$XVFB_PID" 2>/dev/null; wait "$XVFB_PID" 2>/dev/null; fi
  rm -f "$XVFB_LOG"
}
trap cleanup EXIT
if [[ -z ${DISPLAY:-} ]]; then
  command -v Xvfb >/dev/null 2>&1 || { say "DISPLAY is unset and Xvfb is missing: run scripts/setup-system.sh"; exit 1; }
  DISP=
  for n in $(seq 90 140); do
    [[ -e /tmp/.X$n-lock || -e /tmp/.X11-unix/X$n ]] || { DISP=$n; break; }
  done
  [[ -n $DISP ]] || { say "no free X display number in :90..:140"; exit 1; }
  Xvfb ":$DISP" -screen 0 1024x768x24 +extension GLX -nolisten tcp >"$XVFB_LOG" 2>&1 &
  XVFB_PID=$!
  for _ in $(seq 50); do [[ -e /tmp/.X11-unix/X$DISP ]] && break; sleep 0.1; done
  kill -0 "$XVFB_PID" 2>/dev/null || { say "Xvfb did not start:"; cat "$XVFB_LOG"; exit 1; }
  export DISPLAY=":$DISP"
  say "started Xvfb on $DISPLAY"
fi

# What GL really renders with.
GL=$(node --import tsx packages/cli/src/bench/gpujs-main.ts --detect 2>&1 | tail -n 1)
say "GL renderer: $GL"
BENCH=1
if [[ $NVIDIA == 1 && ( $GL == null || $GL == *'"software":true'* ) ]]; then
  say "an NVIDIA GPU is present but GL does not reach it (renderer above): is NVIDIA's GLX (libnvidia-gl / libGLX_nvidia.so.0) installed? Skipping the full-size benchmark."
  status=1
  BENCH=0
fi

# 3. Conformance.
AVA=node_modules/.bin/ava
say "gpujs conformance (headlessgl and webasm vs the float64 reference)"
"$AVA" packages/kernels/test/gpujs.test.ts || status=1
if [[ -f test/conformance/backends.test.ts ]]; then
  "$AVA" test/conformance/backends.test.ts --match 'gpujs*' || status=1
fi

# 4. Benchmark.
if ((BENCH)); then
  say "benchmark: dense n=$N D=$D H=$H through gpujs tiles"
  node --import tsx packages/cli/src/bench/gpujs-main.ts --n "$N" --d "$D" --h "$H" ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"} || status=1
fi

# 5. The compute path (webgpu), each Dawn backend in its own process; a GPU present → software fails.
REQUIRE=()
((NVIDIA)) && REQUIRE=(--require-hardware)
for path in webgpu:vulkan webgpu:opengl; do
  say "compute path $path: device, conformance, benchmark n=$N D=$D H=$H dense and causal"
  node --import tsx scripts/gpu/check.ts --paths "$path" --n "$N" --d "$D" --h "$H" ${REQUIRE[@]+"${REQUIRE[@]}"} || status=1
done

if ((status == 0)); then say "all checks passed"; else say "SOME CHECKS FAILED (see above)"; fi
exit $status
