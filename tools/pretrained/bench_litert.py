#!/usr/bin/env python3
"""LiteRT's CPU inference time for the models `fovea bench tflite` times, side by side.

    /work/venv-tflite/bin/python tools/pretrained/bench_litert.py M.tflite [M2.tflite ...] \
        [--batch-sizes 1,32] [--runs 5] [--threads 2]

Per model and batch size: the median wall time of `invoke()` over --runs runs after one
warm-up (inputs set once, as `fovea bench tflite` uploads them inside each run), with LiteRT's
default XNNPACK delegate and --threads threads. The batch axis is resized with
`resize_tensor_input`. Compare with `fovea bench tflite` alternating on the same machine: the
shared machines' speed swings within minutes (PLATFORM.md).
"""

import argparse
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--batch-sizes", default="1,32")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    for path in a.models:
        for b in [int(s) for s in a.batch_sizes.split(",")]:
            it = Interpreter(model_path=path, num_threads=a.threads)
            d = it.get_input_details()[0]
            shape = list(d["shape"])
            shape[0] = b
            it.resize_tensor_input(d["index"], shape)
            it.allocate_tensors()
            n = int(np.prod(shape))
            x = (((np.arange(n) * 7919) % 251) / 251.0).astype(np.float32).reshape(shape)
            it.set_tensor(d["index"], x)
            it.invoke()
            times = []
            for _ in range(a.runs):
                t = time.perf_counter()
                it.invoke()
                times.append((time.perf_counter() - t) * 1e3)
            ms = sorted(times)[len(times) // 2]
            print(f"{path} batch {b}: {ms:.1f} ms per run median of {a.runs} ({ms / b:.2f} ms per sample), "
                  f"LiteRT {a.threads} threads")


if __name__ == "__main__":
    main()
