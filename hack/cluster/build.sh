#!/usr/bin/env bash
# Builds the binaries of petrel's test cluster from the Go module proxy into a
# cache, skipping each one that is already built from the same pinned sources:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#     (k8s.io/kubernetes v1.37.2),
#   etcd (go.etcd.io/etcd/server/v3 v3.7.0, ./cmd/etcd),
#   kwok, kwokctl (sigs.k8s.io/kwok v0.8.0),
# all from the module in this directory (go.mod), which keeps them out of
# petrel's own module graph. kwokctl runs kubectl to tell when the API server
# serves.
#
# The cache is $PETREL_CLUSTER_BIN, by default
# ${XDG_CACHE_HOME:-$HOME/.cache}/petrel/cluster-bin/v1.37.2. Each binary has a
# stamp file (.NAME.stamp) holding the hash of this module's go.mod, go.sum,
# Go files, the Go version and the build flags; a binary whose stamp does not
# match is rebuilt.
# A cold build takes a long while (see the README's "Test cluster"); a warm
# one well under a second.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${PETREL_CLUSTER_BIN:-${XDG_CACHE_HOME:-${HOME:-${TMPDIR:-/tmp}}/.cache}/petrel/cluster-bin/v1.37.2}"
mkdir -p "$bin"

export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOWORK=off
flags=(-trimpath "-ldflags=-s -w")

# name package
targets=(
  "kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler"
  "etcd ./cmd/etcd"
  "kwok sigs.k8s.io/kwok/cmd/kwok"
  "kwokctl sigs.k8s.io/kwok/cmd/kwokctl"
  "kubectl k8s.io/kubernetes/cmd/kubectl"
)

# The hash of the inputs that decide what gets built.
k="$({ cat "$here/go.mod" "$here/go.sum" $(find "$here" -name '*.go' | sort)
  echo "${flags[*]} $CGO_ENABLED $(go env GOVERSION GOOS GOARCH)"; } | sha256sum | cut -d' ' -f1)"

start=$(date +%s)
built=0
for t in "${targets[@]}"; do
  read -r name pkg <<<"$t"
  stamp="$bin/.$name.stamp"
  if [[ -x "$bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$k" ]]; then
    continue
  fi
  t0=$(date +%s)
  echo "cluster: building $name into $bin" >&2
  (cd "$here" && go build "${flags[@]}" -o "$bin/.$name.tmp" "$pkg")
  mv -f "$bin/.$name.tmp" "$bin/$name"
  echo "$k" >"$stamp"
  echo "cluster: built $name in $(( $(date +%s) - t0 ))s" >&2
  built=$((built + 1))
done
echo "cluster: built $built of ${#targets[@]} binaries in $(( $(date +%s) - start ))s; all are in $bin" >&2
