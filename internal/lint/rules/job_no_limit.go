package rules

import (
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-JOB-003",
		Severity: backend.SeverityInfo,
		Summary:  "Job or TrainingJob with neither backoffLimit nor activeDeadlineSeconds (a warning when it uses GPUs)",
		Why: "Without them a failing run is retried 6 times (the default backoffLimit) with nothing bounding the total " +
			"time, and a hung run holds its GPUs until someone notices. An explicit retry budget and a deadline make the " +
			"cost of a broken run known in advance.",
		Fix:   "set backoffLimit (e.g. 2) and activeDeadlineSeconds (the longest the run may take, in seconds)",
		Kinds: []string{"Job", "CronJob", "TrainingJob"},
		Check: func(p *lint.Pass) {
			for _, w := range p.Set.Workloads {
				// JobSet's child Jobs are bounded by the JobSet's failurePolicy.
				if (w.Kind != "Job" && w.Kind != "CronJob") || w.Job.BackoffLimit != nil || w.Job.ActiveDeadlineSeconds != nil {
					continue
				}
				sev, cost := backend.SeverityInfo, ""
				if podUsesGPU(w.PodSpec) {
					sev, cost = backend.SeverityWarning, " while holding GPUs"
				}
				p.ReportSeverity(sev, w.Object, w.JobPath, "",
					"neither backoffLimit nor activeDeadlineSeconds is set: a failing run is retried 6 times and a hung one runs without limit%s", cost)
			}
			for _, o := range p.Set.TrainingJobs {
				s := petrelJob(o).Spec
				if s.BackoffLimit != nil || s.ActiveDeadlineSeconds != nil {
					continue
				}
				sev, cost := backend.SeverityInfo, ""
				if s.Resources.GPU > 0 {
					sev, cost = backend.SeverityWarning, " while holding GPUs"
				}
				retried := "a failing run is retried 6 times"
				if s.Distributed() {
					// render.go's distribute adds a FailJob rule on any
					// non-zero exit; the local engine retries the gang.
					retried = "on Kubernetes the first failing worker fails the job (fail-fast rule), locally the whole gang is retried up to 6 times"
				}
				p.ReportSeverity(sev, o, lint.Path{"spec"}, "",
					"neither backoffLimit nor activeDeadlineSeconds is set: %s and a hung one runs without limit%s", retried, cost)
			}
		},
	})
}
