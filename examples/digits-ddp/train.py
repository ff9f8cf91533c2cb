#!/usr/bin/env python3
"""Data-parallel softmax regression on the UCI digits, standard library only.

The distributed version of examples/digits/train.py: the same data, split
(seeded shuffle, 20 % held out), model, learning-rate schedule and metric
lines, trained by WORLD_SIZE workers at once, as DistributedDataParallel
does it:

- Worker RANK trains on its shard of the training rows (every
  WORLD_SIZE-th row from RANK on), in local batches of ceil(batch /
  WORLD_SIZE) rows, so a step of all workers together sees `--batch` rows.
- After every step the workers' gradient sums are summed over TCP (an
  all-reduce through worker 0 at MASTER_ADDR:MASTER_PORT) and every worker
  applies the same update, so the weights stay identical on all workers.
- Worker 0 listens; the others connect with retries until
  --rendezvous-timeout, so the workers may start in any order. A worker
  that dies closes its socket and the others stop at once (and a silent one
  after --collective-timeout), instead of waiting forever.
- Worker 0 writes a checkpoint (weights and the finished epoch, JSON,
  written to a temporary file and renamed) into $PETREL_CHECKPOINT_DIR after
  every epoch; on start it loads it, prints "resumed from epoch N" and sends
  the weights to the other workers, so a preempted job goes on where it was
  (with the same or another number of workers).
- SIGTERM (a preemption, `petrel preempt`, an eviction) stops the worker at
  once with exit code 143; the checkpoint of the last finished epoch stays.

Worker 0 prints one line per epoch in Katib's metrics format ("epoch=3
loss=0.41 accuracy=0.93", loss and accuracy over all training rows) and the
held-out accuracy at the end; with --model-dir it writes digits.json as
examples/digits does (examples/digits/serve.py can serve it). Without
WORLD_SIZE in the environment it trains alone.
"""
import argparse
import array
import json
import math
import os
import random
import signal
import socket
import struct
import sys
import time


def log(msg):
    print(msg, flush=True)


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


def ceil_div(a, b):
    return -(-a // b)


def predict_proba(W, b, x):
    z = [b[k] + sum(wi * xi for wi, xi in zip(W[k], x)) for k in range(10)]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def eval_sums(W, b, xs, ys):
    """Summed loss and number correct over xs (to be all-reduced)."""
    loss, correct = 0.0, 0
    for x, y in zip(xs, ys):
        p = predict_proba(W, b, x)
        loss -= math.log(max(p[y], 1e-12))
        correct += max(range(10), key=p.__getitem__) == y
    return loss, correct


# --- communication -----------------------------------------------------------

class PeerLost(Exception):
    pass


def send_msg(sock, payload):
    sock.sendall(struct.pack("!Q", len(payload)) + payload)


def recv_exact(sock, n, who):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise PeerLost(f"{who} closed the connection")
        buf += chunk
    return bytes(buf)


def recv_msg(sock, who):
    (n,) = struct.unpack("!Q", recv_exact(sock, 8, who))
    return recv_exact(sock, n, who)


class Group:
    """WORLD_SIZE workers in a star around worker 0 (enough for 2-16)."""

    def __init__(self, rank, world, addr, port, rendezvous_timeout, collective_timeout):
        self.rank, self.world = rank, world
        self.peers = {}  # worker 0: rank -> socket
        self.master = None  # the others: the socket to worker 0
        if world == 1:
            return
        deadline = time.time() + rendezvous_timeout
        if rank == 0:
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind(("", port))
            srv.listen(world)
            log(f"worker 0 listening on port {port} for {world - 1} other workers")
            while len(self.peers) < world - 1:
                left = deadline - time.time()
                if left <= 0:
                    missing = sorted(set(range(1, world)) - set(self.peers))
                    raise PeerLost(f"rendezvous timed out after {rendezvous_timeout:.0f}s: workers {missing} did not connect")
                srv.settimeout(left)
                try:
                    conn, peer = srv.accept()
                except socket.timeout:
                    continue
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.settimeout(collective_timeout)
                r, w = struct.unpack("!II", recv_exact(conn, 8, f"{peer[0]}"))
                if w != world or not 0 < r < world or r in self.peers:
                    conn.close()
                    raise PeerLost(f"a worker at {peer[0]} says it is rank {r} of {w}; this is rank 0 of {world}")
                self.peers[r] = conn
            srv.close()
        else:
            attempt = 0
            while True:
                try:
                    s = socket.create_connection((addr, port), timeout=5)
                    break
                except OSError as err:  # worker 0 not listening yet, or its name not resolvable yet
                    attempt += 1
                    if time.time() > deadline:
                        raise PeerLost(f"rendezvous timed out after {rendezvous_timeout:.0f}s: cannot reach worker 0 at {addr}:{port}: {err}")
                    time.sleep(min(0.05 * attempt, 1.0))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(collective_timeout)
            s.sendall(struct.pack("!II", rank, world))
            self.master = s

    def allreduce_sum(self, values):
        """Element-wise sum of a list of floats over all workers."""
        if self.world == 1:
            return list(values)
        buf = array.array("d", values)
        if self.rank == 0:
            total = buf
            for r in range(1, self.world):
                other = array.array("d")
                other.frombytes(recv_msg(self.peers[r], f"worker {r}"))
                for i, v in enumerate(other):
                    total[i] += v
            out = total.tobytes()
            for r in range(1, self.world):
                send_msg(self.peers[r], out)
            return total.tolist()
        send_msg(self.master, buf.tobytes())
        res = array.array("d")
        res.frombytes(recv_msg(self.master, "worker 0"))
        return res.tolist()

    def broadcast(self, obj):
        """Worker 0's obj (JSON-serialisable) on every worker."""
        if self.world == 1:
            return obj
        if self.rank == 0:
            data = json.dumps(obj).encode()
            for r in range(1, self.world):
                send_msg(self.peers[r], data)
            return obj
        return json.loads(recv_msg(self.master, "worker 0"))

    def close(self):
        for s in list(self.peers.values()) + ([self.master] if self.master else []):
            try:
                s.close()
            except OSError:
                pass


# --- checkpoints --------------------------------------------------------------

def load_checkpoint(path):
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def save_checkpoint(path, state):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # atomic: a reader sees the old or the new checkpoint, never half of one


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="digits.csv")
    ap.add_argument("--model-dir", default="", help="where worker 0 writes digits.json at the end (optional)")
    ap.add_argument("--checkpoint-dir", default=os.environ.get("PETREL_CHECKPOINT_DIR", ""),
                    help="default $PETREL_CHECKPOINT_DIR; empty: no checkpoints")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=32, help="global batch: rows per step over all workers")
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--min-accuracy", type=float, default=0.90)
    ap.add_argument("--epoch-sleep", type=float, default=0.0, help="seconds to sleep after each epoch (time to preempt in a demo)")
    ap.add_argument("--rendezvous-timeout", type=float, default=300.0)
    ap.add_argument("--collective-timeout", type=float, default=120.0)
    args = ap.parse_args()

    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    addr = os.environ.get("MASTER_ADDR", "127.0.0.1")
    port = int(os.environ.get("MASTER_PORT", "29500"))
    if not 0 <= rank < world:
        sys.exit(f"RANK {rank} is not in 0..WORLD_SIZE-1 ({world})")

    current = {"epoch": 0}

    def on_term(signum, frame):
        log(f"worker {rank}: SIGTERM, stopping; the checkpoint of epoch {current['epoch']} stays")
        os._exit(143)  # at once: not inside a half-written checkpoint (that is a .tmp, renamed only when whole)

    signal.signal(signal.SIGTERM, on_term)

    xs, ys = load(args.data)
    idx = list(range(len(xs)))
    random.Random(args.seed).shuffle(idx)  # the same split as examples/digits
    cut = int(len(idx) * 0.8)
    tr, te = idx[:cut], idx[cut:]
    shard = tr[rank::world]
    xtr, ytr = [xs[i] for i in shard], [ys[i] for i in shard]
    xte, yte = [xs[i] for i in te], [ys[i] for i in te]
    local_batch = ceil_div(args.batch, world)
    steps = ceil_div(ceil_div(len(tr), world), local_batch)  # the largest shard's: every worker takes as many steps
    log(f"worker {rank} of {world}: {len(shard)} of {len(tr)} training rows, {local_batch} per step, {steps} steps per epoch; worker 0 at {addr}:{port}")

    t0 = time.time()
    try:
        group = Group(rank, world, addr, port, args.rendezvous_timeout, args.collective_timeout)
    except (PeerLost, OSError) as err:
        print(f"worker {rank}: {err}", file=sys.stderr, flush=True)
        return 1
    if world > 1:
        log(f"worker {rank}: rendezvous with {world} workers took {time.time() - t0:.2f}s")

    ckpt = os.path.join(args.checkpoint_dir, "digits-ddp.json") if args.checkpoint_dir else ""
    try:
        state = None
        if rank == 0:
            state = load_checkpoint(ckpt)
            if state:
                log(f"resumed from epoch {state['epoch']} (checkpoint {ckpt}, written by {state.get('world_size', '?')} workers)")
            else:
                state = {"epoch": 0, "W": [[0.0] * 64 for _ in range(10)], "b": [0.0] * 10}
        state = group.broadcast(state)
        W, b, first = state["W"], state["b"], state["epoch"] + 1
        current["epoch"] = state["epoch"]
        if rank != 0 and first > 1:
            log(f"worker {rank}: resumed from epoch {state['epoch']}")

        start = time.time()
        for epoch in range(first, args.epochs + 1):
            # The shuffle depends on seed, epoch and rank only, so a resumed
            # run takes the same steps as one that was never stopped.
            order = list(range(len(xtr)))
            random.Random(f"{args.seed}-{epoch}-{rank}").shuffle(order)
            lr = args.lr / (1 + 0.1 * epoch)
            for s in range(steps):
                batch = order[s * local_batch:(s + 1) * local_batch]
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
                flat = [v for row in gW for v in row] + gb + [float(len(batch))]
                tot = group.allreduce_sum(flat)
                n = tot[-1]
                if n == 0:
                    continue
                scale = lr / n
                for k in range(10):
                    b[k] -= scale * tot[640 + k]
                    Wk = W[k]
                    base = 64 * k
                    for j in range(64):
                        Wk[j] -= scale * tot[base + j] + lr * args.l2 * Wk[j]
            loss, correct = eval_sums(W, b, xtr, ytr)
            loss, correct, count = group.allreduce_sum([loss, float(correct), float(len(xtr))])
            if rank == 0:
                if ckpt:
                    save_checkpoint(ckpt, {"epoch": epoch, "W": W, "b": b, "world_size": world})
                log(f"epoch={epoch} loss={loss / count:.4f} accuracy={correct / count:.4f}")
            current["epoch"] = epoch
            if args.epoch_sleep:
                time.sleep(args.epoch_sleep)

        # The held-out rows are evaluated sharded too: the weights are equal everywhere.
        hx, hy = xte[rank::world], yte[rank::world]
        _, correct = eval_sums(W, b, hx, hy)
        correct, count = group.allreduce_sum([float(correct), float(len(hx))])
    except (PeerLost, OSError) as err:  # socket.timeout is an OSError
        print(f"worker {rank}: {err}: stopping", file=sys.stderr, flush=True)
        return 1
    finally:
        group.close()

    test_acc = correct / count
    log(f"worker {rank}: done")
    if rank != 0:
        return 0
    log(f"held-out accuracy: {test_acc:.4f} on {len(xte)} images with {world} worker{'s' if world > 1 else ''} ({time.time() - start:.1f}s)")
    log(f"test_accuracy={test_acc:.4f}")
    if args.model_dir:
        os.makedirs(args.model_dir, exist_ok=True)
        model = {"name": "digits", "kind": "softmax-regression", "inputs": 64, "input_scale": 1.0 / 16.0,
                 "classes": list(range(10)), "W": W, "b": b, "test_accuracy": test_acc,
                 "held_out_rows": te}
        tmp = os.path.join(args.model_dir, ".digits.json.tmp")
        with open(tmp, "w") as f:
            json.dump(model, f)
        os.replace(tmp, os.path.join(args.model_dir, "digits.json"))
        log(f"model written to {os.path.join(args.model_dir, 'digits.json')}")
    if test_acc < args.min_accuracy:
        print(f"held-out accuracy {test_acc:.4f} is below --min-accuracy {args.min_accuracy}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
