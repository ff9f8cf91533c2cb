package diagnose

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	register(Analyzer{
		Name:        "evicted",
		Description: "Reports pods the kubelet evicted under node pressure (status.reason Evicted), with the resource that ran short.",
		Rules:       []Rule{{"pod-evicted", "The kubelet evicted the pod because its node ran short of memory or disk."}},
		Run:         runEvicted,
	})
}

func runEvicted(c *Context) []backend.Finding {
	var out []backend.Finding
	for _, p := range c.Pods() {
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "Evicted" {
			continue
		}
		fix := "Set requests close to the real use so the scheduler places the pod where it fits; the kubelet evicts pods that use more than they request first."
		switch m := p.Status.Message; {
		case strings.Contains(m, "ephemeral-storage") || strings.Contains(m, "DiskPressure"):
			fix = "Set resources.requests/limits.ephemeral-storage, and write checkpoints and datasets to a volume instead of the container's filesystem."
		case strings.Contains(m, "memory"):
			fix = "Set the memory request to the real peak use (Guaranteed QoS: request = limit) so the pod lands on a node with room and is evicted last."
		}
		out = append(out, backend.Finding{
			RuleID: "pod-evicted", Severity: backend.SeverityWarning, Object: podObject(p),
			Message:  fmt.Sprintf("Pod %s was evicted from node %s: %s", p.Name, p.Spec.NodeName, strings.TrimSpace(p.Status.Message)),
			Evidence: []string{fmt.Sprintf("status.phase Failed, status.reason Evicted, status.message %q", p.Status.Message)},
			Fix:      fix,
		})
	}
	return out
}
