#!/usr/bin/env bash
# Runs petrel's whole test suite on a fresh machine: installs what the tests
# need from the project's own files, builds the Kubernetes control-plane
# binaries into a cache when they are missing, then runs every Go test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python 3 runs the example workloads (standard library only).
if ! command -v python3 >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3 >/dev/null
fi

# Headless Chromium drives the dashboard's browser tests (internal/ui).
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# The test cluster's binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd, kwok, kwokctl, kubectl), built from the Go module proxy
# into a cache; seconds when they are already there. See hack/cluster/build.sh.
bash hack/cluster/build.sh

go vet ./...
go test -count=1 -timeout 40m ./...
