package diagnose

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	var rules []Rule
	for _, p := range logPatterns {
		rules = append(rules, Rule{p.ID, p.message("A container", "(the line quoted)")})
	}
	register(Analyzer{
		Name: "log-signatures",
		Description: "Recognises known failure signatures in a crashed container's last log lines (the catalogue in " +
			"signatures.go: /dev/shm too small, CUDA out of memory, NCCL timeouts and system errors, no GPU visible, " +
			"port in use, file not found, rendezvous before the master is up, torchrun's ChildFailedError, the last Python exception) " +
			"and quotes the lines; a stated cause beats a probe kill.",
		Rules: rules,
		Run:   runLogSignatures,
	})
}

func runLogSignatures(c *Context) []backend.Finding {
	var out []backend.Finding
	for _, k := range c.crashes() {
		if k.Cause != causeLog {
			continue
		}
		p := k.Pattern
		ev := append(quoteEvidence(k.Status.Name, k.Quote), k.evidence(6)...)
		if p.ID == "rendezvous-peer-not-ready" {
			ev = append(ev, masterEvidence(c, k.Pod)...)
		}
		out = append(out, backend.Finding{
			RuleID: p.ID, Severity: backend.SeverityError, Object: podObject(k.Pod), Permanent: p.Permanent,
			Message: p.message(fmt.Sprintf("Container %s of pod %s", k.Status.Name, k.Pod.Name), quoteLine(k.Quote)), Evidence: ev, Fix: p.Fix,
		})
	}
	return out
}

// quoteEvidence quotes the log lines that carry a signature's cause, first
// in the evidence so a reader sees them before the surrounding state.
func quoteEvidence(who string, quote []string) []string {
	out := make([]string, 0, len(quote))
	for _, l := range quote {
		out = append(out, fmt.Sprintf("log %s (cause): %s", who, l))
	}
	return out
}

// masterEvidence names the master/launcher pods of the same namespace that
// are not Ready yet: the peers a worker's rendezvous waits for. Masters are
// told by the Kubeflow replica-type label or by name.
func masterEvidence(c *Context, worker *corev1.Pod) []string {
	var ev []string
	for i := range c.State.Pods {
		p := &c.State.Pods[i]
		if p == worker || !sameNamespace(p.Namespace, worker.Namespace) {
			continue
		}
		role := strings.ToLower(p.Labels["training.kubeflow.org/replica-type"] + p.Labels["replica-type"])
		if role != "master" && role != "launcher" && !strings.Contains(p.Name, "master") {
			continue
		}
		if podReady(p) {
			continue
		}
		state := string(p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Waiting != nil {
				state += "/" + cs.State.Waiting.Reason
			}
		}
		ev = append(ev, fmt.Sprintf("master pod %s is not Ready: status.phase %s", p.Name, orNone(state)))
	}
	return ev
}
