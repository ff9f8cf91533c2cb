package rules

import (
	"fmt"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

// MinTTLSeconds is the shortest ttlSecondsAfterFinished PTL-JOB-004 accepts:
// one hour, time for someone to read a failed run's logs.
const MinTTLSeconds = 3600

func init() {
	register(&lint.Rule{
		ID:       "PTL-JOB-004",
		Severity: backend.SeverityWarning,
		Summary:  fmt.Sprintf("ttlSecondsAfterFinished under %d s, or a CronJob keeping no failed Jobs, so failures vanish before anyone reads the logs", MinTTLSeconds),
		Why: "The TTL controller deletes a finished Job and its pods, logs included, ttlSecondsAfterFinished seconds after " +
			"it finishes. Keeping a finished Job longer frees no GPU (its pods have ended), but a short TTL leaves " +
			"nothing to debug a failed training run with. failedJobsHistoryLimit: 0 does the same for a CronJob.",
		Fix:   "raise ttlSecondsAfterFinished to hours (3600–86400) or ship logs elsewhere; keep failedJobsHistoryLimit ≥ 1",
		Kinds: []string{"Job", "CronJob", "TrainingJob"},
		Check: func(p *lint.Pass) {
			for _, w := range p.Set.Workloads {
				if !w.Batch {
					continue
				}
				if ttl := w.Job.TTLSecondsAfterFinished; ttl != nil && *ttl < MinTTLSeconds {
					p.Report(w.Object, w.JobPath.Key("ttlSecondsAfterFinished"), "", "%s", ttlMessage(*ttl))
				}
				if cj, ok := cronJob(w); ok && cj.Spec.FailedJobsHistoryLimit != nil && *cj.Spec.FailedJobsHistoryLimit == 0 {
					p.Report(w.Object, lint.Path{"spec", "failedJobsHistoryLimit"}, "",
						"failedJobsHistoryLimit 0 deletes every failed Job at once, with its pods and logs")
				}
			}
			for _, o := range p.Set.TrainingJobs {
				if ttl := petrelJob(o).Spec.TTLSecondsAfterFinished; ttl != nil && *ttl < MinTTLSeconds {
					p.Report(o, lint.Path{"spec", "ttlSecondsAfterFinished"}, "", "%s", ttlMessage(*ttl))
				}
			}
		},
	})
}

func ttlMessage(ttl int32) string {
	if ttl == 0 {
		return "ttlSecondsAfterFinished 0 deletes the Job and its pods, with their logs, the moment it finishes; a failure leaves nothing to read"
	}
	return fmt.Sprintf("ttlSecondsAfterFinished %d deletes the Job and its pods, with their logs, %d s after it finishes; that is too short to debug a failure, and keeping it longer frees no GPU", ttl, ttl)
}
