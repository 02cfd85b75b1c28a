#!/usr/bin/env python3
"""The default recipe of `saddle train images` (airbench94's, Jordan 2024, at
batch 512) in PyTorch, on the same image folders, to tell what the recipe
reaches on a given copy of CIFAR-10 apart from what saddle's implementation
of it reaches.

    python3 tools/cifar_torch.py --data ../shared/data/cifar10 [--seed 0] [--threads 2]
    python3 tools/cifar_torch.py --data ../shared/data/cifar10 --airbench

`--airbench` switches to airbench94's own settings where saddle's recipe
differs from them: batch 1024 (the same rate per example), alternating
flips (each image mirrored in every other epoch), crops of the image with
its border reflected, the whitening layer's bias trained for the first 3
epochs only, weight decay on it too, and lookahead averaging batch norm's
running statistics along with the weights.

Prints one JSON line per epoch (test accuracy without test-time
augmentation) and one for the end (with flip-translate test-time
augmentation). Needs `pip install torch numpy pillow`.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

nn = torch.nn


def load_split(root, split):
    """`root/split/<class>/*` as uint8 [N, 3, H, W] and labels, classes sorted by name."""
    base = os.path.join(root, split)
    classes = sorted(c for c in os.listdir(base) if os.path.isdir(os.path.join(base, c)))
    images, labels = [], []
    for k, c in enumerate(classes):
        for name in sorted(os.listdir(os.path.join(base, c))):
            with Image.open(os.path.join(base, c, name)) as im:
                images.append(np.asarray(im.convert("RGB")))
            labels.append(k)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(labels)


class Scale(nn.Module):
    def forward(self, x):
        return x / 9


def speedrun(classes=10):
    """saddle's `speedrun` network: frozen 2x2 whitening conv to 24 channels, GELU,
    three conv groups (64, 256, 256), global max-pool, linear without bias, /9."""
    def conv(i, o):
        c = nn.Conv2d(i, o, 3, padding=1, bias=False)
        nn.init.dirac_(c.weight.data[:i])  # the first filters start as identities
        return c

    def norm(c):
        bn = nn.BatchNorm2d(c, eps=1e-12, momentum=0.4)
        bn.weight.requires_grad_(False)  # gamma frozen at 1
        return bn

    def group(i, o):
        return [conv(i, o), nn.MaxPool2d(2), norm(o), nn.GELU(), conv(o, o), norm(o), nn.GELU()]

    net = nn.Sequential(nn.Conv2d(3, 24, 2), nn.GELU(), *group(24, 64), *group(64, 256), *group(256, 256),
                        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(256, classes, bias=False), Scale())
    net[0].weight.requires_grad_(False)
    return net


def whiten(layer, images, eps=5e-4):
    """airbench's whitening: eigenvectors of the uncentred 2x2-patch covariance, scaled by 1/sqrt(lambda+eps), and their negatives."""
    c, (h, w) = images.shape[1], layer.weight.shape[2:]
    patches = images.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c * h * w).double()
    cov = patches.T @ patches / len(patches)
    lam, vec = torch.linalg.eigh(cov)
    lam, vec = lam.flip(0), vec.T.flip(0)
    v = (vec / torch.sqrt(lam + eps)[:, None]).reshape(-1, c, h, w).float()
    layer.weight.data[:] = torch.cat([v, -v])


def augment(x, pad, flips, reflect, gen):
    """Random crops of `pad` pixels of movement (the border zero, i.e. the mean, or reflected) and the given flips."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad,) * 4, mode="reflect" if reflect else "constant")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    out = torch.empty_like(x)
    for i in range(n):
        out[i] = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    out[flips] = out[flips].flip(-1)
    return out


@torch.no_grad()
def evaluate(net, x, y, tta):
    net.eval()
    correct = 0
    for i in range(0, len(x), 1000):
        b = x[i:i + 1000].contiguous(memory_format=torch.channels_last)

        def mirror(v):
            return 0.5 * net(v) + 0.5 * net(v.flip(-1))

        if tta:
            p = F.pad(b, (1,) * 4, mode="reflect")
            h, w = b.shape[2:]
            logits = 0.5 * mirror(b) + 0.25 * mirror(p[:, :, :h, :w]) + 0.25 * mirror(p[:, :, 2:, 2:])
        else:
            logits = net(b)
        correct += (logits.argmax(1) == y[i:i + 1000]).sum().item()
    net.train()
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--airbench", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    t0 = time.time()
    xtr, ytr = load_split(args.data, "train")
    xte, yte = load_split(args.data, "test")
    load_s = time.time() - t0
    mean = xtr.float().mean((0, 2, 3), keepdim=True)
    std = xtr.float().std((0, 2, 3), keepdim=True)
    xtr, xte = (xtr.float() - mean) / std, (xte.float() - mean) / std

    batch = 1024 if args.airbench else 512
    net = speedrun().to(memory_format=torch.channels_last)
    whiten(net[0], xtr[torch.arange(5000) * len(xtr) // 5000])
    lr, momentum = 0.75 * batch / 512, 0.85
    decay = 1e-3 * batch / 512  # weight decay per step, as a fraction of the weight
    norm_biases = [p for n, p in net.named_parameters() if p.requires_grad and p.ndim == 1 and not n.startswith("0.")]
    whiten_bias = [net[0].bias]
    weights = [p for p in net.parameters() if p.requires_grad and p.ndim > 1]
    groups = [dict(params=weights, lr=lr, weight_decay=decay / lr),
              dict(params=norm_biases, lr=64 * lr, weight_decay=decay / (64 * lr)),
              dict(params=whiten_bias, lr=lr, weight_decay=decay / lr if args.airbench else 0.0)]
    for g in groups:
        g["base_lr"] = g["lr"]
    opt = torch.optim.SGD(groups, momentum=momentum, nesterov=True)

    steps_per_epoch = (len(xtr) + batch - 1) // batch
    total = steps_per_epoch * args.epochs
    peak = int(0.23 * total)
    slow = {k: v.detach().clone() for k, v in net.state_dict().items()}

    def lookahead(alpha):
        params = dict(net.named_parameters())
        for k, v in net.state_dict().items():
            if v.dtype != torch.float:
                continue
            if not args.airbench and not (k in params and params[k].requires_grad):
                continue
            slow[k].lerp_(v, 1 - alpha)
            v.copy_(slow[k])

    base_flips = torch.rand(len(xtr), generator=gen) < 0.5
    step = 0
    train_s = 0.0
    for epoch in range(args.epochs):
        t = time.time()
        if args.airbench and epoch == 3:
            net[0].bias.requires_grad_(False)
        order = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), batch):
            idx = order[i:i + batch]
            if args.airbench:
                flips = base_flips[idx] ^ (epoch % 2 == 1)
            else:
                flips = torch.rand(len(idx), generator=gen) < 0.5
            xb = augment(xtr[idx], 2, flips, args.airbench, gen).contiguous(memory_format=torch.channels_last)
            frac = np.interp(step, [0, peak, total], [0.2, 1.0, 0.07])
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * frac
            loss = F.cross_entropy(net(xb), ytr[idx], label_smoothing=0.2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % 5 == 0:
                lookahead(0.95 ** 5 * (step / total) ** 3)
        if epoch == args.epochs - 1:
            lookahead(1.0)
        train_s += time.time() - t
        acc = evaluate(net, xte, yte, tta=False)
        print(json.dumps({"epoch": epoch + 1, "test_accuracy": round(100 * acc, 2), "train_s": round(train_s, 1),
                          "loss": round(loss.item(), 4)}), flush=True)
    acc = evaluate(net, xte, yte, tta=True)
    print(json.dumps({"final_tta_accuracy": round(100 * acc, 2), "train_s": round(train_s, 1),
                      "load_s": round(load_s, 1), "batch": batch, "airbench": args.airbench, "seed": args.seed,
                      "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
