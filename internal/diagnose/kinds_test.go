package diagnose

import (
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
)

// Each fault's whole kind, beyond the recorded cases: one saved state per
// variant, the finding it must give, and whether waiting helps.
func TestAnalyzerKinds(t *testing.T) {
	claimPod := func(claim string) string {
		return `
---
apiVersion: v1
kind: Pod
metadata: {name: trainer, namespace: ml}
spec:
  volumes: [{name: data, persistentVolumeClaim: {claimName: ` + claim + `}}]
  containers: [{name: c, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]
status: {phase: Pending}
`
	}
	tests := []struct {
		name      string
		state     string
		target    backend.Ref
		rule      string
		permanent bool
		words     []string
	}{
		{
			name: "claim with storageClassName empty never binds",
			state: `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: ml}
spec: {accessModes: [ReadWriteOnce], storageClassName: "", resources: {requests: {storage: 10Gi}}}
status: {phase: Pending}
---
- {type: Normal, reason: FailedBinding, source: persistentvolume-controller, message: "no persistent volumes available for this claim and no storage class is set"}
` + claimPod("data"),
			target: ref("pod", "trainer"), rule: "pvc-unbound", permanent: true,
			words: []string{"names no storage class", "no storage class is set", "spec.storageClassName"},
		},
		{
			name: "claim naming a class that does not exist",
			state: `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: ml}
spec: {accessModes: [ReadWriteOnce], storageClassName: fast-ssd, resources: {requests: {storage: 10Gi}}}
status: {phase: Pending}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: standard}
provisioner: pd.csi.storage.gke.io
` + claimPod("data"),
			target: ref("pod", "trainer"), rule: "pvc-unbound", permanent: true,
			words: []string{"storage class fast-ssd does not exist"},
		},
		{
			name: "access mode the provisioner cannot give",
			state: `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: ml}
spec: {accessModes: [ReadWriteMany], storageClassName: standard, resources: {requests: {storage: 10Gi}}}
status: {phase: Pending}
---
- {type: Warning, reason: ProvisioningFailed, source: pd.csi.storage.gke.io, message: "failed to provision volume with StorageClass \"standard\": rpc error: code = InvalidArgument desc = VolumeCapabilities is invalid: specified multi writer with mount access type; access mode MULTI_NODE_MULTI_WRITER not supported"}
` + claimPod("data"),
			target: ref("pod", "trainer"), rule: "pvc-unbound", permanent: true,
			words: []string{"access modes [ReadWriteMany]", "ReadWriteMany needs"},
		},
		{
			name: "WaitForFirstConsumer is not the cause",
			state: `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: ml}
spec: {accessModes: [ReadWriteOnce], storageClassName: local, resources: {requests: {storage: 10Gi}}}
status: {phase: Pending}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: local}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
` + claimPod("data"),
			target: ref("pod", "trainer"), rule: "pvc-wait-for-first-consumer", permanent: false,
			words: []string{"WaitForFirstConsumer", "the cause is elsewhere"},
		},
		{
			name: "quota exceeded by one pod alone is permanent",
			state: `
apiVersion: v1
kind: Event
metadata: {name: e, namespace: ml}
involvedObject: {kind: Job, name: big, namespace: ml}
type: Warning
reason: FailedCreate
message: 'Error creating: pods "big-x" is forbidden: exceeded quota: gpu-quota, requested: requests.nvidia.com/gpu=8, used: requests.nvidia.com/gpu=0, limited: requests.nvidia.com/gpu=4'
`,
			target: ref("job", "big"), rule: "quota-exceeded", permanent: true,
			words: []string{"requests.nvidia.com/gpu 8 > hard 4", "will never fit"},
		},
		{
			name: "quota used up by others is passing",
			state: `
apiVersion: v1
kind: Event
metadata: {name: e, namespace: ml}
involvedObject: {kind: ReplicaSet, name: api-5c7d9, namespace: ml}
type: Warning
reason: FailedCreate
message: 'Error creating: pods "api-5c7d9-x" is forbidden: exceeded quota: gpu-quota, requested: requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=4, limited: requests.nvidia.com/gpu=4'
`,
			target: ref("service", "api"), rule: "quota-exceeded", permanent: false,
			words: []string{"used up by other workloads"},
		},
		{
			name: "Job stopped by its deadline",
			state: `
apiVersion: batch/v1
kind: Job
metadata: {name: sweep, namespace: ml}
spec:
  activeDeadlineSeconds: 3600
  template: {spec: {restartPolicy: Never, containers: [{name: c, image: x}]}}
status:
  failed: 1
  conditions: [{type: Failed, status: "True", reason: DeadlineExceeded, message: "Job was active longer than specified deadline"}]
`,
			target: ref("job", "sweep"), rule: "job-deadline-exceeded", permanent: true,
			words: []string{"activeDeadlineSeconds 3600"},
		},
		{
			name: "evicted for memory",
			state: `
apiVersion: v1
kind: Pod
metadata: {name: etl-1, namespace: ml}
spec: {nodeName: n1, containers: [{name: c, image: x}]}
status:
  phase: Failed
  reason: Evicted
  message: "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi. Container c was using 7Gi, request is 1Gi, has larger consumption of memory."
`,
			rule: "pod-evicted", permanent: false, words: []string{"low on resource: memory", "Guaranteed QoS"},
		},
		{
			name: "missing Secret",
			state: `
apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: ml}
spec: {nodeName: n1, containers: [{name: c, image: x}]}
status:
  phase: Pending
  containerStatuses:
  - {name: c, image: x, ready: false, restartCount: 0, state: {waiting: {reason: CreateContainerConfigError, message: "secret \"hf-token\" not found"}}}
`,
			rule: "container-start-error", permanent: true, words: []string{`secret "hf-token" not found`},
		},
		{
			name: "CUDA out of memory in the log",
			state: `
apiVersion: v1
kind: Pod
metadata: {name: ft-0, namespace: ml}
spec: {nodeName: n1, restartPolicy: Never, containers: [{name: c, image: x}]}
status:
  phase: Failed
  containerStatuses:
  - {name: c, image: x, ready: false, restartCount: 0, state: {terminated: {exitCode: 1, reason: Error}}}
---
apiVersion: petrel.dev/v1alpha1
kind: ContainerLog
metadata: {name: ft-0, namespace: ml}
container: c
lines: ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.35 GiB total capacity)"]
`,
			rule: "gpu-out-of-memory", permanent: true, words: []string{"ran out of GPU memory", "batch size"},
		},
		{
			name: "HPA held at maxReplicas",
			state: `
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: llm, namespace: ml}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: llm}
  maxReplicas: 4
status:
  conditions:
  - {type: ScalingLimited, status: "True", reason: TooManyReplicas, message: "the desired replica count is more than the maximum replica count"}
`,
			target: ref("service", "llm"), rule: "hpa-scaling-limited", permanent: false, words: []string{"maxReplicas 4"},
		},
		{
			name: "command not found",
			state: `
apiVersion: v1
kind: Pod
metadata: {name: t-0, namespace: ml}
spec: {nodeName: n1, containers: [{name: c, image: x}]}
status:
  phase: Running
  containerStatuses:
  - {name: c, image: x, ready: false, restartCount: 3, state: {waiting: {reason: CrashLoopBackOff}}, lastState: {terminated: {exitCode: 127, reason: Error}}}
`,
			rule: "container-start-error", permanent: true, words: []string{"command was not found in the image"},
		},
		{
			name: "pod on a NotReady node",
			state: `
apiVersion: v1
kind: Node
metadata: {name: gpu-7}
status:
  conditions: [{type: Ready, status: Unknown, reason: NodeStatusUnknown, message: "Kubelet stopped posting node status.", lastTransitionTime: "2026-11-28T10:00:00Z"}]
---
apiVersion: v1
kind: Pod
metadata: {name: w-0}
spec: {nodeName: gpu-7, containers: [{name: c, image: x}]}
status: {phase: Running}
`,
			rule: "node-not-ready", permanent: false, words: []string{"not Ready", "Kubelet stopped posting node status"},
		},
		{
			name: "rollout stuck",
			state: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: llm}
spec:
  selector: {matchLabels: {app: llm}}
  template: {metadata: {labels: {app: llm}}, spec: {containers: [{name: c, image: x}]}}
status:
  replicas: 2
  updatedReplicas: 1
  readyReplicas: 1
  unavailableReplicas: 1
  conditions:
  - {type: Progressing, status: "False", reason: ProgressDeadlineExceeded, message: "ReplicaSet \"llm-7d9f\" has timed out progressing."}
`,
			target: ref("service", "llm"), rule: "rollout-stuck", permanent: false, words: []string{"progressDeadlineSeconds", "has timed out progressing"},
		},
		{
			name: "unknown named job",
			state: `
apiVersion: v1
kind: Pod
metadata: {name: other}
spec: {containers: [{name: c, image: x}]}
`,
			target: ref("job", "ghost"), rule: "not-found", permanent: false, words: []string{"Job/ghost is not in the given state"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hasFinding(t, Analyze(loadString(t, tc.state), tc.target), tc.rule, tc.permanent, tc.words...)
		})
	}
}

// Every rule ID a finding can carry is in the catalogue, so --list and the
// README cover what diagnose says.
func TestCatalogueIsComplete(t *testing.T) {
	ids := map[string]bool{}
	for _, a := range Analyzers() {
		if a.Name == "" || a.Description == "" || a.Run == nil || len(a.Rules) == 0 {
			t.Errorf("analyser %+v lacks name, description, rules or run", a.Name)
		}
		for _, r := range a.Rules {
			if ids[r.ID] {
				t.Errorf("rule %s registered twice", r.ID)
			}
			ids[r.ID] = true
		}
	}
	for _, tc := range cases {
		if !ids[tc.rule] {
			t.Errorf("rule %s is not in the catalogue", tc.rule)
		}
	}
	for _, c := range corpus {
		if !ids[c.rule] {
			t.Errorf("rule %s is not in the catalogue", c.rule)
		}
	}
}
