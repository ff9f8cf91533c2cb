package rules

import (
	"fmt"
	"strings"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-GPU-005",
		Severity: backend.SeverityWarning,
		Summary:  "GPU workload without a toleration for the GPU node taint (nvidia.com/gpu:NoSchedule)",
		Why: "GPU node pools are usually tainted nvidia.com/gpu (GKE, EKS, most on-prem setups) so CPU pods stay off them. " +
			"A GPU pod without the toleration can neither schedule there nor make the cluster autoscaler add a GPU node " +
			"(\"pod didn't trigger scale-up: untolerated taint\"), unless the ExtendedResourceToleration admission plugin " +
			"adds it.",
		Fix:   "add tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}] to the pod template",
		Kinds: podKinds,
		Check: func(p *lint.Pass) {
			for _, w := range p.Set.Workloads {
				for i := range w.PodSpec.Containers {
					names := gpuNames(&w.PodSpec.Containers[i])
					if len(names) == 0 {
						continue
					}
					key := taintKey(string(names[0]))
					if tolerates(w.PodSpec.Tolerations, key) {
						break
					}
					at := w.SpecPath.Key("tolerations")
					if !w.Has(at) {
						at = w.ContainerPath(i).Key("resources")
					}
					p.Report(w.Object, at,
						fmt.Sprintf("add tolerations: [{key: %s, operator: Exists, effect: NoSchedule}] to %s", key, w.SpecPath),
						"container %q asks for %s but the pod does not tolerate the %s:NoSchedule taint GPU nodes usually carry; it cannot schedule on (or scale up) a tainted GPU pool",
						w.PodSpec.Containers[i].Name, names[0], key)
					break
				}
			}
		},
	})
}

// taintKey is the taint key GPU pools carry for a resource: the resource
// name itself for NVIDIA, AMD and Intel (nvidia.com/gpu, amd.com/gpu), and
// nvidia.com/gpu for MIG slices and the shared GPU resource.
func taintKey(resource string) string {
	if strings.HasPrefix(resource, "nvidia.com/") || resource == legacyGPU {
		return "nvidia.com/gpu"
	}
	return resource
}
