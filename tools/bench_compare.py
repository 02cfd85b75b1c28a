#!/usr/bin/env python3
"""saddle against PyTorch, side by side: interleaved rounds of
`saddle bench WHAT --json` and `tools/bench_torch.py WHAT`, then the median of
each figure and the median of the per-round ratios.

    python3 tools/bench_compare.py optim|lstm|crf|lenet|gemm|cifar [--rounds 5] [--saddle target/release/saddle]

A ratio above 1 means saddle is faster (PyTorch's time / saddle's, or
saddle's rate / PyTorch's). The machine this project is measured on is shared
and noisy: a single round says little, the median of several says more.
Build saddle first (`cargo build --release -p saddle-cli`).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# For each benchmark: the fields that name a row, and the figures to compare
# (True where larger is better).
ROWS = {
    "optim": (["optim", "params"], {"ms": False}),
    "lstm": (["model"], {"train_tokens_per_s": True, "peak_rss_mib": False}),
    "crf": (["op"], {"tokens_per_s": True}),
    "lenet": ([], {"train_images_per_s": True, "infer_images_per_s": True, "peak_rss_mib": False}),
    "gemm": (["n"], {"gflops": True}),
    "cifar": (["model"], {"train_images_per_s": True, "infer_images_per_s": True, "peak_rss_mib": False}),
}


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def lines(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=sorted(ROWS))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--saddle", default=os.path.join(HERE, "..", "target", "release", "saddle"))
    args = p.parse_args()
    if not os.access(args.saddle, os.X_OK):
        sys.exit(f"error: {args.saddle} is not an executable: build it with `cargo build --release -p saddle-cli`")
    keys, figures = ROWS[args.what]
    # (row, figure) -> {"saddle": [per round], "torch": [per round]}
    seen = {}
    for r in range(args.rounds):
        for impl, cmd in [("saddle", [args.saddle, "bench", args.what, "--json"]),
                          ("torch", [sys.executable, os.path.join(HERE, "bench_torch.py"), args.what])]:
            for j in lines(cmd):
                if j.get("variant", "fastest") != "fastest":
                    continue
                row = tuple(j[k] for k in keys)
                for f in figures:
                    if f in j:
                        seen.setdefault((row, f), {"saddle": [], "torch": []})[impl].append(j[f])
        print(f"round {r + 1} of {args.rounds} done", file=sys.stderr)
    print(f"{'row':<24} {'figure':<20} {'saddle':>10} {'torch':>10} {'ratio':>6}  per-round ratios")
    for (row, f), v in seen.items():
        s, t = v["saddle"], v["torch"]
        ratios = [(a / b if figures[f] else b / a) for a, b in zip(s, t) if a and b]
        name = " ".join(str(x) for x in row) or args.what
        print(f"{name:<24} {f:<20} {median(s):>10.4g} {median(t):>10.4g} {median(ratios):>6.2f}  "
              + " ".join(f"{x:.2f}" for x in ratios))


if __name__ == "__main__":
    main()
