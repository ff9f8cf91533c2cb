package rules

import (
	"strings"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-GPU-006",
		Severity: backend.SeverityWarning,
		Summary:  "GPU device-plugin DaemonSet without a toleration for the GPU node taint",
		Why: "When GPU nodes are tainted nvidia.com/gpu:NoSchedule, a device-plugin DaemonSet that does not tolerate the " +
			"taint is kept off exactly the nodes it serves. The node then never advertises nvidia.com/gpu and every GPU " +
			"pod stays Pending with \"Insufficient nvidia.com/gpu\".",
		Fix:   "add tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}] to the DaemonSet's pod template",
		Kinds: []string{"DaemonSet"},
		Check: func(p *lint.Pass) {
			for _, w := range p.Set.Workloads {
				if w.Kind != "DaemonSet" || !isDevicePlugin(w) || tolerates(w.PodSpec.Tolerations, "nvidia.com/gpu") {
					continue
				}
				at := w.SpecPath.Key("tolerations")
				if !w.Has(at) {
					at = w.SpecPath
				}
				p.Report(w.Object, at, "",
					"DaemonSet %s runs a GPU device plugin but does not tolerate the nvidia.com/gpu:NoSchedule taint, so it cannot run on tainted GPU nodes and they never advertise nvidia.com/gpu",
					w.Name)
			}
		},
	})
}

// isDevicePlugin reports whether a DaemonSet runs an NVIDIA GPU device
// plugin (by its name or image).
func isDevicePlugin(w *lint.Workload) bool {
	if strings.Contains(w.Name, "device-plugin") && (strings.Contains(w.Name, "nvidia") || strings.Contains(w.Name, "gpu")) {
		return true
	}
	for _, c := range w.PodSpec.Containers {
		if strings.Contains(c.Image, "k8s-device-plugin") || strings.Contains(c.Image, "nvidia/device-plugin") {
			return true
		}
	}
	return false
}
