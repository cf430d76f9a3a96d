"""ONNX Runtime speed of an exported separator: `python -m training bench --model ...`.

One streaming call per 40 ms chunk; prints ms per call at batch 1 and 4 (faces) on one thread and
the real-time factor per face, RTF = (ms per call / batch) / 40 ms. The issue's budget is RTF <= 0.05.
"""

from __future__ import annotations

import json
import time

import numpy as np

from .onnx_run import OnnxSeparator

CHUNK_MS = 40.0


def bench(model_path: str, batches=(1, 4), seconds: float = 3.0, threads: int = 1) -> dict:
    m = OnnxSeparator(model_path, threads=threads)
    rng = np.random.default_rng(0)
    out = {"model": model_path, "threads": threads, "kind": m.kind, "results": []}
    for b in batches:
        mix = rng.standard_normal((b, 2, 4, 257)).astype(np.float32)
        roi = rng.random((b, 1, 48, 48)).astype(np.float32) if m.kind == "av" else None
        state = m.initial_state(b)
        for _ in range(20):  # warm-up
            _, state = m.call(mix, roi, state)
        times = []
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            t0 = time.perf_counter()
            _, state = m.call(mix, roi, state)
            times.append(time.perf_counter() - t0)
        ms = 1000 * np.array(times)
        r = {"batch": b, "calls": len(ms), "ms_per_call_median": float(np.median(ms)),
             "ms_per_call_p99": float(np.percentile(ms, 99)),
             "rtf_per_face": float(np.median(ms) / b / CHUNK_MS)}
        out["results"].append(r)
        print(f"[bench] {model_path} batch {b}: {r['ms_per_call_median']:.3f} ms/call median "
              f"(p99 {r['ms_per_call_p99']:.3f}), RTF per face {r['rtf_per_face']:.4f}, {threads} thread(s)", flush=True)
    return out


if __name__ == "__main__":
    import sys

    print(json.dumps(bench(sys.argv[1]), indent=1))
