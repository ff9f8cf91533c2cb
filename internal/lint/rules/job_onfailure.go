package rules

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-JOB-001",
		Severity: backend.SeverityWarning,
		Summary:  "Job or CronJob with restartPolicy OnFailure",
		Why: "With OnFailure the kubelet restarts the failed container inside the same pod: the Job's failed count stays 0, " +
			"backoffLimit is applied only roughly through restart counts (not at all in some versions), so a broken trainer " +
			"can loop on a GPU; and when the Job finally fails the controller deletes that pod, taking the logs of every " +
			"attempt with it.",
		Fix:   "use restartPolicy: Never (one pod per attempt, counted against backoffLimit, logs kept) and add activeDeadlineSeconds as a hard stop",
		Kinds: []string{"Job", "CronJob"},
		Check: func(p *lint.Pass) {
			for _, w := range p.Set.Workloads {
				if !w.Batch || w.PodSpec.RestartPolicy != corev1.RestartPolicyOnFailure {
					continue
				}
				limit := "the default backoffLimit of 6"
				if w.Job.BackoffLimit != nil {
					limit = fmt.Sprintf("backoffLimit %d", *w.Job.BackoffLimit)
				}
				p.Report(w.Object, w.SpecPath.Key("restartPolicy"), "",
					"restartPolicy OnFailure restarts containers in place, so %s does not reliably stop a failing run and the pod with its logs is deleted when the Job fails",
					limit)
			}
		},
	})
}
