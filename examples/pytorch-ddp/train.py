"""Data-parallel training with PyTorch DDP, launched by torchrun.

torchrun reads its flags' defaults from the PET_* variables petrel sets on
both targets (PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK,
PET_MASTER_ADDR, PET_MASTER_PORT), so the spec runs `torchrun train.py`
with no rendezvous flags. NCCL on GPUs, gloo on CPU.

Rank 0 writes a checkpoint to $PETREL_CHECKPOINT_DIR every epoch (a volume,
so it outlives attempts); every rank resumes from it on start, so a
preempted job (`petrel preempt job pytorch-ddp`) goes on where it was.
Metrics are printed by rank 0 as `epoch=N loss=X accuracy=Y samples_per_sec=Z`.
"""
import argparse
import csv
import os
import random
import time

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def load(path, seed):
    xs, ys = [], []
    with open(path) as f:
        for row in csv.reader(f):
            if not row or not row[0].strip().lstrip("-").isdigit():
                continue  # a header
            xs.append([float(v) / 16.0 for v in row[:-1]])
            ys.append(int(row[-1]))
    # The same split as examples/digits: a seeded shuffle, 20 % held out.
    idx = list(range(len(ys)))
    random.Random(seed).shuffle(idx)
    cut = int(len(idx) * 0.8)
    x, y = torch.tensor(xs), torch.tensor(ys)
    tr, te = torch.tensor(idx[:cut]), torch.tensor(idx[cut:])
    return TensorDataset(x[tr], y[tr]), TensorDataset(x[te], y[te])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--epoch-sleep", type=float, default=0.0, help="seconds to sleep per epoch (to have time to preempt in a demo)")
    a = p.parse_args()

    cuda = torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)

    train, test = load(a.data, a.seed)
    sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=a.seed)
    loader = DataLoader(train, batch_size=a.batch_size, sampler=sampler)
    torch.manual_seed(a.seed)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).to(dev)
    ddp = DDP(model, device_ids=[local] if cuda else None)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    ckdir = os.environ.get("PETREL_CHECKPOINT_DIR", "")
    ckpt = os.path.join(ckdir, "ckpt.pt") if ckdir else ""
    start = 0
    if ckpt and os.path.exists(ckpt):
        state = torch.load(ckpt, map_location=dev)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["epoch"]
        if rank == 0:
            print(f"resumed from epoch {start}", flush=True)

    tx, ty = test.tensors
    for epoch in range(start, a.epochs):
        sampler.set_epoch(epoch)
        t0, seen, total = time.time(), 0, 0.0
        ddp.train()
        for x, y in loader:
            x, y = x.to(dev), y.to(dev)
            opt.zero_grad()
            loss = loss_fn(ddp(x), y)
            loss.backward()
            opt.step()
            seen += len(y)
            total += loss.item() * len(y)
        stats = torch.tensor([seen, total], device=dev)
        dist.all_reduce(stats)
        rate = stats[0].item() / max(time.time() - t0, 1e-9)
        if a.epoch_sleep:
            time.sleep(a.epoch_sleep)
        if rank == 0:
            with torch.no_grad():
                acc = (model(tx.to(dev)).argmax(1).cpu() == ty).float().mean().item()
            if ckpt:
                tmp = ckpt + ".tmp"
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1}, tmp)
                os.replace(tmp, ckpt)  # a preemption never leaves half a checkpoint
            print(f"epoch={epoch + 1} loss={stats[1].item() / stats[0].item():.4f} accuracy={acc:.4f} samples_per_sec={rate:.0f}", flush=True)
        dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
