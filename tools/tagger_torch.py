#!/usr/bin/env python3
"""The tagger of `saddle train slots`, in PyTorch, on the same split with the
same recipe, for a side-by-side comparison of accuracy and training speed:

    python3 tools/tagger_torch.py --data DIR [--char-filters 30] [--epochs 10] [--lr 3e-3] [--dropout 0.5]

DIR holds `train.conllu` and `test.conllu` (or Universal Dependencies' names
`...-train.conllu`, gzip allowed), read as saddle reads them: FORM -> UPOS,
multi-word ranges and empty nodes skipped, the last min(500, n/5) training
sentences held out as the dev set (when DIR has no dev file). Words are looked
up lower-cased with digits as 0; characters as written, the first 24 of a
word. The network: Embedding(V, 100, padding_idx=0); with --char-filters F,
a character CNN (Embedding(Vc, 30), Conv1d(30, F, 3, padding=1), maximum over
the word) concatenated to it; dropout; a bidirectional LSTM(., 128) over the
true lengths; dropout; Linear(256, tags); cross-entropy per word. Adam with a
cosine schedule over all steps, batches of 16 shuffled each epoch, PyTorch
with 2 threads. Prints one JSON line: test token accuracy, training seconds
(steps only, as saddle's `train_seconds`) and sentences per second.
"""
import argparse
import gzip
import json
import math
import os
import random
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MAX_WORD_CHARS = 24


def find(folder, split):
    names = [n for n in os.listdir(folder)
             if n.removesuffix(".gz").removesuffix(".conllu") in (split,) or n.removesuffix(".gz").endswith(f"-{split}.conllu")]
    return os.path.join(folder, names[0]) if names else None


def read_conllu(path):
    opener = gzip.open if path.endswith(".gz") else open
    sentences, words, tags = [], [], []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if words:
                    sentences.append((words, tags))
                words, tags = [], []
                continue
            if line.startswith("#"):
                continue
            fields = line.split("\t")
            if "-" in fields[0] or "." in fields[0]:
                continue
            words.append(fields[1])
            tags.append(fields[3])
    if words:
        sentences.append((words, tags))
    return sentences


def word_form(w):
    return "".join("0" if c.isdigit() and c.isascii() else c for c in w).lower()


def vocab(tokens):
    counts = {}
    for t in tokens:
        counts[t] = counts.get(t, 0) + 1
    kept = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    itos = ["<pad>", "<unk>"] + [t for t, _ in kept]
    return {t: i for i, t in enumerate(itos)}


class Tagger(nn.Module):
    def __init__(self, words, chars, tags, char_filters, char_dim=30, emb=100, hidden=128, dropout=0.5):
        super().__init__()
        self.embedding = nn.Embedding(words, emb, padding_idx=0)
        self.char_filters = char_filters
        if char_filters:
            self.char_embedding = nn.Embedding(chars, char_dim, padding_idx=0)
            self.char_conv = nn.Conv1d(char_dim, char_filters, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.LSTM(emb + char_filters, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, tags)

    def forward(self, x, c, lengths):
        e = self.embedding(x)
        if self.char_filters:
            b, t, l = c.shape
            h = self.char_conv(self.char_embedding(c.reshape(b * t, l)).transpose(1, 2))
            e = torch.cat([e, h.max(dim=2).values.reshape(b, t, -1)], dim=2)
        packed = nn.utils.rnn.pack_padded_sequence(self.dropout(e), lengths, batch_first=True, enforce_sorted=False)
        h, _ = self.rnn(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
        return self.fc(self.dropout(h))


def batch(sentences, wv, cv, tv):
    t = max(len(w) for w, _ in sentences)
    l = max(1, max(min(len(word), MAX_WORD_CHARS) for w, _ in sentences for word in w))
    x = torch.zeros(len(sentences), t, dtype=torch.long)
    c = torch.zeros(len(sentences), t, l, dtype=torch.long)
    y = torch.full((len(sentences), t), -100, dtype=torch.long)
    for b, (words, tags) in enumerate(sentences):
        for k, (w, tag) in enumerate(zip(words, tags)):
            x[b, k] = wv.get(word_form(w), 1)
            y[b, k] = tv.get(tag, -100)
            for j, ch in enumerate(w[:MAX_WORD_CHARS]):
                c[b, k, j] = cv.get(ch, 1)
    return x, c, y, torch.tensor([len(w) for w, _ in sentences])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--char-filters", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)

    train, test = read_conllu(find(args.data, "train")), read_conllu(find(args.data, "test"))
    dev_file = find(args.data, "dev")
    if not dev_file:
        train = train[:len(train) - min(500, len(train) // 5)]
    wv = vocab(word_form(w) for s, _ in train for w in s)
    cv = vocab(ch for s, _ in train for w in s for ch in w)
    tv = {t: i for i, t in enumerate(sorted({t for _, ts in train for t in ts}))}
    model = Tagger(len(wv), len(cv), len(tv), args.char_filters, dropout=args.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.epochs * math.ceil(len(train) / args.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    seconds = 0.0
    for _ in range(args.epochs):
        model.train()
        order = list(range(len(train)))
        random.shuffle(order)
        for i in range(0, len(order), args.batch_size):
            x, c, y, lengths = batch([train[k] for k in order[i:i + args.batch_size]], wv, cv, tv)
            started = time.perf_counter()
            loss = F.cross_entropy(model(x, c, lengths).reshape(-1, len(tv)), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seconds += time.perf_counter() - started
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for i in range(0, len(test), 64):
            x, c, y, lengths = batch(test[i:i + 64], wv, cv, tv)
            gold = [tags for _, tags in test[i:i + 64]]
            pred = model(x, c, lengths).argmax(dim=2)
            inv = {i: t for t, i in tv.items()}
            for b, tags in enumerate(gold):
                for k, tag in enumerate(tags):
                    correct += inv[int(pred[b, k])] == tag
                    total += 1
    print(json.dumps({"impl": "torch", "char_filters": args.char_filters, "epochs": args.epochs, "seed": args.seed,
                      "test_token_accuracy": round(correct / total, 4), "train_seconds": round(seconds, 1),
                      "sentences_per_s": round(args.epochs * len(train) / seconds), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
