package rules

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

// operatorDefaultsRestartPolicy lists the operator kinds whose admission
// webhook fills in the Jobs' pod restartPolicy when it is left out, so
// leaving it out is not a mistake there: JobSet sets OnFailure
// (kubernetes-sigs/jobset pkg/webhooks/jobset_webhook.go, Default).
var operatorDefaultsRestartPolicy = map[string]bool{"JobSet": true}

func init() {
	register(&lint.Rule{
		ID:       "PTL-JOB-002",
		Severity: backend.SeverityError,
		Summary:  "Job or CronJob whose pod template has restartPolicy Always, or none (which defaults to Always)",
		Why: "A Job's pods must run to completion, so the API server accepts only Never or OnFailure and rejects the Job " +
			"(\"Unsupported value: Always\"). Leaving restartPolicy out is the same mistake: the pod default is Always.",
		Fix:   "set restartPolicy: Never in the pod template",
		Kinds: []string{"Job", "CronJob"},
		Check: func(p *lint.Pass) {
			for _, w := range p.Set.Workloads {
				if !w.Batch {
					continue
				}
				switch w.PodSpec.RestartPolicy {
				case corev1.RestartPolicyAlways:
					p.Report(w.Object, w.SpecPath.Key("restartPolicy"), "",
						"restartPolicy Always is not allowed in a %s; the API server rejects it", w.Kind)
				case "":
					if operatorDefaultsRestartPolicy[w.Object.Kind] {
						continue
					}
					p.Report(w.Object, w.SpecPath, "add restartPolicy: Never to "+w.SpecPath.String(),
						"the pod template sets no restartPolicy, which defaults to Always and is not allowed in a %s; the API server rejects it", w.Kind)
				}
			}
		},
	})
}
