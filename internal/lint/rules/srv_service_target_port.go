package rules

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-SRV-005",
		Severity: backend.SeverityError,
		Summary:  "Service targetPort names a port that none of the pods it selects declares",
		Why: "The endpoints controller resolves a named targetPort in each selected pod. Pods without a port of that " +
			"name get no endpoint, so the Service has no backends and clients see connection refused or 503s although " +
			"the model server runs.",
		Fix:   "name the container port as the Service's targetPort says, or give targetPort the number",
		Kinds: []string{"Service", "Deployment", "StatefulSet", "ReplicaSet", "Pod"},
		Check: func(p *lint.Pass) {
			for _, so := range p.Set.Services {
				svc := so.Typed.(*corev1.Service)
				selected := p.Set.WorkloadsFor(so)
				if len(selected) == 0 {
					continue
				}
				for i, sp := range svc.Spec.Ports {
					if sp.TargetPort.Type != intstr.String || sp.TargetPort.StrVal == "" {
						continue
					}
					name := sp.TargetPort.StrVal
					found := false
					for _, w := range selected {
						for _, c := range w.PodSpec.Containers {
							for _, cp := range c.Ports {
								if cp.Name == name {
									found = true
								}
							}
						}
					}
					if found {
						continue
					}
					w := selected[0]
					p.Report(so, lint.Path{"spec", "ports", i, "targetPort"},
						fmt.Sprintf("name a container port %q in %s, or set targetPort to the number", name, w.Ref()),
						"targetPort %q is not the name of any port of the pods it selects (%s); the Service gets no endpoints", name, w.Ref())
				}
			}
		},
	})
}
