package rules

import (
	"fmt"
	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-KIND-002",
		Severity: backend.SeverityWarning,
		Summary:  "network server (model server, API) run as a Job, CronJob or TrainingJob",
		Why: "A Job runs its pod to completion: a server that is killed or crashes is retried only backoffLimit times and " +
			"then stays down, a rollout cannot replace it without downtime, and no HPA can scale it. A Service selecting " +
			"a Job's pods is the same mistake seen from the other side.",
		Fix:   "run servers as a Deployment (with readiness probe and Service) or a petrel InferenceService",
		Kinds: []string{"Job", "CronJob", "TrainingJob", "Service"},
		Check: func(p *lint.Pass) {
			for _, w := range p.Set.Workloads {
				if !w.Batch {
					continue
				}
				reported := false
				for i, c := range w.PodSpec.Containers {
					if ok, why := looksLikeServer(c.Image, c.Command, c.Args); ok {
						p.Report(w.Object, w.ContainerPath(i), "",
							"container %q looks like a server (%s), but a %s runs it to completion and does not keep it up", c.Name, why, w.Kind)
						reported = true
						break
					}
				}
				if reported {
					continue
				}
				for _, svc := range p.Set.ServicesFor(w) {
					if t, ok := svc.Typed.(*corev1.Service); ok && t.Spec.ClusterIP == corev1.ClusterIPNone {
						continue // a headless Service names a Job's pods (a rendezvous), it does not serve
					}
					p.Report(w.Object, w.SpecPath, fmt.Sprintf("serve from a Deployment, or remove Service %s", svc.Name),
						"Service %s (%s:%d) sends traffic to this %s's pods, but a %s's pods run to completion and are not kept up", svc.Name, svc.File, line(svc), w.Kind, w.Kind)
					break
				}
			}
			for _, o := range p.Set.TrainingJobs {
				s := petrelJob(o).Spec
				if ok, why := looksLikeServer(s.Image, s.Command, s.Args); ok {
					p.Report(o, lint.Path{"spec", "command"}, "use kind: InferenceService for this command",
						"this TrainingJob looks like a server (%s), but a TrainingJob runs to completion and is not kept up", why)
				}
			}
		},
	})
}
