#!/usr/bin/env bash
# Builds the binaries of petrel's test cluster from the Go module proxy into a
# cache, skipping each one that is already built from the same pinned sources:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#     (k8s.io/kubernetes v1.37.2, module ./k8s),
#   etcd (go.etcd.io/etcd/server/v3 v3.7.0, module ./k8s),
#   kwok, kwokctl (sigs.k8s.io/kwok v0.8.0, module ./kwok).
# kwokctl needs kubectl to tell when the API server serves.
#
# The cache is $PETREL_CLUSTER_BIN, by default
# ${XDG_CACHE_HOME:-$HOME/.cache}/petrel/cluster-bin/v1.37.2. Each binary has a
# stamp file (.NAME.stamp) holding the hash of its module's go.mod, go.sum,
# Go files and build flags; a binary whose stamp does not match is rebuilt.
# A cold build takes about 15 minutes on 2 cores; a warm one well under a second.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${PETREL_CLUSTER_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/petrel/cluster-bin/v1.37.2}"
mkdir -p "$bin"

export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOWORK=off
flags=(-trimpath "-ldflags=-s -w")

# name module-dir package
targets=(
  "kube-apiserver k8s k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager k8s k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler k8s k8s.io/kubernetes/cmd/kube-scheduler"
  "etcd k8s ./cmd/etcd"
  "kwok kwok sigs.k8s.io/kwok/cmd/kwok"
  "kwokctl kwok sigs.k8s.io/kwok/cmd/kwokctl"
  "kubectl k8s k8s.io/kubernetes/cmd/kubectl"
)

key() { # module-dir -> hash of the inputs that decide what gets built
  { cat "$here/$1/go.mod" "$here/$1/go.sum" $(find "$here/$1" -name '*.go' | sort)
    echo "${flags[*]} $CGO_ENABLED $(go env GOVERSION GOOS GOARCH)"; } | sha256sum | cut -d' ' -f1
}

start=$(date +%s)
built=0
for t in "${targets[@]}"; do
  read -r name dir pkg <<<"$t"
  k="$(key "$dir")"
  stamp="$bin/.$name.stamp"
  if [[ -x "$bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$k" ]]; then
    continue
  fi
  t0=$(date +%s)
  echo "cluster: building $name into $bin" >&2
  (cd "$here/$dir" && go build "${flags[@]}" -o "$bin/.$name.tmp" "$pkg")
  mv -f "$bin/.$name.tmp" "$bin/$name"
  echo "$k" >"$stamp"
  echo "cluster: built $name in $(( $(date +%s) - t0 ))s" >&2
  built=$((built + 1))
done
echo "cluster: built $built of ${#targets[@]} binaries in $(( $(date +%s) - start ))s; all are in $bin" >&2
