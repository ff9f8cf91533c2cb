package diagnose

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	register(Analyzer{
		Name:        "nodes",
		Description: "Reports pods bound to a node that is not Ready (its kubelet stopped reporting: the pod's status is stale and it will be evicted) or under memory/disk/PID pressure.",
		Rules: []Rule{
			{"node-not-ready", "A pod's node is NotReady or Unknown: its containers may not run and its status is stale."},
			{"node-pressure", "A pod's node reports memory, disk or PID pressure: pods may be evicted."},
		},
		Run: runNodes,
	})
}

func runNodes(c *Context) []backend.Finding {
	var out []backend.Finding
	for _, p := range c.Pods() {
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		n := c.Node(p.Spec.NodeName)
		if n == nil {
			continue
		}
		for _, cond := range n.Status.Conditions {
			q := fmt.Sprintf("node %s: status.conditions[%s]: %s, reason %s, message %q, since %s", n.Name, cond.Type, cond.Status, cond.Reason, cond.Message, cond.LastTransitionTime.UTC().Format("2006-01-02T15:04:05Z"))
			switch {
			case cond.Type == corev1.NodeReady && cond.Status != corev1.ConditionTrue:
				out = append(out, backend.Finding{
					RuleID: "node-not-ready", Severity: backend.SeverityError, Object: podObject(p), Evidence: []string{q},
					Message: fmt.Sprintf("Pod %s runs on node %s, which is not Ready: its kubelet stopped reporting, so the pod's status is stale and it will be evicted.", p.Name, n.Name),
					Fix:     "Check the node (kubelet, network, GPU driver hangs); the pod is evicted after the not-ready toleration (300 s by default), or drain the node to move it now.",
				})
			case (cond.Type == corev1.NodeMemoryPressure || cond.Type == corev1.NodeDiskPressure || cond.Type == corev1.NodePIDPressure) && cond.Status == corev1.ConditionTrue:
				out = append(out, backend.Finding{
					RuleID: "node-pressure", Severity: backend.SeverityWarning, Object: podObject(p), Evidence: []string{q},
					Message: fmt.Sprintf("Pod %s runs on node %s, which reports %s: the kubelet evicts pods that use more than they request first.", p.Name, n.Name, cond.Type),
					Fix:     "Set requests to the real use (memory, ephemeral-storage) so the pod is not the first evicted, and free the node's disk or memory.",
				})
			}
		}
	}
	return out
}
