#!/usr/bin/env python3
"""PyTorch DistributedDataParallel (gloo) on one machine, for comparison with
`mpirun -n R saddle train …`: the same network, global batch and optimizer,
each rank on its share of every batch with one thread.

    python3 tools/ddp_torch.py lenet [--ranks 2] [--batch 64] [--steps 400]
    python3 tools/ddp_torch.py speedrun [--ranks 2] [--batch 512] [--steps 12]

lenet: LeNet-5 on the bundled MNIST (data/mnist), global batch 64, Adam 1e-3,
the images held in memory as floats (no DataLoader: its worker processes
would compete for the two cores). speedrun: saddle's default colour network on
random 32x32x3 images, global batch 512, Nesterov SGD. Prints one JSON line:
training images/s over the timed steps (after warm-up), all ranks together.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(__file__))
from bench_torch import speedrun  # noqa: E402
from make_fixtures import lenet5  # noqa: E402

MNIST = os.path.join(os.path.dirname(__file__), "..", "data", "mnist")


def idx(name):
    with gzip.open(os.path.join(MNIST, name)) as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def worker(rank, args):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29517")
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", rank=rank, world_size=args.ranks)
    torch.manual_seed(0)
    if args.model == "lenet":
        batch = args.batch or 64
        images = torch.from_numpy((idx("train-images-idx3-ubyte.gz").astype(np.float32) / 255 - 0.1307) / 0.3081)
        images = images.unsqueeze(1)
        labels = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
        model = lenet5()
        opt_for = lambda ps: torch.optim.Adam(ps, lr=1e-3)  # noqa: E731
    else:
        batch = args.batch or 512
        images, labels = torch.randn(10 * batch, 3, 32, 32), torch.arange(10 * batch) % 10
        model = speedrun()
        opt_for = lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, nesterov=True)  # noqa: E731
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = opt_for([p for p in ddp.parameters() if p.requires_grad])
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    share = lambda b: b[rank * len(b) // args.ranks:(rank + 1) * len(b) // args.ranks]  # noqa: E731

    def step(i):
        b = order[(i * batch) % (len(order) - batch):][:batch]
        mine = share(b)
        loss = torch.nn.functional.cross_entropy(ddp(images[mine]), labels[mine])
        opt.zero_grad()
        loss.backward()
        opt.step()

    warm = max(2, args.steps // 20)
    for i in range(warm):
        step(i)
    dist.barrier()
    t = time.perf_counter()
    for i in range(warm, warm + args.steps):
        step(i)
    dist.barrier()
    seconds = time.perf_counter() - t
    if rank == 0:
        print(json.dumps({"bench": "ddp", "impl": "torch", "model": args.model, "ranks": args.ranks,
                          "threads_per_rank": args.threads, "batch": batch, "steps": args.steps,
                          "train_images_per_s": round(batch * args.steps / seconds)}), flush=True)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=["lenet", "speedrun"])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads per rank (default 1)")
    p.add_argument("--batch", type=int, default=None, help="global batch (default 64 for lenet, 512 for speedrun)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 400 for lenet, 12 for speedrun)")
    args = p.parse_args()
    args.steps = args.steps or (400 if args.model == "lenet" else 12)
    mp.spawn(worker, args=(args,), nprocs=args.ranks, join=True)


if __name__ == "__main__":
    main()
