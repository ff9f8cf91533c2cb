#!/usr/bin/env python3
"""Train a softmax-regression classifier on the UCI handwritten digits.

Python 3 standard library only. Reads DATA (1,797 rows of 64 pixel values
0-16 and a label), holds out 20 % (seeded shuffle), trains with mini-batch
SGD, prints one line per epoch in Katib's metrics format
("epoch=3 loss=0.41 accuracy=0.93"), writes the model as JSON into
MODEL_DIR (atomically) and exits 1 when the held-out accuracy is below
--min-accuracy.
"""
import argparse
import json
import math
import os
import random
import sys
import time


def load(path):
    xs, ys = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            vals = line.split(",")
            if len(vals) != 65:
                sys.exit(f"{path}:{n}: expected 65 comma-separated values, got {len(vals)}")
            xs.append([float(v) / 16.0 for v in vals[:64]])
            ys.append(int(vals[64]))
    return xs, ys


def predict_proba(W, b, x):
    z = [b[k] + sum(wi * xi for wi, xi in zip(W[k], x)) for k in range(10)]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def evaluate(W, b, xs, ys):
    loss, correct = 0.0, 0
    for x, y in zip(xs, ys):
        p = predict_proba(W, b, x)
        loss -= math.log(max(p[y], 1e-12))
        correct += max(range(10), key=p.__getitem__) == y
    return loss / len(xs), correct / len(xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True, help="digits.csv")
    ap.add_argument("--model-dir", required=True, help="directory to write digits.json into")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--min-accuracy", type=float, default=0.90)
    args = ap.parse_args()

    xs, ys = load(args.data)
    idx = list(range(len(xs)))
    random.Random(args.seed).shuffle(idx)
    cut = int(len(idx) * 0.8)
    tr, te = idx[:cut], idx[cut:]
    xtr, ytr = [xs[i] for i in tr], [ys[i] for i in tr]
    xte, yte = [xs[i] for i in te], [ys[i] for i in te]
    print(f"loaded {len(xs)} images from {args.data}: {len(xtr)} for training, {len(xte)} held out", flush=True)

    rng = random.Random(args.seed)
    W = [[0.0] * 64 for _ in range(10)]
    b = [0.0] * 10
    start = time.time()
    for epoch in range(1, args.epochs + 1):
        order = list(range(len(xtr)))
        rng.shuffle(order)
        lr = args.lr / (1 + 0.1 * epoch)
        for s in range(0, len(order), args.batch):
            batch = order[s:s + args.batch]
            gW = [[0.0] * 64 for _ in range(10)]
            gb = [0.0] * 10
            for i in batch:
                x, y = xtr[i], ytr[i]
                p = predict_proba(W, b, x)
                for k in range(10):
                    d = p[k] - (1.0 if k == y else 0.0)
                    if d == 0.0:
                        continue
                    gb[k] += d
                    gk = gW[k]
                    for j in range(64):
                        gk[j] += d * x[j]
            scale = lr / len(batch)
            for k in range(10):
                b[k] -= scale * gb[k]
                Wk, gk = W[k], gW[k]
                for j in range(64):
                    Wk[j] -= scale * gk[j] + lr * args.l2 * Wk[j]
        loss, acc = evaluate(W, b, xtr, ytr)
        print(f"epoch={epoch} loss={loss:.4f} accuracy={acc:.4f}", flush=True)

    _, test_acc = evaluate(W, b, xte, yte)
    print(f"held-out accuracy: {test_acc:.4f} on {len(xte)} images ({time.time() - start:.1f}s)", flush=True)
    print(f"test_accuracy={test_acc:.4f}", flush=True)

    os.makedirs(args.model_dir, exist_ok=True)
    model = {"name": "digits", "kind": "softmax-regression", "inputs": 64, "input_scale": 1.0 / 16.0,
             "classes": list(range(10)), "W": W, "b": b, "test_accuracy": test_acc,
             "held_out_rows": te}
    tmp = os.path.join(args.model_dir, ".digits.json.tmp")
    with open(tmp, "w") as f:
        json.dump(model, f)
    os.replace(tmp, os.path.join(args.model_dir, "digits.json"))
    print(f"model written to {os.path.join(args.model_dir, 'digits.json')}", flush=True)
    if test_acc < args.min_accuracy:
        print(f"held-out accuracy {test_acc:.4f} is below --min-accuracy {args.min_accuracy}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
