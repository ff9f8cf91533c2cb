#!/usr/bin/env bash
# Re-measures, in one run, every figure the README gives, each next to its
# anchor (exec of `true`, direct requests, a client-go loop, kubectl), and
# writes the raw `go test -bench` output under bench/out/ (git-ignored) for
# the README tables. Run from the repository root:
#
#   bash bench/figures.sh            # local figures (a few minutes)
#   bash bench/figures.sh --kube     # also the Kubernetes ones (~60 min,
#                                    # needs the test cluster's binaries)
#
# The machine's load average is recorded with each group: on a shared
# machine wall times vary several-fold, so quote ranges, not one run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
run() {
	local name=$1
	shift
	echo "== $name: $*" | tee -a "$out/summary.txt"
	uptime | tee -a "$out/summary.txt"
	"$@" 2>&1 | tee "$out/$name.txt" | grep -E '^(Benchmark|ok|FAIL|---)' | tee -a "$out/summary.txt"
}

go build -o "$out/petrel" ./cmd/petrel
echo "petrel binary: $(du -h "$out/petrel" | cut -f1)" | tee -a "$out/summary.txt"

# Spec parsing and lint (README "Speed" under lint): 1k, then 1k/4k/16k.
run lint go test -run '^$' -bench 'Lint1000|LintScale' -benchtime 3x -count 2 ./internal/lint/
# `petrel train` of `true` against exec of `true` (README "Benchmarks").
run train go test -run '^$' -bench TrainTrue -benchtime 30x ./test/e2e/
run engine go test -run '^$' -bench EngineTrue -benchtime 30x ./internal/engine/
# The local load balancer against direct requests (README "Load balancer overhead").
run serving go test -run '^$' -bench LoadBalancerOverhead -benchtime 8000x ./internal/serving/
# `petrel lb` (its own process, as the engine runs it) against haproxy
# (Debian's package; skipped without it) and direct (README "Load balancer
# overhead").
run balancers go test -run '^$' -bench Balancers -benchtime 1x ./bench/serving/
# diagnose over 1,000 and 5,000 pods.
run diagnose go test -run '^$' -bench Analyze ./internal/diagnose/
# Process start and the server's idle memory.
start=$(date +%s%N)
for _ in 1 2 3 4 5; do "$out/petrel" version >/dev/null; done
echo "petrel version: $(( ($(date +%s%N) - start) / 5000000 )) ms per process" | tee -a "$out/summary.txt"
home=$(mktemp -d /tmp/pf-XXXX)
PETREL_HOME=$home "$out/petrel" server status >/dev/null 2>&1 || true
PETREL_HOME=$home "$out/petrel" get jobs >/dev/null 2>&1
pid=$(PETREL_HOME=$home "$out/petrel" server status | awk '/pid:/ {print $2}')
sleep 2
echo "petrel server idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/"$pid"/status)" | tee -a "$out/summary.txt"
PETREL_HOME=$home "$out/petrel" server stop
rm -rf "$home"

if [[ ${1:-} == --kube ]]; then
	# 1,000 submissions against a client-go loop (with and without client
	# rate limits) and kubectl, and `get jobs` over 10,000 next to `kubectl
	# get jobs` (README "Benchmarks (bench/kube)"). Set PETREL_BIN_BASELINE
	# to another petrel build to time its `get jobs` in the same run.
	PETREL_BIN=$PWD/$out/petrel PETREL_BIN_BASELINE=${PETREL_BIN_BASELINE:-} \
		run kube go test ./bench/kube -run '^$' -bench . -benchtime 3x -timeout 60m -v
	run cluster go test -run '^$' -bench StartDelete -benchtime 3x ./test/cluster/
fi
echo "results: $out/summary.txt"
