#!/usr/bin/env python3
"""Loads a saddle run's model.safetensors into PyTorch and evaluates it.

Shows that saddle's state dicts use PyTorch's names and layouts: the weights
of `saddle train mnist` go straight into `torch.nn.Sequential` LeNet-5 with
`load_state_dict(strict=True)`, and PyTorch then reports the accuracy saddle did.

    python3 tools/torch_load_saddle.py runs/NAME
"""
import gzip
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(__file__))
from make_fixtures import lenet5  # noqa: E402


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    run = sys.argv[1]
    config = json.load(open(os.path.join(run, "config.json")))
    summary = json.load(open(os.path.join(run, "summary.json")))
    assert config["model"] == "lenet5", "this script rebuilds LeNet-5"
    model = lenet5()
    model.load_state_dict(load_file(os.path.join(run, "model.safetensors")), strict=True)
    data = config["data"]
    find = lambda name: next(os.path.join(data, f) for f in (name, name + ".gz") if os.path.exists(os.path.join(data, f)))
    images = read_idx(find("t10k-images-idx3-ubyte"))
    labels = torch.from_numpy(read_idx(find("t10k-labels-idx1-ubyte")).astype(np.int64))
    norm = config["normalization"]
    x = (torch.from_numpy(images.astype(np.float32)) / 255 - norm["mean"]) / norm["std"]
    model.eval()
    with torch.no_grad():
        logits = model(x.unsqueeze(1))
    acc = (logits.argmax(1) == labels).float().mean().item()
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    print(f"PyTorch {torch.__version__}: test accuracy {100 * acc:.2f}%, loss {loss:.4f}")
    print(f"saddle (summary.json): test accuracy {100 * summary['held_out_accuracy']:.2f}%, loss {summary['held_out_loss']:.4f}")


if __name__ == "__main__":
    main()
