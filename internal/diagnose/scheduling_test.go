package diagnose

import (
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
)

func loadString(t *testing.T, y string) *State {
	t.Helper()
	s, warnings, err := Load(strings.NewReader(y), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Fatalf("warnings: %q", warnings)
	}
	return s
}

const gpuNode = `
apiVersion: v1
kind: Node
metadata: {name: gpu-1}
spec:
  taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
status:
  allocatable: {cpu: "16", memory: 64Gi, nvidia.com/gpu: "1"}
---
apiVersion: v1
kind: Node
metadata: {name: cpu-1}
status:
  allocatable: {cpu: "16", memory: 64Gi}
`

func gpuPod(name, node string, tolerate bool, phase string) string {
	tol := ""
	if tolerate {
		tol = "\n  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]"
	}
	nodeName := ""
	if node != "" {
		nodeName = "\n  nodeName: " + node
	}
	return `
---
apiVersion: v1
kind: Pod
metadata: {name: ` + name + `}
spec:` + tol + nodeName + `
  containers: [{name: c, image: busybox, resources: {limits: {nvidia.com/gpu: 1}}}]
status: {phase: ` + phase + `}
`
}

func scheduleEvent(pod, msg string) string {
	return `
---
apiVersion: v1
kind: Event
metadata: {name: ` + pod + `.1}
involvedObject: {kind: Pod, name: ` + pod + `}
type: Warning
reason: FailedScheduling
message: "` + msg + `"
`
}

func TestSchedulingTellsBusyFromNever(t *testing.T) {
	tests := []struct {
		name      string
		state     string
		rule      string
		permanent bool
		words     []string
		absent    string
	}{
		{
			name: "all GPUs busy is passing",
			state: gpuNode + gpuPod("holder", "gpu-1", true, "Running") + gpuPod("waiter", "", true, "Pending") +
				scheduleEvent("waiter", "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."),
			rule: "gpu-busy", words: []string{"all GPUs are busy right now", "node gpu-1: 1 of 1 nvidia.com/gpu requested"},
			absent: "gpu-request-exceeds-nodes",
		},
		{
			name: "the free GPU node is tainted: a taint, not busy",
			state: gpuNode + gpuPod("waiter", "", false, "Pending") +
				scheduleEvent("waiter", "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint {nvidia.com/gpu: present}."),
			rule: "untolerated-taint", permanent: true, words: []string{"requests a GPU but does not tolerate", "nvidia.com/gpu=present:NoSchedule"},
			absent: "gpu-busy",
		},
		{
			name: "taint found from the nodes when the event only says Insufficient",
			state: gpuNode + gpuPod("waiter", "", false, "Pending") +
				scheduleEvent("waiter", "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."),
			rule: "untolerated-taint", permanent: true, words: []string{"nvidia.com/gpu=present:NoSchedule"},
			absent: "gpu-busy",
		},
		{
			name: "CPU request larger than any node",
			state: gpuNode + `
---
apiVersion: v1
kind: Pod
metadata: {name: big}
spec:
  containers: [{name: c, image: busybox, resources: {requests: {cpu: "64"}}}]
status: {phase: Pending}
` + scheduleEvent("big", "0/2 nodes are available: 2 Insufficient cpu."),
			rule: "resource-request-exceeds-nodes", permanent: true, words: []string{"asks for 64 cpu but the largest node has 16"},
		},
		{
			name:  "no nodes saved: cannot tell",
			state: gpuPod("waiter", "", true, "Pending") + scheduleEvent("waiter", "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."),
			rule:  "gpu-insufficient", words: []string{"cannot tell", "kubectl get nodes -o yaml"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Analyze(loadString(t, tc.state), backend.Ref{})
			hasFinding(t, got, tc.rule, tc.permanent, tc.words...)
			for _, f := range got {
				if tc.absent != "" && f.RuleID == tc.absent {
					t.Errorf("unexpected %s:\n%s", tc.absent, dump(got))
				}
			}
		})
	}
}

func TestImagePullClassification(t *testing.T) {
	pod := func(msg string) string {
		return `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  nodeName: n1
  containers: [{name: c, image: registry.example.com/team/model:v2}]
status:
  phase: Pending
  containerStatuses:
  - name: c
    image: registry.example.com/team/model:v2
    ready: false
    restartCount: 0
    state: {waiting: {reason: ImagePullBackOff, message: 'Back-off pulling image "registry.example.com/team/model:v2": ` + msg + `'}}
`
	}
	tests := []struct {
		msg, rule string
		permanent bool
	}{
		{`ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image "registry.example.com/team/model:v2": registry.example.com/team/model:v2: not found`, "image-not-found", true},
		{`failed to authorize: failed to fetch oauth token: unexpected status from GET request: 401 Unauthorized`, "image-pull-unauthorized", true},
		{`failed to do request: Head "https://registry.example.com/v2/team/model/manifests/v2": dial tcp: lookup registry.example.com: no such host`, "registry-unreachable", false},
		{`toomanyrequests: You have reached your pull rate limit`, "image-pull-rate-limited", false},
	}
	for _, tc := range tests {
		t.Run(tc.rule, func(t *testing.T) {
			got := Analyze(loadString(t, pod(tc.msg)), backend.Ref{Kind: "pod", Name: "p"})
			hasFinding(t, got, tc.rule, tc.permanent, "registry.example.com/team/model:v2")
		})
	}
}

func TestLoadForms(t *testing.T) {
	t.Run("JSON List with events.k8s.io events", func(t *testing.T) {
		s := loadString(t, `{"apiVersion":"v1","kind":"List","items":[
			{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"ns"},"spec":{"containers":[{"name":"c","image":"x"}]}},
			{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"e","namespace":"ns"},"regarding":{"kind":"Pod","name":"p","namespace":"ns"},
			 "reason":"FailedScheduling","note":"0/1 nodes are available: 1 Insufficient nvidia.com/gpu.","type":"Warning","eventTime":"2026-11-28T10:00:00.000000Z","reportingController":"default-scheduler","reportingInstance":"s","action":"Scheduling"}]}`)
		if len(s.Pods) != 1 || len(s.Events) != 1 || s.Events[0].InvolvedObject.Name != "p" || s.Events[0].Message == "" {
			t.Fatalf("state = %+v", s)
		}
	})
	t.Run("snippets: kindless node and events after their object", func(t *testing.T) {
		s := loadString(t, `
status:
  allocatable: {nvidia.com/gpu: "1"}
---
apiVersion: batch/v1
kind: Job
metadata: {name: j, namespace: ml}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: x}]}}}
---
- {type: Warning, reason: FailedCreate, source: job-controller, message: "quota"}
`)
		if len(s.Nodes) != 1 || s.Nodes[0].Name == "" {
			t.Errorf("nodes = %+v", s.Nodes)
		}
		if len(s.Events) != 1 || s.Events[0].InvolvedObject.Kind != "Job" || s.Events[0].InvolvedObject.Name != "j" || s.Events[0].Source.Component != "job-controller" {
			t.Errorf("events = %+v", s.Events)
		}
	})
	t.Run("bad YAML is an error naming the document", func(t *testing.T) {
		_, _, err := Load(strings.NewReader("apiVersion: v1\nkind: Pod\n---\nmetadata: {name: [\n"), "dump.yaml")
		if err == nil || !strings.Contains(err.Error(), "dump.yaml: document 2") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("a wrongly typed field is an error with the fix", func(t *testing.T) {
		_, _, err := Load(strings.NewReader("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: 3}\n"), "dump.yaml")
		if err == nil || !strings.Contains(err.Error(), "Pod p") || !strings.Contains(err.Error(), "kubectl get") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("unknown kinds and scalars are skipped with a warning", func(t *testing.T) {
		_, warnings, err := Load(strings.NewReader("apiVersion: x.io/v1\nkind: Thing\nmetadata: {name: t}\n---\njust text\n---\n{foo: 1}\n"), "d.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if len(warnings) != 3 || !strings.Contains(warnings[0], "kind Thing") || !strings.Contains(warnings[2], "add apiVersion and kind") {
			t.Fatalf("warnings = %q", warnings)
		}
	})
}
