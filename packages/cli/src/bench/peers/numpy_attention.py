"""Peer: naive attention in numpy, per head: scores = q @ k.T * scale, softmax, @ v.

Usage: python3 numpy_attention.py '{"Sq":..,"Sk":..,"H":..,"D":..,"reps":..,"causal":false}'
Prints one JSON line: {"ms": [...], "cpuMs": [...], "peakRssMB": ...} or {"skipped": "..."}.
With "files": {"q": .., "k": .., "v": ..} and "out": path (a cold run, as a user would script it):
loads the [H, S, D] .npy inputs, computes once, saves the output, prints {"ms": [compute ms]}.
Threads come from OPENBLAS_NUM_THREADS (set by numpy-peer.ts). Inputs are uniform in [-2, 2):
the same distribution as the other peers' (values do not change the time of dense math).
"""
import json
import re
import sys
import time


def meminfo(key, path):
    with open(path) as f:
        m = re.search(key + r':\s+(\d+) kB', f.read())
    return int(m.group(1)) * 1024 if m else 0


def main():
    o = json.loads(sys.argv[1])
    sq, sk, h, d, reps, causal = o['Sq'], o['Sk'], o['H'], o['D'], o['reps'], o.get('causal', False)
    try:
        import numpy as np
    except ImportError:
        print(json.dumps({'skipped': 'numpy is not installed for python3'}))
        return
    need = sq * sk * (5 if causal else 4)  # float32 scores (+ a bool mask when causal)
    if need > 0.6 * meminfo('MemAvailable', '/proc/meminfo'):
        print(json.dumps({'skipped': f'numpy holds the {sq}x{sk} score matrix ({need / 2**30:.1f} GiB), more than fits'}))
        return
    files = o.get('files')
    if files:
        q, k, v = (np.load(files[name]) for name in ('q', 'k', 'v'))
    else:
        rng = np.random.default_rng(1)
        q = rng.uniform(-2, 2, (h, sq, d)).astype(np.float32)
        k = rng.uniform(-2, 2, (h, sk, d)).astype(np.float32)
        v = rng.uniform(-2, 2, (h, sk, d)).astype(np.float32)
    scale = np.float32(1 / np.sqrt(d))
    # Bottom-right causal (docs/math.md): query i sees key j iff j <= i + sk - sq.
    mask = np.triu(np.ones((sq, sk), dtype=bool), k=sk - sq + 1) if causal else None

    def attend():
        out = np.empty((h, sq, d), dtype=np.float32)
        for i in range(h):
            s = q[i] @ k[i].T
            s *= scale
            if mask is not None:
                np.putmask(s, mask, -np.inf)
            s -= s.max(axis=1, keepdims=True)
            np.exp(s, out=s)
            out[i] = (s @ v[i]) / s.sum(axis=1, keepdims=True)
        return out

    if files:
        t0 = time.perf_counter()
        np.save(o['out'], attend())
        print(json.dumps({'ms': [(time.perf_counter() - t0) * 1000]}))
        return
    attend()  # warm-up
    ms, cpu_ms = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        attend()
        ms.append((time.perf_counter() - t0) * 1000)
        cpu_ms.append((time.process_time() - c0) * 1000)
    print(json.dumps({'ms': ms, 'cpuMs': cpu_ms, 'peakRssMB': meminfo('VmHWM', '/proc/self/status') / 2**20}))


main()
