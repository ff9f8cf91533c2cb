package rules

import (
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-KIND-001",
		Severity: backend.SeverityWarning,
		Summary:  "training loop run as a Deployment, StatefulSet, ReplicaSet or InferenceService",
		Why: "These controllers keep their pods running for ever: when training finishes the container exits, is restarted " +
			"and trains again from scratch (or crash-loops), holding its GPUs the whole time, and nothing records that the " +
			"run completed or failed. Batch work belongs in a Job, whose pods run to completion with a retry budget.",
		Fix:   "run training as a batch/v1 Job (restartPolicy: Never, backoffLimit, activeDeadlineSeconds) or a petrel TrainingJob",
		Kinds: []string{"Deployment", "StatefulSet", "ReplicaSet", "InferenceService"},
		Check: func(p *lint.Pass) {
			for _, c := range containers(p.Set, false) {
				switch c.w.Kind {
				case "Deployment", "StatefulSet", "ReplicaSet":
				default:
					continue
				}
				if ok, why := looksLikeTraining(c.c.Name, c.c.Image, c.c.Command, c.c.Args); ok {
					p.Report(c.w.Object, c.path, "",
						"container %q looks like a training run (%s), but a %s restarts it for ever when it finishes", c.c.Name, why, c.w.Kind)
				}
			}
			for _, o := range p.Set.InferenceServices {
				s := petrelSvc(o).Spec
				if ok, why := looksLikeTraining("", s.Image, s.Command, s.Args); ok {
					p.Report(o, lint.Path{"spec", "command"}, "use kind: TrainingJob for this command",
						"this InferenceService looks like a training run (%s), but its replicas are restarted for ever when they exit", why)
				}
			}
		},
	})
}
