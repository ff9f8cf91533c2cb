#!/usr/bin/env bash
# Measures examples/pytorch-ddp on the local engine: 1 worker, 2 workers
# (gloo on CPU), and 2 workers preempted in the middle of training, then
# prints samples/s, final accuracy and the time from the preemption to the
# resumed training's first epoch. With a GPU (nvidia-smi), it also runs 1
# worker on 1 GPU (NCCL). Each run has its own PETREL_HOME under a temporary
# folder, so nothing of the user's is touched.
#
#   examples/pytorch-ddp/measure.sh [path/to/petrel]
#
# Needs torchrun on PATH whose Python has torch (torchrun starts the workers
# with its own interpreter), and python3 for the timestamps and the summary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
petrel=${1:-petrel}
petrel=$(command -v "$petrel" || echo "$petrel")
work=$(mktemp -d)
# KEEP=1 keeps the logs and homes (their folder is printed at the end).
trap 'for h in "$work"/home-*; do PETREL_HOME=$h "$petrel" server stop >/dev/null 2>&1 || true; done; if [ -n "${KEEP:-}" ]; then echo "logs in $work" >&2; else rm -rf "$work"; fi' EXIT

# spec NAME NODES GPUS EPOCHS SLEEP: the example's spec with absolute paths,
# its worker count, GPUs per worker and epochs changed.
spec() {
	local f=$work/$1.yaml
	sed -e "s|source: ../digits/data|source: $here/../digits/data|" \
		-e "s|^  numNodes: .*|  numNodes: $2|" \
		-e "s|\"--epochs\", \"20\"|\"--epochs\", \"$4\", \"--epoch-sleep\", \"$5\"|" \
		-e "s|--epochs, \"20\"|--epochs, \"$4\", --epoch-sleep, \"$5\"|" \
		"$here/train.yaml" >"$f"
	# workingDir: the script's folder, absolute (a relative one is relative to the spec).
	sed -i "s|^  command: \[torchrun, train.py\]|  workingDir: $here\n  command: [torchrun, train.py]|" "$f"
	if [ "$3" != 0 ]; then
		sed -i "s|^    cpu: \"2\"|    cpu: \"2\"\n    gpu: $3|" "$f"
	fi
	echo "$f"
}

# stamp: each line of stdin prefixed with seconds since the epoch.
stamp() { python3 -u -c 'import sys,time
for l in sys.stdin: sys.stdout.write(f"{time.time():.3f} {l}")'; }

# run NAME NODES GPUS EPOCHS SLEEP [PREEMPT_AT_EPOCH]
run() {
	local name=$1 f log home
	f=$(spec "$@")
	log=$work/$name.log
	home=$work/home-$name
	echo "== $name: $2 worker(s), $3 GPU(s) per worker, $4 epochs" >&2
	PETREL_HOME=$home "$petrel" train -f "$f" 2>&1 | stamp | tee "$log" | while read -r t line; do
		if [ -n "${6:-}" ] && [[ $line == *"[worker 0] epoch=$6 "* ]]; then
			echo "$(date +%s.%3N) PREEMPT" >>"$log.preempt"
			PETREL_HOME=$home "$petrel" preempt job pytorch-ddp >&2
		fi
	done
	python3 - "$log" "$name" <<'EOF'
import re, sys
log, name = sys.argv[1], sys.argv[2]
lines = [l.split(" ", 1) for l in open(log)]
epochs = [(float(t), l) for t, l in lines if "samples_per_sec=" in l]
rates = [float(re.search(r"samples_per_sec=(\d+)", l).group(1)) for _, l in epochs]
rates = rates[1:] or rates  # the first epoch includes the rendezvous and warm-up
acc = re.search(r"accuracy=([\d.]+)", epochs[-1][1]).group(1)
out = f"{name}: median {sorted(rates)[len(rates) // 2]:.0f} samples/s, final accuracy {acc}"
try:
    pre = float(open(log + ".preempt").read().split()[0])
    res = [(float(t), l) for t, l in lines if "resumed from epoch" in l]
    after = [t for t, _ in epochs if t > pre]
    done = [float(t) for t, l in lines if "completed in" in l]
    out += f"; preempted at {pre:.3f}, {res[0][1].split('] ')[-1].strip()} {res[0][0] - pre:.1f} s later"
    out += f", first epoch after it {after[0] - pre:.1f} s later, completed {done[0] - pre:.1f} s later"
except FileNotFoundError:
    pass
status = [l.strip() for _, l in lines if "completed in" in l or "failed in" in l]
print(out + "; " + (status[-1] if status else "no final status"))
EOF
}

run cpu-1-worker 1 0 20 0
run cpu-2-workers 2 0 20 0
run cpu-2-workers-preempted 2 0 20 0.5 8
if command -v nvidia-smi >/dev/null 2>&1; then
	run gpu-1-worker 1 1 20 0
fi
