package rules

import (
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

// rendezvousVars are the variables that name worker 0 for torchrun
// (PET_MASTER_ADDR, as Kubeflow Trainer sets it) and for programs that do
// their own rendezvous (MASTER_ADDR).
var rendezvousVars = []string{"MASTER_ADDR", "PET_MASTER_ADDR"}

func init() {
	register(&lint.Rule{
		ID:       "PTL-DST-001",
		Severity: backend.SeverityError,
		Summary:  "rendezvous address (MASTER_ADDR) of a multi-pod Job that can never resolve to its worker 0",
		Why: "Every worker connects to MASTER_ADDR. A pod is reachable by name only as HOSTNAME.SUBDOMAIN, where HOSTNAME is " +
			"JOB-INDEX for the pods of an Indexed Job (a NonIndexed Job's pods have random names) and SUBDOMAIN is the pod " +
			"template's subdomain, a headless Service of that name. Any other address never resolves: the workers wait in " +
			"the rendezvous until its timeout, then fail with \"Name or service not known\" — a failure the operators' issue " +
			"trackers show again and again.",
		Fix:   "use completionMode: Indexed, set the pod template's subdomain to a headless Service (clusterIP: None) that selects the job's pods, and MASTER_ADDR: JOB-0.SUBDOMAIN",
		Kinds: []string{"Job", "CronJob"},
		Check: func(p *lint.Pass) {
			for _, c := range containers(p.Set, false) {
				w := c.w
				// Operators (JobSet, Kubeflow, …) name and address their
				// pods themselves; only a built-in Job is checked here.
				if w.Job == nil || (w.Kind != "Job" && w.Kind != "CronJob") || w.Pods < 2 && !indexed(w.Job) {
					continue
				}
				for i, e := range c.c.Env {
					if !isRendezvousVar(e.Name) || e.ValueFrom != nil || e.Value == "" || strings.Contains(e.Value, "$(") {
						continue
					}
					if msg := rendezvousProblem(p.Set, w, e.Value); msg != "" {
						p.Report(w.Object, c.path.Key("env", i, "value"), "", "%s=%q in container %q: %s", e.Name, e.Value, c.c.Name, msg)
					}
				}
			}
		},
	})
}

func isRendezvousVar(name string) bool {
	for _, v := range rendezvousVars {
		if name == v {
			return true
		}
	}
	return false
}

func indexed(j *batchv1.JobSpec) bool {
	return j.CompletionMode != nil && *j.CompletionMode == batchv1.IndexedCompletion
}

// rendezvousProblem says why addr cannot name worker 0 of w, or "".
func rendezvousProblem(s *lint.Set, w *lint.Workload, addr string) string {
	host, domain, dotted := strings.Cut(addr, ".")
	if !dotted || net0(addr) {
		return "" // an IP address or an external host: not a pod name we can check
	}
	sub, _, _ := strings.Cut(domain, ".")
	switch {
	case !indexed(w.Job):
		return "the pods of a NonIndexed Job have random names, so no worker is reachable by a stable name; use completionMode: Indexed"
	case w.PodSpec.Subdomain == "":
		return "the pod template sets no subdomain, so no pod is reachable as " + host + "." + sub + "; set subdomain: " + sub + " (a headless Service)"
	case sub != w.PodSpec.Subdomain:
		return "the pods' subdomain is " + w.PodSpec.Subdomain + ", not " + sub
	case host != w.Name+"-0":
		return "worker 0 of Indexed Job " + w.Name + " is " + w.Name + "-0, not " + host
	}
	for _, o := range s.Services {
		if o.Name != sub || o.Namespace != w.Namespace {
			continue
		}
		if svc, ok := o.Typed.(*corev1.Service); ok && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			return "Service " + sub + " is not headless (clusterIP: None), so it gives no per-pod names"
		}
	}
	return ""
}

// net0 reports whether addr looks like an IPv4 address.
func net0(addr string) bool {
	for _, r := range addr {
		if (r < '0' || r > '9') && r != '.' {
			return false
		}
	}
	return true
}
