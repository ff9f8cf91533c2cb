#!/usr/bin/env bash
# Starts a test cluster by hand, for debugging, the way test/cluster does:
#   hack/cluster/up.sh [NAME] [NODES] [GPU_NODES] [GPUS_PER_NODE]
# (defaults: petrel-dev, 1 plain node, 2 GPU nodes with 8 nvidia.com/gpu each,
# tainted nvidia.com/gpu=present:NoSchedule). It builds missing binaries,
# prints the kubeconfig path, and leaves the cluster running; delete it with
#   hack/cluster/up.sh --delete [NAME]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/build.sh"
bin="${PETREL_CLUSTER_BIN:-${XDG_CACHE_HOME:-${HOME:-${TMPDIR:-/tmp}}/.cache}/petrel/cluster-bin/v1.37.2}"

delete=false
if [[ "${1:-}" == "--delete" ]]; then delete=true; shift; fi
name="${1:-petrel-dev}" nodes="${2:-1}" gpu_nodes="${3:-2}" gpus="${4:-8}"
export KWOK_WORKDIR="${TMPDIR:-/tmp}/petrel-kwok/$name"
export KWOK_KUBE_VERSION=v1.37.2 KWOK_ETCD_VERSION=3.7.0 KWOK_KUBECTL_BINARY="$bin/kubectl"
if $delete; then
  "$bin/kwokctl" --name "$name" delete cluster
  rm -rf "$KWOK_WORKDIR"
  exit 0
fi

mkdir -p "$KWOK_WORKDIR"
stages="$KWOK_WORKDIR/stages.yaml"
for f in "$here"/stages/*.yaml; do echo "---"; cat "$f"; done >"$stages"
"$bin/kwokctl" --name "$name" create cluster --runtime binary \
  --kube-apiserver-binary "$bin/kube-apiserver" \
  --kube-controller-manager-binary "$bin/kube-controller-manager" \
  --kube-scheduler-binary "$bin/kube-scheduler" \
  --etcd-binary "$bin/etcd" \
  --kwok-controller-binary "$bin/kwok" \
  --config "$stages" --wait 2m
kubeconfig="$KWOK_WORKDIR/clusters/$name/kubeconfig.yaml"

node() { # name gpus: a Node that kwok manages, as test/cluster makes them
  local labels="kubernetes.io/hostname: $1, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok"
  local taints="[]" res='cpu: "32", memory: 256Gi, pods: "110"'
  if (($2 > 0)); then
    labels+=', nvidia.com/gpu.present: "true"'
    taints="[{key: nvidia.com/gpu, value: present, effect: NoSchedule}]"
    res+=", nvidia.com/gpu: \"$2\""
  fi
  cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: $1
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {$labels}
spec:
  taints: $taints
status:
  allocatable: {$res}
  capacity: {$res}
YAML
}
{ for ((i = 0; i < nodes; i++)); do node "kwok-node-$i" 0; done
  for ((i = nodes; i < nodes + gpu_nodes; i++)); do node "kwok-node-$i" "$gpus"; done
} | "$bin/kubectl" --kubeconfig "$kubeconfig" create -f -
echo
echo "cluster $name is up; component logs are in $KWOK_WORKDIR/clusters/$name/logs"
echo "  export KUBECONFIG=$kubeconfig"
echo "  $bin/kubectl get nodes"
