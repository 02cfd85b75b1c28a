#!/usr/bin/env python3
"""PyTorch side of `saddle bench`: the same measurements, printed as the same
JSON lines, so that both can be compared in one run on one machine.

    python3 tools/bench_torch.py gemm|lenet [--threads 2]

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


def lenet5():
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed(runs, f):
    f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return median(times)


def lenet(args):
    torch.manual_seed(0)
    model = lenet5()
    opt = torch.optim.Adam(model.parameters())
    x, y = torch.randn(64, 1, 28, 28), torch.arange(64) % 10

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(10):
        step()
    train = 64 / timed(100, step)
    xe = torch.randn(1000, 1, 28, 28)
    with torch.no_grad():
        infer = 1000 / timed(10, lambda: model(xe))
    print(json.dumps({"bench": "lenet", "impl": "torch", "train_images_per_s": round(train),
                      "infer_images_per_s": round(infer), "peak_rss_mib": round(peak_rss_mib(), 1),
                      "threads": torch.get_num_threads()}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["gemm", "lenet"])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[256, 512, 1024, 2048])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    {"gemm": gemm, "lenet": lenet}[args.what](args)


if __name__ == "__main__":
    main()
