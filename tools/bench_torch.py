#!/usr/bin/env python3
"""PyTorch side of `saddle bench`: the same measurements, printed as the same
JSON lines, so that both can be compared in one run on one machine.

    python3 tools/bench_torch.py gemm|lenet|optim|lstm|cifar [--threads 2]

Needs `pip install torch safetensors`. Run it right after (or interleaved
with) `saddle bench gemm --json` and compare medians: this machine is shared
and noisy.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from make_fixtures import ResNet20, lenet5  # noqa: E402  (the same networks as saddle's)


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


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def warm_up(f):
    """Calls f at least 5 times and for at least half a second, as `saddle bench` does."""
    t, calls = time.perf_counter(), 0
    while calls < 5 or time.perf_counter() - t < 0.5:
        f()
        calls += 1


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


OPTIMS = {
    # name: (class, kwargs), as `saddle bench optim` builds them (lr 1e-4, momentum 0.9, weight decay 0.01)
    "sgd": ("SGD", {"weight_decay": 0.01}),
    "momentum": ("SGD", {"momentum": 0.9, "weight_decay": 0.01}),
    "nesterov": ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    "adagrad": ("Adagrad", {"weight_decay": 0.01}),
    "rmsprop": ("RMSprop", {"weight_decay": 0.01}),
    "adam": ("Adam", {"weight_decay": 0.01}),
    "adamw": ("AdamW", {"weight_decay": 0.01}),
}


def optim(args):
    """One step over 1M and 10M parameters; each of PyTorch's implementations
    (for-loop, foreach, fused) that the optimizer offers on CPU, and the fastest."""
    for n in [1_000_000, 10_000_000]:
        p = torch.nn.Parameter(torch.rand(n) * 2 - 1)
        p.grad = torch.rand(n) * 2 - 1
        for name, (cls, kwargs) in OPTIMS.items():
            best = None
            for variant in [{"foreach": False}, {"foreach": True}, {"fused": True}]:
                try:
                    opt = getattr(torch.optim, cls)([p], lr=1e-4, **kwargs, **variant)
                    runs = 10 if n > 1_000_000 else 50
                    ms = 1e3 * timed(runs, opt.step)
                except (RuntimeError, TypeError, ValueError):
                    continue  # this implementation does not exist for this optimizer on CPU
                kind = "fused" if variant.get("fused") else "foreach" if variant["foreach"] else "for-loop"
                print(json.dumps({"bench": "optim", "impl": "torch", "variant": kind, "optim": name, "params": n,
                                  "ms": round(ms, 3), "threads": torch.get_num_threads()}))
                best = ms if best is None else min(best, ms)
            print(json.dumps({"bench": "optim", "impl": "torch", "variant": "fastest", "optim": name, "params": n,
                              "ms": round(best, 3), "threads": torch.get_num_threads()}))


def lstm(args):
    """Embedding(1000, 100) -> LSTM(100 -> 128) -> Linear(128, 20), batch 32 x 24 steps, Adam:
    training tokens/s, for the LSTM, the bidirectional LSTM, the GRU and the RNN (as `saddle bench lstm`)."""
    nn = torch.nn
    batch, steps = 32, 24
    for name, cls, bi in [("lstm", nn.LSTM, False), ("bilstm", nn.LSTM, True), ("gru", nn.GRU, False),
                          ("rnn", nn.RNN, False)]:
        torch.manual_seed(0)
        emb, rnn = nn.Embedding(1000, 100, padding_idx=0), cls(100, 128, batch_first=True, bidirectional=bi)
        fc = nn.Linear(256 if bi else 128, 20)
        params = list(emb.parameters()) + list(rnn.parameters()) + list(fc.parameters())
        opt = torch.optim.Adam(params)
        x, y = torch.randint(1, 1000, (batch, steps)), torch.randint(0, 20, (batch * steps,))

        def step():
            out, _ = rnn(emb(x))
            loss = torch.nn.functional.cross_entropy(fc(out).reshape(-1, 20), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        warm_up(step)
        tokens = batch * steps / timed(30, step)
        print(json.dumps({"bench": "lstm", "impl": "torch", "model": name, "train_tokens_per_s": round(tokens),
                          "peak_rss_mib": round(peak_rss_mib(), 1), "threads": torch.get_num_threads()}))


def crf(args):
    """A linear-chain CRF over 20 tags, batch 32 x 24 words, written as the
    pytorch-crf package computes it (the forward algorithm by logsumexp over
    [B, C, C] at each step, autograd for the gradients): the negative
    log-likelihood forward and backward, and Viterbi decoding, in tokens/s
    (as `saddle bench crf`)."""
    batch, steps, tags = 32, 24, 20
    torch.manual_seed(0)
    trans, start, end = (torch.empty(*s).uniform_(-0.1, 0.1).requires_grad_() for s in [(tags, tags), (tags,), (tags,)])
    e = torch.randn(batch, steps, tags, requires_grad=True)
    y = torch.randint(0, tags, (batch, steps))

    def nll():
        score = start[y[:, 0]] + e[:, 0].gather(1, y[:, :1]).squeeze(1)
        alpha = start + e[:, 0]
        for t in range(1, steps):
            score = score + trans[y[:, t - 1], y[:, t]] + e[:, t].gather(1, y[:, t:t + 1]).squeeze(1)
            alpha = torch.logsumexp(alpha.unsqueeze(2) + trans + e[:, t].unsqueeze(1), dim=1)
        score = score + end[y[:, -1]]
        log_z = torch.logsumexp(alpha + end, dim=1)
        ((log_z - score).sum() / (batch * steps)).backward()

    def viterbi():
        with torch.no_grad():
            delta, back = start + e[:, 0], []
            for t in range(1, steps):
                best, arg = (delta.unsqueeze(2) + trans).max(dim=1)
                delta = best + e[:, t]
                back.append(arg)
            tag = (delta + end).argmax(dim=1)
            path = [tag]
            for arg in reversed(back):
                tag = arg.gather(1, tag.unsqueeze(1)).squeeze(1)
                path.append(tag)
            return torch.stack(path[::-1], dim=1)

    for op, f in [("nll_forward_backward", nll), ("viterbi", viterbi)]:
        tokens = batch * steps / timed(200, f)
        print(json.dumps({"bench": "crf", "impl": "torch", "op": op, "tokens_per_s": round(tokens),
                          "threads": torch.get_num_threads()}))


def speedrun():
    """saddle's default colour-image network (`saddle::nn::speedrun`), layer for layer."""
    nn = torch.nn

    def group(inp, out):
        return [nn.Conv2d(inp, out, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(out), nn.GELU(),
                nn.Conv2d(out, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.GELU()]

    class Scale(nn.Module):
        def forward(self, x):
            return x / 9

    net = nn.Sequential(nn.Conv2d(3, 24, 2), nn.GELU(), *group(24, 64), *group(64, 256), *group(256, 256),
                        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(256, 10, bias=False), Scale())
    # As airbench and saddle: the whitening layer's weights and batch norm's gamma are frozen.
    net[0].weight.requires_grad_(False)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.requires_grad_(False)
    return net


def cifar(args):
    """The colour-image networks on 32x32x3 images, batch 512, Nesterov SGD, as
    `saddle bench cifar`: training and inference images/s in the fastest of
    PyTorch's layouts (NCHW and channels-last; both are printed)."""
    batch = 512
    for name, build in [("speedrun", speedrun), ("resnet20", ResNet20)]:
        best = None
        for layout in [torch.contiguous_format, torch.channels_last]:
            torch.manual_seed(0)
            model = build().to(memory_format=layout)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
            x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=layout)
            y = torch.arange(batch) % 10

            def step():
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()

            model.train()
            train = batch / timed(5, step)
            model.eval()
            with torch.no_grad():
                infer = batch / timed(5, lambda: model(x))
            row = {"bench": "cifar", "impl": "torch",
                   "variant": "channels_last" if layout == torch.channels_last else "nchw", "model": name,
                   "train_images_per_s": round(train), "infer_images_per_s": round(infer),
                   "peak_rss_mib": round(peak_rss_mib(), 1), "threads": torch.get_num_threads()}
            print(json.dumps(row))
            if best is None or train > best["train_images_per_s"]:
                best = dict(row, variant="fastest")
        print(json.dumps(best))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["gemm", "lenet", "optim", "lstm", "crf", "cifar"])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[256, 512, 1024, 2048])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    {"gemm": gemm, "lenet": lenet, "optim": optim, "lstm": lstm, "crf": crf, "cifar": cifar}[args.what](args)


if __name__ == "__main__":
    main()
