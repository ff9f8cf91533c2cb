package diagnose

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	register(Analyzer{
		Name: "probes",
		Description: "Tells restarts by the kubelet's liveness (or startup) probe apart from crashes, using the " +
			"Unhealthy and Killing events, and reports pods kept out of service by a failing readiness probe.",
		Rules: []Rule{
			{"liveness-probe-restarts", "The kubelet restarts a container because its liveness probe fails, not because it crashes."},
			{"readiness-probe-failing", "A pod's readiness probe fails, so it receives no traffic."},
		},
		Run: runProbes,
	})
}

func runProbes(c *Context) []backend.Finding {
	var out []backend.Finding
	killed := map[*corev1.Pod]bool{}
	for _, k := range c.crashes() {
		if k.Cause != causeLiveness {
			continue
		}
		killed[k.Pod] = true
		ev := k.evidence(3)
		evs := c.probeKills(k.Pod, k.Status.Name)
		for _, e := range evs {
			ev = append(ev, eventEvidence(e))
		}
		hasStartup := k.Spec != nil && k.Spec.StartupProbe != nil
		who := fmt.Sprintf("container %s of pod %s", k.Status.Name, k.Pod.Name)
		out = append(out, livenessFinding(podObject(k.Pod), who, hasStartup, strings.Contains(eventsText(evs), "connection refused"),
			fmt.Sprintf("kubectl logs %s -c %s --previous", k.Pod.Name, k.Status.Name), ev))
	}
	// Readiness failures on pods not already explained by liveness kills.
	for _, p := range c.Pods() {
		if killed[p] || p.Status.Phase != corev1.PodRunning {
			continue
		}
		var ev []string
		for _, e := range c.Events("Pod", p.Namespace, p.Name) {
			// By its wording, or from the objects: an Unhealthy event of a
			// running pod not killed by a probe, whose containers have a
			// readiness probe and are not ready.
			if e.Reason == "Unhealthy" && !strings.HasPrefix(e.Message, "Liveness") && !strings.HasPrefix(e.Message, "Startup") &&
				(strings.HasPrefix(e.Message, "Readiness probe failed") || hasReadinessProbe(p)) {
				ev = append(ev, eventEvidence(e))
			}
		}
		if len(ev) == 0 || podReady(p) {
			continue
		}
		// A server that runs but states a permanent cause in its log
		// (its model path does not exist) will not become ready by
		// waiting: the log's cause is the finding.
		if f := notReadyLogFinding(c, p, ev); f != nil {
			out = append(out, *f)
			continue
		}
		out = append(out, backend.Finding{
			RuleID: "readiness-probe-failing", Severity: backend.SeverityWarning, Object: podObject(p), Evidence: ev,
			Message: fmt.Sprintf("Pod %s is not Ready: its readiness probe fails, so the Service sends it no traffic.", p.Name),
			Fix:     "If the server is still loading its model this passes; otherwise check that the probe's path and port match what the server serves once ready.",
		})
	}
	return out
}

// notReadyLogFinding returns the log-signature finding for a running,
// not-ready container of p whose current log carries a permanent cause,
// quoting it with the readiness evidence ev; nil when none does.
func notReadyLogFinding(c *Context, p *corev1.Pod, ev []string) *backend.Finding {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Ready {
			continue
		}
		pat, quote := matchLogs(c.Logs(p, cs.Name))
		if pat == nil || !pat.Permanent {
			continue
		}
		return &backend.Finding{
			RuleID: pat.ID, Severity: backend.SeverityError, Object: podObject(p), Permanent: true,
			Evidence: append(quoteEvidence(cs.Name, quote), ev...),
			Message:  pat.message(fmt.Sprintf("Container %s of pod %s", cs.Name, p.Name), quoteLine(quote)),
			Fix:      pat.Fix,
		}
	}
	return nil
}

func hasReadinessProbe(p *corev1.Pod) bool {
	for _, ct := range p.Spec.Containers {
		if ct.ReadinessProbe != nil {
			return true
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func eventsText(es []*corev1.Event) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.Message)
		b.WriteByte('\n')
	}
	return b.String()
}

// livenessFinding is shared by the Kubernetes and local analyses. who is
// "container C of pod P" or "replica R of service S"; refused says the
// probe found nothing listening yet; logsCmd is how the user reads the
// output of the killed run on this target.
func livenessFinding(object, who string, hasStartup, refused bool, logsCmd string, ev []string) backend.Finding {
	msg := fmt.Sprintf("The kubelet restarts %s because its liveness probe fails, not because the program crashes", who)
	if refused {
		msg += ": nothing listens on the probe's port yet while the server starts or loads its model."
	} else {
		msg += "."
	}
	fix := "Add a startupProbe on the liveness endpoint with failureThreshold × periodSeconds longer than model loading takes (e.g. failureThreshold: 60, periodSeconds: 10)"
	if hasStartup {
		fix = "Raise the startupProbe's failureThreshold × periodSeconds above the model's load time"
	}
	fix += "; if " + logsCmd + " shows the server never binds (bad model repository, missing model file, no GPU), fix that first — no probe timing helps then."
	return backend.Finding{RuleID: "liveness-probe-restarts", Severity: backend.SeverityError, Object: object, Permanent: true, Evidence: ev, Message: msg, Fix: fix}
}
