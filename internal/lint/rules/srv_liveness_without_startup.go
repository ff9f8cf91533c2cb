package rules

import (
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-SRV-002",
		Severity: backend.SeverityWarning,
		Summary:  "serving container with a liveness probe but no startup probe (a warning for GPU and model-server containers and InferenceServices, a note otherwise)",
		Why: "Model servers take from seconds to many minutes to load weights. The liveness probe starts at once, fails " +
			"while the server does not listen yet (\"connection refused\"), and the kubelet kills and restarts the " +
			"container in a loop that never lets the model finish loading. initialDelaySeconds is a guess that breaks when " +
			"the model or the node changes; a startup probe holds liveness off until the server has started.",
		Fix:   "add a startupProbe on the same endpoint with failureThreshold × periodSeconds longer than the slowest model load (e.g. 60 × 10 s)",
		Kinds: []string{"Deployment", "StatefulSet", "ReplicaSet", "InferenceService"},
		Check: func(p *lint.Pass) {
			for _, w := range p.Set.Workloads {
				idx, _ := servingContainers(p.Set, w)
				for _, i := range idx {
					c := &w.PodSpec.Containers[i]
					if c.LivenessProbe == nil || c.StartupProbe != nil {
						continue
					}
					sev := backend.SeverityInfo
					if len(gpuNames(c)) > 0 || servingImage.MatchString(c.Image) {
						sev = backend.SeverityWarning // loads a model: slow to start
					}
					p.ReportSeverity(sev, w.Object, w.ContainerPath(i).Key("livenessProbe"), "",
						"container %s has a livenessProbe but no startupProbe; while it starts (a model server: while it loads the model) the probe fails and the kubelet restarts the container before it can serve",
						containerName(c))
				}
			}
			for _, o := range p.Set.InferenceServices {
				s := petrelSvc(o).Spec
				if s.LivenessProbe != nil && s.StartupProbe == nil {
					p.Report(o, lint.Path{"spec", "livenessProbe"}, "add spec.startupProbe with failureThreshold × periodSeconds longer than the model load",
						"InferenceService has a livenessProbe but no startupProbe; replicas are restarted while the model is still loading")
				}
			}
		},
	})
}
