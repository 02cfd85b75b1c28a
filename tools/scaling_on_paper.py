#!/usr/bin/env python3
"""Expected data-parallel scaling efficiency on N machines, from a measured
compute time per step and the cost of a ring all-reduce of the gradients.

    python3 tools/scaling_on_paper.py [--latency-us 25]

Each machine is one rank with the compute of this 2-core machine and keeps
its batch (weak scaling, as DDP runs are scaled). A ring all-reduce of B
bytes over N machines sends 2(N-1)/N * B bytes through each link, in
2(N-1) messages:

    T_allreduce = 2(N-1) * latency + 2(N-1)/N * B / bandwidth

Without overlap (saddle today: the all-reduce follows the backward pass),
a step takes T_compute + T_allreduce. With the all-reduce running during the
backward pass (DDP's buckets), it hides behind the backward pass, about 2/3 of
T_compute, so a step takes max(T_compute, T_compute/3 + T_allreduce) at best.
Efficiency = T_compute / T_step. Prints a Markdown table.
"""
import argparse

# name: (gradient bytes, seconds of compute per step on 2 cores with 2 threads, where the figure comes from)
NETWORKS = {
    # 61 706 parameters; 15 530 images/s at batch 64 (README, AMD EPYC, 2 threads)
    "LeNet-5, batch 64": (61_706 * 4, 64 / 15_530),
    # Embedding(1000, 100) + LSTM(100 -> 128) + Linear(128, 20): 220 340 parameters;
    # 165 000 tokens/s at batch 32 x 24 (README, AMD EPYC, 2 threads)
    "LSTM tagger, batch 32 x 24": ((1000 * 100 + 4 * 128 * (100 + 128) + 8 * 128 + 128 * 20 + 20) * 4, 768 / 165_000),
    # saddle's default colour network (speedrun), 1 972 792 parameters (summary.json; the frozen
    # whitening layer and batch-norm scales included: they are sent too); 271 images/s at batch 512
    # (README, Intel Xeon)
    "colour network (speedrun), batch 512": (1_972_792 * 4, 512 / 271),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latency-us", type=float, default=25.0, help="one message over the network (default 25 µs, TCP)")
    args = p.parse_args()
    alpha = args.latency_us * 1e-6
    links = [10, 25, 100]
    print("| network | gradient | compute per step | machines | " + " | ".join(f"{g} Gb/s" for g in links) + " |")
    print("|---|---|---|---|" + "---|" * len(links))
    for name, (bytes_, compute) in NETWORKS.items():
        for n in [8, 32, 128]:
            cells = []
            for gbit in links:
                bandwidth = gbit * 1e9 / 8
                allreduce = 2 * (n - 1) * alpha + 2 * (n - 1) / n * bytes_ / bandwidth
                plain = compute / (compute + allreduce)
                overlapped = compute / max(compute, compute / 3 + allreduce)
                cells.append(f"{100 * plain:.0f}% ({100 * overlapped:.0f}%)")
            head = f"{name} | {bytes_ / 1e6:.2f} MB | {1e3 * compute:.1f} ms" if n == 8 else " | |"
            print(f"| {head} | {n} | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
