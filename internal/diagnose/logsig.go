package diagnose

import (
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	var rules []Rule
	for _, p := range logPatterns {
		rules = append(rules, Rule{p.ID, p.message("A container", "(the line quoted)")})
	}
	rules = append(rules, Rule{"rendezvous-name-not-found", "A distributed worker resolves its master or head by a name no Service or pod in the namespace has: the address is wrong, not early."})
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
			if f := nameNotFound(c, k, ev); f != nil {
				out = append(out, *f)
				continue
			}
			ev = append(ev, masterEvidence(c, k.Pod)...)
		}
		out = append(out, backend.Finding{
			RuleID: p.ID, Severity: backend.SeverityError, Object: podObject(k.Pod), Permanent: p.Permanent,
			Message: p.message(fmt.Sprintf("Container %s of pod %s", k.Status.Name, k.Pod.Name), quoteLine(k.Quote)), Evidence: ev, Fix: p.Fix,
		})
	}
	return out
}

var reAddress = regexp.MustCompile(`--(?:address|rdzv[-_]endpoint|master[-_]addr)[= ]([A-Za-z0-9.-]+)`)

// peerHost returns the host name a distributed container resolves its
// master or head by: MASTER_ADDR in its env, or the --address (Ray),
// --rdzv_endpoint or --master_addr (torchrun) of its command; "" when
// none is given or it is an IP address.
func peerHost(ct *corev1.Container) string {
	host := ""
	for _, e := range ct.Env {
		if e.Name == "MASTER_ADDR" {
			host = e.Value
		}
	}
	if host == "" {
		if m := reAddress.FindStringSubmatch(strings.Join(append(append([]string{}, ct.Command...), ct.Args...), " ")); m != nil {
			host = m[1]
		}
	}
	if host == "" || net.ParseIP(host) != nil || strings.Contains(host, "$") {
		return ""
	}
	return host
}

// nameNotFound reports a worker whose peer name matches no Service and no
// pod of its namespace — cluster DNS answers only for those (a Service
// NAME, or a pod's HOSTNAME.SUBDOMAIN) — so waiting or retrying cannot
// help: the address is wrong. It decides only when the state holds the
// namespace's Services; nil otherwise.
func nameNotFound(c *Context, k *crash, ev []string) *backend.Finding {
	if k.Spec == nil || len(c.State.Services) == 0 {
		return nil
	}
	host := peerHost(k.Spec)
	if host == "" {
		return nil
	}
	label, _, _ := strings.Cut(host, ".")
	var names []string
	for _, s := range c.State.Services {
		if !sameNamespace(s.Namespace, k.Pod.Namespace) {
			continue
		}
		if s.Name == label {
			return nil
		}
		names = append(names, s.Name)
	}
	for _, p := range c.State.Pods {
		if sameNamespace(p.Namespace, k.Pod.Namespace) && (p.Name == label || p.Spec.Hostname == label) {
			return nil
		}
	}
	sort.Strings(names)
	ev = append(ev, fmt.Sprintf("peer name %q: no Service or pod of namespace %s has it; its Services: %s", label, orNone(k.Pod.Namespace), strings.Join(names, ", ")))
	return &backend.Finding{
		RuleID: "rendezvous-name-not-found", Severity: backend.SeverityError, Object: podObject(k.Pod), Permanent: true, Evidence: ev,
		Message: fmt.Sprintf("Container %s of pod %s cannot reach its master or head at %q: no Service or pod of that name exists, so the name will never resolve — the address is wrong, not early.", k.Status.Name, k.Pod.Name, host),
		Fix:     "Point the address (MASTER_ADDR, --address, --rdzv_endpoint) at the Service that exists (kubectl get svc), or create the headless Service the workers expect; an init container that waits would wait forever.",
	}
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
