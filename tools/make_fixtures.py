#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures under crates/saddle/tests/fixtures/.

Each case runs one op in PyTorch (float32, CPU) on seeded inputs, back-propagates
a random upstream gradient `gout` (never all ones: that hides swapped axes), and
stores the inputs, `out`, `gout` and each input gradient `grad_NAME` as
`family/case/NAME` in a safetensors file; the case's settings go into the file's
metadata under `family/case` as `key=value` words. The Rust tests read these
files and never need Python.

    pip install torch safetensors
    python3 tools/make_fixtures.py
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "saddle", "tests", "fixtures")


class Fixture:
    def __init__(self, name, exact=False):
        """exact: run each case in float64 from the float32 inputs and store the
        results rounded to float32, a reference without rounding of its own.
        For long sums, such as a convolution's weight gradient over a batch of
        28×28 images, PyTorch's float32 result is off by up to 1.5e-5."""
        self.name, self.tensors, self.meta, self.exact = name, {}, {}, exact

    def case(self, case, attrs, fn, inputs, consts=None):
        """fn(**inputs, **consts) in PyTorch; inputs get gradients, consts do not."""
        assert case not in self.meta, case
        dtype = torch.float64 if self.exact else torch.float32
        leaves = {k: v.detach().clone().float().to(dtype).requires_grad_(True) for k, v in inputs.items()}
        consts = consts or {}
        out = fn(**leaves, **consts)
        gout = torch.randn_like(out, dtype=torch.float32).to(dtype)  # float32 draws either way: the seeds stay in step
        out.backward(gout)
        for k, v in list(leaves.items()) + list(consts.items()):
            self.tensors[f"{case}/{k}"] = torch.as_tensor(v).detach().float().contiguous()
        for k, v in leaves.items():
            self.tensors[f"{case}/grad_{k}"] = v.grad.float().contiguous()
        self.tensors[f"{case}/out"] = out.detach().float().contiguous()
        self.tensors[f"{case}/gout"] = gout.float().contiguous()
        self.meta[case] = " ".join(f"{k}={v}" for k, v in attrs.items())

    def save(self):
        os.makedirs(OUT, exist_ok=True)
        tensors = {k: v.clone() for k, v in self.tensors.items()}  # no shared storage
        save_file(tensors, os.path.join(OUT, f"{self.name}.safetensors"), metadata=self.meta)
        print(f"{self.name}: {len(self.meta)} cases")


def r(*shape, low=-2.0, high=2.0):
    return torch.rand(shape) * (high - low) + low


def pair(p):
    return f"{p[0]},{p[1]}" if isinstance(p, tuple) else f"{p},{p}"


def elementwise():
    fx = Fixture("elementwise")
    shapes = [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 4), (3, 1)), ((3, 1), (1, 4)), ((2, 3), ())]
    ops = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "maximum": torch.maximum}
    for op, f in ops.items():
        for i, (sa, sb) in enumerate(shapes):
            a, b = r(*sa), r(*sb)
            if op == "div":
                b = r(*sb, low=0.5, high=2.0) * torch.where(torch.rand(sb) < 0.5, -1.0, 1.0)
            if op == "maximum" and sa == sb:
                b = torch.where(torch.rand(sb) < 0.3, a, b)  # ties split the gradient
            fx.case(f"binary/{op}_{i}", {"op": op}, lambda a, b, f=f: f(a, b), {"a": a, "b": b})
    x_pos = r(4, 5, low=0.2, high=3.0)
    x_any = r(4, 5)
    x_any[0, 0] = 0.0
    x_any[1, 1], x_any[1, 2] = -0.5, 0.7  # clamp boundaries pass the gradient
    unary = [
        ("neg", {}, x_any, torch.neg),
        ("exp", {}, x_any, torch.exp),
        ("log", {}, x_pos, torch.log),
        ("sqrt", {}, x_pos, torch.sqrt),
        ("abs", {}, x_any, torch.abs),
        ("powf", {"p": 2.5}, x_pos, lambda x: torch.pow(x, 2.5)),
        ("powf", {"p": 3.0}, x_any, lambda x: torch.pow(x, 3.0)),
        ("powf", {"p": -1.5}, x_pos, lambda x: torch.pow(x, -1.5)),
        ("clamp", {"lo": -0.5, "hi": 0.7}, x_any, lambda x: torch.clamp(x, -0.5, 0.7)),
    ]
    for i, (op, attrs, x, f) in enumerate(unary):
        fx.case(f"unary/{op}_{i}", {"op": op, **attrs}, lambda x, f=f: f(x), {"x": x})
    fx.save()


def activation():
    fx = Fixture("activation")
    x = r(3, 4, 5, low=-3.0, high=3.0)
    x[0, 0, :3] = 0.0  # relu's gradient at 0 is 0
    for op, f in [("relu", torch.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)]:
        fx.case(f"act/{op}", {"op": op}, lambda x, f=f: f(x), {"x": x})
    for dim in range(3):
        fx.case(f"act/softmax_{dim}", {"op": "softmax", "dim": dim}, lambda x, d=dim: torch.softmax(x, d), {"x": r(3, 4, 5, low=-4, high=4)})
        fx.case(f"act/log_softmax_{dim}", {"op": "log_softmax", "dim": dim}, lambda x, d=dim: torch.log_softmax(x, d), {"x": r(3, 4, 5, low=-4, high=4)})
    fx.save()


def reduce():
    fx = Fixture("reduce")
    for op in ["sum", "mean"]:
        for dims in [(0,), (1, 2), (0, 2), (0, 1, 2)]:
            for keep in [False, True]:
                name = f"reduce/{op}_{'_'.join(map(str, dims))}_{keep}"
                f = getattr(torch, op)
                fx.case(name, {"op": op, "dims": ",".join(map(str, dims)), "keepdim": str(keep).lower()},
                        lambda x, f=f, d=dims, k=keep: f(x, d, keepdim=k), {"x": r(3, 4, 5)})
    for dim in range(3):
        for keep in [False, True]:
            fx.case(f"reduce/max_{dim}_{keep}", {"op": "max", "dims": dim, "keepdim": str(keep).lower()},
                    lambda x, d=dim, k=keep: torch.max(x, d, keepdim=k).values, {"x": r(3, 4, 5)})
    fx.save()


def matmul():
    fx = Fixture("matmul")
    for i, (sa, sb) in enumerate([((3, 5), (5, 4)), ((7, 13), (13, 9)), ((2, 3, 5), (2, 5, 4)), ((2, 3, 5), (5, 4))]):
        fx.case(f"matmul/{i}", {}, lambda a, b: torch.matmul(a, b), {"a": r(*sa), "b": r(*sb)})
    fx.case("linear/bias", {}, lambda x, weight, bias: F.linear(x, weight, bias), {"x": r(4, 6), "weight": r(3, 6), "bias": r(3)})
    fx.case("linear/batched_nobias", {}, lambda x, weight: F.linear(x, weight), {"x": r(2, 3, 6), "weight": r(5, 6)})
    fx.save()


def movement():
    fx = Fixture("movement")
    x = lambda: r(2, 3, 4)
    fx.case("movement/permute", {"op": "permute", "perm": "2,0,1"}, lambda x: x.permute(2, 0, 1), {"x": x()})
    fx.case("movement/transpose", {"op": "transpose", "d0": 0, "d1": 2}, lambda x: x.transpose(0, 2), {"x": x()})
    fx.case("movement/narrow", {"op": "narrow", "dim": 1, "start": 1, "len": 2}, lambda x: x.narrow(1, 1, 2), {"x": x()})
    fx.case("movement/index_select_0", {"op": "index_select", "dim": 0, "indices": "1,0,1"},
            lambda x: x.index_select(0, torch.tensor([1, 0, 1])), {"x": x()})
    fx.case("movement/index_select_2", {"op": "index_select", "dim": 2, "indices": "3,1"},
            lambda x: x.index_select(2, torch.tensor([3, 1])), {"x": x()})
    fx.case("movement/reshape", {"op": "reshape", "shape": "4,6"}, lambda x: x.reshape(4, 6), {"x": x()})
    fx.case("join/cat_0", {"op": "cat", "dim": 0}, lambda a, b: torch.cat([a, b], 0), {"a": r(2, 3), "b": r(4, 3)})
    fx.case("join/cat_1", {"op": "cat", "dim": 1}, lambda a, b: torch.cat([a, b], 1), {"a": r(2, 3, 2), "b": r(2, 1, 2)})
    fx.case("join/stack_0", {"op": "stack", "dim": 0}, lambda a, b: torch.stack([a, b], 0), {"a": r(2, 3), "b": r(2, 3)})
    fx.case("join/stack_2", {"op": "stack", "dim": 2}, lambda a, b: torch.stack([a, b], 2), {"a": r(2, 3), "b": r(2, 3)})
    fx.save()


def conv():
    fx = Fixture("conv", exact=True)
    cases = [
        # name, x shape, w shape, bias, stride, padding, dilation, groups
        ("basic", (2, 3, 7, 6), (4, 3, 3, 3), True, 1, 0, 1, 1),
        ("stride2_pad1", (2, 3, 9, 8), (5, 3, 3, 3), True, 2, 1, 1, 1),
        ("dilation2", (1, 2, 9, 9), (3, 2, 3, 3), False, 1, 2, 2, 1),
        ("groups2", (2, 4, 6, 6), (6, 2, 3, 3), True, 1, 1, 1, 2),
        ("rect_odd", (1, 3, 11, 7), (2, 3, 5, 3), True, (2, 1), (2, 1), 1, 1),
        ("lenet_conv1", (2, 1, 28, 28), (6, 1, 5, 5), True, 1, 2, 1, 1),
    ]
    for name, xs, ws, bias, s, p, d, g in cases:
        attrs = {"stride": pair(s), "padding": pair(p), "dilation": pair(d), "groups": g}
        inputs = {"x": r(*xs, low=-1, high=1), "weight": r(*ws, low=-0.5, high=0.5)}
        if bias:
            inputs["bias"] = r(ws[0], low=-0.5, high=0.5)
            f = lambda x, weight, bias, s=s, p=p, d=d, g=g: F.conv2d(x, weight, bias, s, p, d, g)
        else:
            f = lambda x, weight, s=s, p=p, d=d, g=g: F.conv2d(x, weight, None, s, p, d, g)
        fx.case(f"conv2d/{name}", attrs, f, inputs)
    fx.save()


def pool():
    fx = Fixture("pool")
    maxes = [
        # name, x, kernel, stride, padding, dilation, ceil_mode
        ("k2s2", r(2, 3, 8, 8), 2, 2, 0, 1, False),
        ("k3s2p1", r(1, 2, 7, 7), 3, 2, 1, 1, False),
        ("ceil", r(1, 2, 7, 7), 2, 2, 0, 1, True),
        ("ceil_pad", r(1, 2, 6, 6), 3, 2, 1, 1, True),
        ("overlap", r(1, 1, 5, 5), 3, 1, 0, 1, False),
        ("ties", torch.randint(0, 3, (1, 2, 6, 6)).float(), 2, 1, 0, 1, False),
        ("dilation2", r(1, 2, 7, 7), 2, 1, 0, 2, False),
        ("rect", r(1, 2, 7, 6), (3, 2), (2, 1), (1, 0), 1, False),
    ]
    for name, x, k, s, p, d, c in maxes:
        attrs = {"kernel": pair(k), "stride": pair(s), "padding": pair(p), "dilation": pair(d), "ceil_mode": str(c).lower()}
        fx.case(f"max_pool2d/{name}", attrs, lambda x, k=k, s=s, p=p, d=d, c=c: F.max_pool2d(x, k, s, p, d, ceil_mode=c), {"x": x})
    avgs = [
        # name, x, kernel, stride, padding, ceil_mode, count_include_pad
        ("k2s2", r(2, 3, 8, 8), 2, 2, 0, False, True),
        ("k3s2p1_incl", r(1, 2, 7, 7), 3, 2, 1, False, True),
        ("k3s2p1_excl", r(1, 2, 7, 7), 3, 2, 1, False, False),
        ("ceil_incl", r(1, 2, 6, 6), 3, 2, 1, True, True),
        ("ceil_excl", r(1, 2, 6, 6), 3, 2, 1, True, False),
        ("overlap", r(1, 1, 5, 5), 3, 1, 0, False, True),
        ("rect", r(1, 2, 7, 6), (3, 2), (2, 1), (1, 0), True, True),
    ]
    for name, x, k, s, p, c, cip in avgs:
        attrs = {"kernel": pair(k), "stride": pair(s), "padding": pair(p), "ceil_mode": str(c).lower(), "count_include_pad": str(cip).lower()}
        fx.case(f"avg_pool2d/{name}", attrs, lambda x, k=k, s=s, p=p, c=c, i=cip: F.avg_pool2d(x, k, s, p, c, i), {"x": x})
    fx.save()


def embedding():
    fx = Fixture("embedding")
    idx = torch.tensor([[1, 3, 1], [6, 0, 3]])
    fx.case("embedding/plain", {}, lambda weight, indices: F.embedding(indices.long(), weight), {"weight": r(7, 4)}, {"indices": idx})
    fx.case("embedding/padding_idx", {"padding_idx": 3}, lambda weight, indices: F.embedding(indices.long(), weight, padding_idx=3),
            {"weight": r(7, 4)}, {"indices": idx})
    fx.save()


def loss():
    fx = Fixture("loss")
    t = torch.tensor([3, -100, 0, 4, 4, 1])
    for red in ["mean", "sum", "none"]:
        fx.case(f"cross_entropy/{red}", {"reduction": red, "ignore_index": -100},
                lambda logits, targets, red=red: F.cross_entropy(logits, targets.long(), reduction=red),
                {"logits": r(6, 5, low=-3, high=3)}, {"targets": t})
    t2 = torch.tensor([2, 2, 0, 1, 4, 2])
    fx.case("cross_entropy/ignore_2", {"reduction": "mean", "ignore_index": 2},
            lambda logits, targets: F.cross_entropy(logits, targets.long(), ignore_index=2),
            {"logits": r(6, 5, low=-3, high=3)}, {"targets": t2})
    for red in ["mean", "sum", "none"]:
        fx.case(f"mse/{red}", {"reduction": red}, lambda pred, target, red=red: F.mse_loss(pred, target, reduction=red),
                {"pred": r(3, 4), "target": r(3, 4)})
    fx.save()


def lenet5():
    """LeNet-5 as saddle builds it (nn.Sequential order gives the same state-dict names)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def lenet_state_dict():
    """A PyTorch LeNet-5 state dict and its logits on fixed inputs, for the interoperability test."""
    model = lenet5()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        logits = model(x)
    tensors = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, os.path.join(OUT, "lenet5_state_dict.safetensors"))
    save_file({"x": x.contiguous(), "logits": logits.contiguous()}, os.path.join(OUT, "lenet5_io.safetensors"))
    print("lenet5: state dict and logits")


OPTIMIZERS = [
    # name, torch class, kwargs
    ("sgd", "SGD", {"lr": 0.1}),
    ("sgd_momentum", "SGD", {"lr": 0.05, "momentum": 0.9}),
    ("sgd_dampening", "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
    ("sgd_nesterov", "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("sgd_weight_decay", "SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    ("adagrad", "Adagrad", {"lr": 0.05}),
    ("adagrad_lr_decay", "Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("adagrad_weight_decay", "Adagrad", {"lr": 0.1, "weight_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("rmsprop", "RMSprop", {"lr": 0.003}),
    ("rmsprop_momentum", "RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("rmsprop_centered", "RMSprop", {"lr": 0.003, "centered": True}),
    ("rmsprop_weight_decay", "RMSprop", {"lr": 0.001, "alpha": 0.9, "weight_decay": 0.01, "momentum": 0.5}),
    ("adam", "Adam", {"lr": 0.01}),
    ("adam_amsgrad", "Adam", {"lr": 0.01, "amsgrad": True}),
    ("adam_weight_decay", "Adam", {"lr": 0.01, "weight_decay": 0.01, "betas": (0.8, 0.99)}),
    ("adamw", "AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("adamw_amsgrad", "AdamW", {"lr": 0.01, "amsgrad": True}),
]


def optimizers():
    """100 steps of each optimizer on a small fixed model: parameters every 10 steps.

    Model: y = tanh(x·W1ᵀ + b1)·W2ᵀ + b2, loss = mse(y, t), x: [8, 4], t: [8, 2].
    """
    fx = Fixture("optim")
    init = {"w1": torch.randn(3, 4) * 0.5, "b1": torch.randn(3) * 0.1, "w2": torch.randn(2, 3) * 0.5, "b2": torch.randn(2) * 0.1}
    x, t = torch.randn(8, 4), torch.randn(8, 2)
    fx.tensors["data/x"], fx.tensors["data/t"] = x, t
    for k, v in init.items():
        fx.tensors[f"data/{k}"] = v
    for name, cls, kwargs in OPTIMIZERS:
        params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
        opt = getattr(torch.optim, cls)(params.values(), **kwargs)
        for step in range(1, 101):
            opt.zero_grad()
            y = torch.tanh(x @ params["w1"].T + params["b1"]) @ params["w2"].T + params["b2"]
            F.mse_loss(y, t).backward()
            opt.step()
            if step % 10 == 0:
                for k, v in params.items():
                    fx.tensors[f"opt/{name}/step{step}/{k}"] = v.detach().clone()
        attrs = {"optim": cls, **{k: (",".join(map(str, v)) if isinstance(v, tuple) else str(v).lower()) for k, v in kwargs.items()}}
        fx.meta[f"opt/{name}"] = " ".join(f"{k}={v}" for k, v in attrs.items())
    fx.save()


def schedules():
    """Learning rates of torch.optim.lr_scheduler, step by step from base lr 0.1."""
    import math
    fx = Fixture("schedule")
    sched = torch.optim.lr_scheduler
    cases = [
        ("constant", {"kind": "constant"}, lambda o: sched.LambdaLR(o, lambda t: 1.0)),
        ("step", {"kind": "step", "step_size": 7, "gamma": 0.5}, lambda o: sched.StepLR(o, 7, 0.5)),
        ("multistep", {"kind": "multistep", "milestones": "10,25,40", "gamma": 0.3}, lambda o: sched.MultiStepLR(o, [10, 25, 40], 0.3)),
        ("exponential", {"kind": "exponential", "gamma": 0.95}, lambda o: sched.ExponentialLR(o, 0.95)),
        ("cosine", {"kind": "cosine", "t_max": 50, "eta_min": 0.001}, lambda o: sched.CosineAnnealingLR(o, 50, 0.001)),
        ("cosine_restarts_1", {"kind": "cosine_restarts", "t_0": 10, "t_mult": 1, "eta_min": 0.0},
         lambda o: sched.CosineAnnealingWarmRestarts(o, 10, 1)),
        ("cosine_restarts_2", {"kind": "cosine_restarts", "t_0": 5, "t_mult": 2, "eta_min": 0.001},
         lambda o: sched.CosineAnnealingWarmRestarts(o, 5, 2, 0.001)),
        ("inverse_sqrt", {"kind": "inverse_sqrt", "timescale": 10}, lambda o: sched.LambdaLR(o, lambda t: 1 / math.sqrt(1 + t / 10))),
        ("one_cycle", {"kind": "one_cycle", "total_steps": 60}, lambda o: sched.OneCycleLR(o, 0.1, total_steps=60)),
        # Warm-up, then the schedule over the remaining steps: a ramp (t + 1)/W that reaches the base rate at step W − 1.
        ("warmup_step", {"kind": "warmup_step", "warmup": 5, "step_size": 7, "gamma": 0.5},
         lambda o: sched.SequentialLR(o, [sched.LinearLR(o, 1 / 5, total_iters=4), sched.StepLR(o, 7, 0.5)], milestones=[5])),
        ("warmup_cosine", {"kind": "warmup_cosine", "warmup": 8, "total_steps": 60},
         lambda o: sched.SequentialLR(o, [sched.LinearLR(o, 1 / 8, total_iters=7), sched.CosineAnnealingLR(o, 60 - 8)], milestones=[8])),
    ]
    for name, attrs, make in cases:
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        s = make(opt)
        lrs = []
        for _ in range(60):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            s.step()
        fx.tensors[f"sched/{name}/lr"] = torch.tensor(lrs, dtype=torch.float32)
        fx.meta[f"sched/{name}"] = " ".join(f"{k}={v}" for k, v in attrs.items())
    # Reduce on plateau: one metric per epoch.
    metrics = [1.0, 0.9, 0.8, 0.8, 0.8, 0.8, 0.79995, 0.7, 0.7, 0.7, 0.7, 0.7, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    s = sched.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1)
    lrs = []
    for m in metrics:
        s.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    fx.tensors["plateau/case/metric"] = torch.tensor(metrics, dtype=torch.float32)
    fx.tensors["plateau/case/lr"] = torch.tensor(lrs, dtype=torch.float32)
    fx.meta["plateau/case"] = "factor=0.5 patience=2 cooldown=1"
    fx.save()


def recurrent():
    """RNN (tanh, relu), LSTM and GRU with 1 and 2 layers, one and two
    directions, unequal lengths (packed sequences) and a random initial state.

    Stored per case: x, h0 (c0), every parameter as param/NAME, out (zeros at
    padded steps), h_n (c_n), upstream gradients gout, gh (gc), and gradients
    grad_x, grad_h0 (grad_c0), grad_param/NAME of
    L = Σ out·gout + Σ h_n·gh (+ Σ c_n·gc).
    """
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    fx = Fixture("recurrent")
    T, B, I, H = 5, 3, 4, 3
    lengths = [5, 2, 4]
    for kind in ["rnn_tanh", "rnn_relu", "lstm", "gru"]:
        for layers in [1, 2]:
            for bi in [False, True]:
                batch_first = layers == 2 and not bi  # one layout of each kind runs batch-first
                name = f"rnn/{kind}_l{layers}_{'bi' if bi else 'uni'}"
                if kind.startswith("rnn"):
                    m = torch.nn.RNN(I, H, num_layers=layers, bidirectional=bi, batch_first=batch_first,
                                     nonlinearity=kind.split("_")[1])
                else:
                    m = getattr(torch.nn, kind.upper())(I, H, num_layers=layers, bidirectional=bi, batch_first=batch_first)
                d = 2 if bi else 1
                x = torch.randn(B, T, I) if batch_first else torch.randn(T, B, I)
                x.requires_grad_(True)
                h0 = (torch.randn(layers * d, B, H) * 0.5).requires_grad_(True)
                c0 = (torch.randn(layers * d, B, H) * 0.5).requires_grad_(True)
                packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
                out_p, state = m(packed, (h0, c0) if kind == "lstm" else h0)
                out, _ = pad_packed_sequence(out_p, batch_first=batch_first, total_length=T)
                h_n = state[0] if kind == "lstm" else state
                gout, gh = torch.randn_like(out), torch.randn_like(h_n)
                loss = (out * gout).sum() + (h_n * gh).sum()
                t = fx.tensors
                if kind == "lstm":
                    gc = torch.randn_like(state[1])
                    loss = loss + (state[1] * gc).sum()
                    t[f"{name}/c0"], t[f"{name}/c_n"], t[f"{name}/gc"] = c0.detach(), state[1].detach(), gc
                loss.backward()
                if kind == "lstm":
                    t[f"{name}/grad_c0"] = c0.grad
                t[f"{name}/x"], t[f"{name}/h0"], t[f"{name}/out"], t[f"{name}/h_n"] = x.detach(), h0.detach(), out.detach(), h_n.detach()
                t[f"{name}/gout"], t[f"{name}/gh"], t[f"{name}/grad_x"], t[f"{name}/grad_h0"] = gout, gh, x.grad, h0.grad
                for pname, p in m.named_parameters():
                    t[f"{name}/param/{pname}"] = p.detach().clone()
                    t[f"{name}/grad_param/{pname}"] = p.grad.clone()
                fx.meta[name] = (f"kind={kind} layers={layers} bidirectional={str(bi).lower()} "
                                 f"batch_first={str(batch_first).lower()} lengths={','.join(map(str, lengths))} input={I} hidden={H}")
    fx.save()


def lstm_state_dict():
    """A torch.nn.LSTM state dict as safetensors, with its output on fixed
    inputs: the file a saddle LSTM loads without conversion."""
    m = torch.nn.LSTM(4, 3, num_layers=2, bidirectional=True)
    x = torch.randn(5, 2, 4)
    with torch.no_grad():
        out, (h, c) = m(x)
    save_file({k: v.detach().clone().contiguous() for k, v in m.state_dict().items()},
              os.path.join(OUT, "lstm_state_dict.safetensors"))
    save_file({"x": x.contiguous(), "out": out.contiguous(), "h_n": h.contiguous(), "c_n": c.contiguous()},
              os.path.join(OUT, "lstm_io.safetensors"))
    print("lstm: state dict and outputs")


def cnn_parts():
    """The layers of modern CNNs: batch norm (training and evaluation, affine on
    and off, running statistics), GELU, SiLU, adaptive average pooling and
    cross-entropy with label smoothing."""
    torch.manual_seed(17)
    fx = Fixture("cnn_parts")
    for name, shape in [("2d", (4, 3, 5, 6)), ("1d", (7, 4)), ("1d_seq", (3, 2, 5))]:
        for training in [True, False]:
            for affine in [True, False]:
                rm, rv = r(shape[1], low=-0.5, high=0.5), r(shape[1], low=0.5, high=2.0)
                case = f"batch_norm/{name}_{'train' if training else 'eval'}_{'affine' if affine else 'plain'}"
                attrs = {"training": str(training).lower(), "affine": str(affine).lower(), "momentum": 0.1, "eps": 1e-5}
                fx.tensors[f"{case}/running_mean_before"], fx.tensors[f"{case}/running_var_before"] = rm.clone(), rv.clone()
                inputs = {"x": r(*shape) * 3 + 1}
                if affine:
                    inputs["weight"], inputs["bias"] = r(shape[1], low=0.5, high=1.5), r(shape[1])
                    f = lambda x, weight, bias, rm=rm, rv=rv, t=training: F.batch_norm(x, rm, rv, weight, bias, t, 0.1, 1e-5)
                else:
                    f = lambda x, rm=rm, rv=rv, t=training: F.batch_norm(x, rm, rv, None, None, t, 0.1, 1e-5)
                fx.case(case, attrs, f, inputs)
                fx.tensors[f"{case}/running_mean"], fx.tensors[f"{case}/running_var"] = rm.clone(), rv.clone()
    # Running statistics after five training steps of nn.BatchNorm2d, then evaluation.
    bn = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    fx.tensors["running/steps/weight"], fx.tensors["running/steps/bias"] = bn.weight.detach().clone(), bn.bias.detach().clone()
    for step in range(5):
        x = r(4, 3, 3, 3) * (step + 1)
        fx.tensors[f"running/steps/x{step}"] = x
        fx.tensors[f"running/steps/y{step}"] = bn(x).detach()
    for k in ["running_mean", "running_var"]:
        fx.tensors[f"running/steps/{k}"] = getattr(bn, k).clone()
    bn.eval()
    x = r(2, 3, 3, 3)
    fx.tensors["running/steps/x_eval"], fx.tensors["running/steps/y_eval"] = x, bn(x).detach()
    fx.meta["running/steps"] = "steps=5"
    x = r(3, 4, 5, low=-4.0, high=4.0)
    x[0, 0, :3] = torch.tensor([0.0, 1e-4, -1e-4])
    fx.case("act/gelu", {"op": "gelu"}, lambda x: F.gelu(x), {"x": x})
    fx.case("act/silu", {"op": "silu"}, lambda x: F.silu(x), {"x": x})
    for name, shape, size in [("global", (2, 3, 7, 5), (1, 1)), ("uneven", (1, 2, 7, 5), (3, 2)), ("grow", (1, 2, 3, 3), (4, 5))]:
        fx.case(f"adaptive_avg_pool2d/{name}", {"output": pair(size)}, lambda x, s=size: F.adaptive_avg_pool2d(x, s), {"x": r(*shape)})
    t = torch.tensor([3, -100, 0, 4, 4, 1])
    for red in ["mean", "sum", "none"]:
        fx.case(f"cross_entropy/smooth_{red}", {"reduction": red, "ignore_index": -100, "label_smoothing": 0.2},
                lambda logits, targets, red=red: F.cross_entropy(logits, targets.long(), reduction=red, label_smoothing=0.2),
                {"logits": r(6, 5, low=-3, high=3)}, {"targets": t})
    # A 3×3 convolution with padding 1 between 16 channels, the CIFAR networks' kind.
    attrs = {"stride": pair(1), "padding": pair(1), "dilation": pair(1), "groups": 1}
    fx.case("conv2d/same_16_channels", attrs, lambda x, weight, bias: F.conv2d(x, weight, bias, 1, 1),
            {"x": r(3, 16, 7, 6, low=-1, high=1), "weight": r(20, 16, 3, 3, low=-0.5, high=0.5), "bias": r(20)})
    fx.save()


class BasicBlock(torch.nn.Module):
    """The CIFAR ResNet's block with the option-A shortcut (He et al. 2016), torchvision's names."""

    def __init__(self, inp, out, stride):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.stride, self.pad = stride, (out - inp) // 2

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        short = x
        if self.stride != 1 or self.pad:
            short = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(h + short)


class ResNet20(torch.nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        width = 16
        for stage, out in enumerate([16, 32, 64]):
            blocks = []
            for i in range(3):
                blocks.append(BasicBlock(width, out, 2 if stage > 0 and i == 0 else 1))
                width = out
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


def resnet20():
    """A ResNet-20 state dict (buffers included, after a few training steps so
    that the running statistics are not their initial values) and its
    evaluation-mode logits on fixed inputs."""
    torch.manual_seed(20)
    model = ResNet20()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
    tensors = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, os.path.join(OUT, "resnet20_state_dict.safetensors"))
    save_file({"x": x.contiguous(), "logits": logits.contiguous()}, os.path.join(OUT, "resnet20_io.safetensors"))
    print("resnet20: state dict and logits")

def char_cnn():
    """The tagger's character features (Ma & Hovy 2016): embedding with
    padding row 0, Conv1d of width 3 with padding 1, maximum over the word."""
    torch.manual_seed(12)
    fx = Fixture("char_cnn")
    chars = torch.tensor([[3, 1, 4, 0, 0], [5, 2, 6, 2, 5], [1, 0, 0, 0, 0]])

    def features(embedding, weight, bias, chars):
        e = F.embedding(chars.long(), embedding, padding_idx=0).transpose(1, 2)
        return F.conv1d(e, weight, bias, padding=1).max(dim=2).values

    emb = r(7, 4)
    emb[0] = 0.0
    fx.case("char_cnn/features", {}, features, {"embedding": emb, "weight": r(6, 4, 3), "bias": r(6)}, {"chars": chars})
    fx.save()


def crf():
    """A linear-chain CRF written out in PyTorch (forward algorithm by
    logsumexp, autograd for the gradients, Viterbi by max): negative
    log-likelihood per word, with tags of -100 summed over (unknown tags)."""
    torch.manual_seed(11)
    fx = Fixture("crf")

    def log_z(e, transitions, start, end):
        alpha = start + e[0]
        for t in range(1, e.shape[0]):
            alpha = torch.logsumexp(alpha[:, None] + transitions, dim=0) + e[t]
        return torch.logsumexp(alpha + end, dim=0)

    def nll(emissions, transitions, start, end, tags, lengths, viterbi):
        total = 0.0
        for b in range(emissions.shape[0]):
            n = int(lengths[b])
            e, y = emissions[b, :n], tags[b, :n].long()
            allowed = torch.zeros_like(e)
            for t in range(n):
                if y[t] >= 0:
                    allowed[t] = float("-inf")
                    allowed[t, y[t]] = 0.0
            total = total + log_z(e, transitions, start, end) - log_z(e + allowed, transitions, start, end)
        return total / lengths.sum()

    def decode(emissions, transitions, start, end, lengths):
        out = torch.full(emissions.shape[:2], -1.0)
        for b in range(emissions.shape[0]):
            n = int(lengths[b])
            delta, back = start + emissions[b, 0], []
            for t in range(1, n):
                best, arg = (delta[:, None] + transitions).max(dim=0)
                delta, _ = best + emissions[b, t], back.append(arg)
            tag = int((delta + end).argmax())
            for t in range(n - 1, -1, -1):
                out[b, t] = tag
                if t > 0:
                    tag = int(back[t - 1][tag])
        return out

    for name, (b, t, c, spread, unknown) in {
        "known": (3, 5, 4, 2.0, 0),
        "partial": (3, 6, 5, 2.0, 3),
        "wide": (4, 24, 20, 4.0, 0),
    }.items():
        lengths = torch.tensor([t - k % 3 for k in range(b)], dtype=torch.float32)
        tags = torch.randint(0, c, (b, t)).float()
        for k in range(b):
            tags[k, int(lengths[k]):] = -100
        for k in range(unknown):
            tags[k, 1 + k] = -100
        params = {"emissions": r(b, t, c, low=-spread, high=spread), "transitions": r(c, c, low=-spread, high=spread),
                  "start": r(c, low=-spread, high=spread), "end": r(c, low=-spread, high=spread)}
        with torch.no_grad():
            viterbi = decode(params["emissions"], params["transitions"], params["start"], params["end"], lengths)
        fx.case(f"crf/{name}", {}, nll, params, {"tags": tags, "lengths": lengths, "viterbi": viterbi})
    fx.save()


# Makers that seed themselves, so each can be rerun alone: make_fixtures.py NAME …
SELF_SEEDED = {"cnn_parts": cnn_parts, "resnet20": resnet20, "crf": crf, "char_cnn": char_cnn}

if __name__ == "__main__":
    import sys
    if len(sys.argv) > 1:
        for name in sys.argv[1:]:
            SELF_SEEDED[name]()
        sys.exit(0)
    torch.manual_seed(0)
    for make in [elementwise, activation, reduce, matmul, movement, conv, pool, embedding, loss, lenet_state_dict, optimizers, schedules, recurrent, lstm_state_dict]:
        make()
    for make in SELF_SEEDED.values():
        make()
