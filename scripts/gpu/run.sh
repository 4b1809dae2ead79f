#!/usr/bin/env bash
# longattn's packaged GPU check, as it runs on a machine with no Node.js and no network (built by
# scripts/gpu/pack.sh into .gpu-carry/longattn-gpu.tar.gz; see docs/limits.md). From the unpacked
# folder, with its own Node binary and loader libraries, it runs each GPU path in turn in its own
# process — webgpu:vulkan (compute shaders), webgpu:opengl (compute shaders through EGL),
# gpujs:headlessgl (fragment shaders through GLX; needs an Xvfb) — and prints which device it
# reached, the conformance cases against float64, and the benchmark (n = 16384, 8 heads, D = 64,
# dense and causal, sampled rows against float64). With an NVIDIA GPU present (nvidia-smi), a path
# that cannot run or reaches only a software renderer FAILS.
#
#   run.sh [check.mjs flags: --n N --h H --d D --block-q N --block-k N --skip-bench]
# Writes gpu-check.log and gpu-check.json (one summary per path) to $OUT when it is set.
# Exit status: 0 every path passed; 1 a path failed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
NODE=$HERE/node/node
LOG=$(mktemp /tmp/gpu-check.XXXXXX.log)
say() { printf '\ngpu-check: %s\n' "$*" | tee -a "$LOG"; }

# Loaders (GLVND, the Vulkan loader) from Debian, unpacked here; NVIDIA's driver libraries and
# manifests where the lent machines mount them (/usr/local/nvidia), else the system's.
export LD_LIBRARY_PATH=$HERE/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
NV=/usr/local/nvidia
for d in "$NV/lib64" "$NV/lib"; do [[ -d $d ]] && LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$d; done
[[ -f $NV/share/vulkan/icd.d/nvidia_icd.json ]] && export VK_DRIVER_FILES=$NV/share/vulkan/icd.d/nvidia_icd.json
[[ -f $NV/share/glvnd/egl_vendor.d/10_nvidia.json ]] && export __EGL_VENDOR_LIBRARY_FILENAMES=$NV/share/glvnd/egl_vendor.d/10_nvidia.json
export PATH=$HERE/node:$PATH

REQUIRE=()
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  say "NVIDIA GPU(s): $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tr '\n' ' ')"
  export __GLX_VENDOR_LIBRARY_NAME=nvidia
  REQUIRE=(--require-hardware)
else
  say "no NVIDIA GPU (nvidia-smi): software renderers are reported, not failed — a rehearsal, not a GPU check"
fi
say "node $("$NODE" --version) from $NODE"
say "VK_DRIVER_FILES=${VK_DRIVER_FILES:-} __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-}"

# An X display for gpujs:headlessgl (the gl addon renders through GLX).
XVFB_PID=
cleanup() { [[ -n $XVFB_PID ]] && kill "$XVFB_PID" 2>/dev/null && wait "$XVFB_PID" 2>/dev/null; }
trap cleanup EXIT
if [[ -z ${DISPLAY:-} ]]; then
  XVFB=$(command -v Xvfb || true)
  [[ -z $XVFB && -x $HERE/root/usr/bin/Xvfb ]] && XVFB=$HERE/root/usr/bin/Xvfb
  if [[ -n $XVFB ]]; then
    for n in $(seq 90 140); do [[ -e /tmp/.X$n-lock || -e /tmp/.X11-unix/X$n ]] || { DISP=$n; break; }; done
    "$XVFB" ":$DISP" -screen 0 1024x768x24 +extension GLX -nolisten tcp >/tmp/gpu-check-xvfb.log 2>&1 &
    XVFB_PID=$!
    for _ in $(seq 50); do [[ -e /tmp/.X11-unix/X$DISP ]] && break; sleep 0.1; done
    export DISPLAY=:$DISP
    say "started $XVFB on $DISPLAY"
  else
    say "no Xvfb here and none carried: gpujs:headlessgl cannot open GL"
  fi
fi

status=0
SUMMARY=()
for path in webgpu:vulkan webgpu:opengl gpujs:headlessgl; do
  say "path $path"
  # Per-case lines go to the log only; Dawn's limit notes are dropped from the screen.
  "$NODE" "$HERE/app/check.mjs" --paths "$path" ${REQUIRE[@]+"${REQUIRE[@]}"} "$@" 2>&1 | tee -a "$LOG" |
    grep -v '^{"path"[^}]*"case"' | grep -v 'artificially reduced'
  rc=${PIPESTATUS[0]}
  ((rc == 0)) || status=1
  SUMMARY+=("$(grep '^{"summary"' "$LOG" | tail -n 1)")
  ((rc == 0)) || say "path $path FAILED (exit $rc)"
done

if [[ -n ${OUT:-} && -d ${OUT:-} ]]; then
  cp "$LOG" "$OUT/gpu-check.log"
  printf '%s\n' "${SUMMARY[@]}" >"$OUT/gpu-check.json"
fi
rm -f "$LOG"
if ((status == 0)); then say "all checks passed"; else say "SOME CHECKS FAILED (see above)"; fi
exit $status
