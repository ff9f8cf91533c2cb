package diagnose

import (
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
)

// A target's scope holds its own pods and events, not those of a workload
// whose name merely starts with the same word.
func TestScopeKeepsSimilarNamesApart(t *testing.T) {
	crashing := func(name, owner, ownerKind string) string {
		return `
---
apiVersion: v1
kind: Pod
metadata:
  name: ` + name + `
  ownerReferences: [{apiVersion: v1, kind: ` + ownerKind + `, name: ` + owner + `, uid: "1"}]
spec: {nodeName: n1, containers: [{name: c, image: x}]}
status:
  phase: Running
  containerStatuses:
  - {name: c, image: x, ready: false, restartCount: 3, state: {waiting: {reason: CrashLoopBackOff}}, lastState: {terminated: {exitCode: 1, reason: Error}}}
`
	}
	s := loadString(t, crashing("api-5c7d9-abcde", "api-5c7d9", "ReplicaSet")+
		crashing("api-gateway-7f8e6-xyz12", "api-gateway-7f8e6", "ReplicaSet")+
		crashing("train-q8r2d", "train", "Job")+
		crashing("train-large-k2j4h", "train-large", "Job"))
	tests := []struct {
		target backend.Ref
		want   string
	}{
		{backend.Ref{Kind: "service", Name: "api"}, "Pod/api-5c7d9-abcde"},
		{backend.Ref{Kind: "service", Name: "api-gateway"}, "Pod/api-gateway-7f8e6-xyz12"},
		{backend.Ref{Kind: "job", Name: "train"}, "Pod/train-q8r2d"},
		{backend.Ref{Kind: "job", Name: "train-large"}, "Pod/train-large-k2j4h"},
	}
	for _, tc := range tests {
		got := Analyze(s, tc.target)
		if len(got) != 1 || got[0].Object != tc.want {
			t.Errorf("%s/%s: want one finding about %s, got:\n%s", tc.target.Kind, tc.target.Name, tc.want, dump(got))
		}
	}
}

// TestHPAAndClaimTargets: hpa/NAME diagnoses the HPA with its scale
// target; pvc/NAME the claim with the pods that mount it; an unknown name
// of either kind is reported as not found.
func TestHPAAndClaimTargets(t *testing.T) {
	hpa := loadCase(t, "C09.yaml")
	hasFinding(t, Analyze(hpa, ref("hpa", "tf-model")), "hpa-metrics-unavailable", true, "tfserving")
	hasFinding(t, Analyze(hpa, ref("horizontalpodautoscaler", "nope")), "not-found", false, "HorizontalPodAutoscaler/nope")

	claim := loadCase(t, "C15.yaml")
	got := Analyze(claim, ref("pvc", "task-pv-claim"))
	hasFinding(t, got, "volume-multi-attach", true, "model-store-pod")
	hasFinding(t, Analyze(claim, ref("pvc", "other")), "not-found", false, "PersistentVolumeClaim/other")
}
