#!/usr/bin/env python3
"""PyTorch side of `saddle bench`: the same measurements, printed as the same
JSON lines, so that both can be compared in one run on one machine.

    python3 tools/bench_torch.py gemm [--threads 2]

Run it right after (or interleaved with) `saddle bench gemm --json` and compare
medians: this machine is shared and noisy.
"""
import argparse
import json
import time

import torch


def median(v):
    v = sorted(v)
    return v[len(v) // 2]


def gemm(args):
    for n in args.sizes:
        a, b = torch.rand(n, n) * 2 - 1, torch.rand(n, n) * 2 - 1
        flops = 2.0 * n ** 3
        runs = min(200, max(5, int(4e11 / flops)))
        a @ b  # warm-up
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t)
        gflops = flops / median(times) / 1e9
        print(json.dumps({"bench": "gemm", "impl": "torch", "n": n, "gflops": round(gflops, 1),
                          "threads": torch.get_num_threads(), "runs": runs}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["gemm"])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[256, 512, 1024, 2048])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    {"gemm": gemm}[args.what](args)


if __name__ == "__main__":
    main()
