package diagnose

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	register(Analyzer{
		Name: "oom",
		Description: "Reports containers the kernel killed for exceeding their memory limit " +
			"(terminated reason OOMKilled, exit code 137), with the limit they hit.",
		Rules: []Rule{{"oom-killed", "A container used more memory than its limit and was OOM-killed."}},
		Run:   runOOM,
	})
}

func runOOM(c *Context) []backend.Finding {
	var out []backend.Finding
	for _, k := range c.crashes() {
		if k.Cause != causeOOM {
			continue
		}
		var limit string
		if k.Spec != nil {
			if q, ok := k.Spec.Resources.Limits[corev1.ResourceMemory]; ok {
				limit = q.String()
			}
		}
		ev := k.evidence(3)
		if limit != "" {
			ev = append(ev, fmt.Sprintf("container %s: resources.limits.memory = %s", k.Status.Name, limit))
		}
		note := ""
		if k.Status.RestartCount > 1 {
			note = fmt.Sprintf("restarted %d times", k.Status.RestartCount)
		}
		out = append(out, oomFinding(podObject(k.Pod), fmt.Sprintf("Container %s of pod %s", k.Status.Name, k.Pod.Name), limit, note, ev))
	}
	return out
}

// oomFinding is the OOM-kill finding shared by the Kubernetes and local
// analyses. who is "Container X of pod Y" or "Job Z"; limit is the memory
// limit as a quantity string, "" when none is set; note, when not empty,
// is added in parentheses (e.g. "restarted 6 times").
func oomFinding(object, who, limit, note string, ev []string) backend.Finding {
	msg := fmt.Sprintf("%s was OOM-killed: it needs more memory than its limit of %s.", who, limit)
	if limit == "" {
		msg = fmt.Sprintf("%s was OOM-killed with no memory limit of its own: the node ran out of memory.", who)
	}
	if note != "" {
		msg = msg[:len(msg)-1] + " (" + note + ")."
	}
	return backend.Finding{
		RuleID: "oom-killed", Severity: backend.SeverityError, Object: object, Permanent: true, Evidence: ev, Message: msg,
		Fix: "Raise the memory limit (and request) above the peak use — for a model server at least the model's size plus runtime overhead; " +
			"for training, lower the batch size or the number of DataLoader workers.",
	}
}
