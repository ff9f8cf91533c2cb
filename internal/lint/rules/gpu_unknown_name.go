package rules

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-GPU-003",
		Severity: backend.SeverityError,
		Summary:  "unknown or legacy GPU resource name (gpu, nvidia.com/gpus, alpha.kubernetes.io/nvidia-gpu)",
		Why: "A resource name without a domain (gpu:) is rejected by the API server. The legacy " +
			"alpha.kubernetes.io/nvidia-gpu was removed in Kubernetes 1.10 and is advertised only by nodes whose device " +
			"plugin is not running. A misspelt domain name (nvidia.com/gpus) is accepted but no node advertises it, so the " +
			"pod stays Pending with \"Insufficient ...\" for ever.",
		Fix:   "use the name the device plugin advertises: nvidia.com/gpu (NVIDIA), amd.com/gpu (AMD), gpu.intel.com/i915 (Intel)",
		Kinds: append(podKinds, "ResourceQuota"),
		Check: func(p *lint.Pass) {
			for _, c := range containers(p.Set, true) {
				for _, section := range []string{"limits", "requests"} {
					list := c.c.Resources.Limits
					if section == "requests" {
						list = c.c.Resources.Requests
					}
					names := make([]string, 0, len(list))
					for n := range list {
						names = append(names, string(n))
					}
					sort.Strings(names)
					for _, n := range names {
						sev, msg := judgeResourceName(corev1.ResourceName(n))
						if msg == "" {
							continue
						}
						p.ReportSeverity(sev, c.w.Object, c.path.Key("resources", section, n),
							fmt.Sprintf("write resources.%s[nvidia.com/gpu] (or the name your device plugin advertises) in container %q", section, c.c.Name),
							"container %q: %s", c.c.Name, msg)
					}
				}
			}
		},
	})
}

// judgeResourceName returns a message and severity for a GPU-like resource
// name that will not work, or "" when the name is fine.
func judgeResourceName(name corev1.ResourceName) (backend.Severity, string) {
	n := string(name)
	lower := strings.ToLower(n)
	switch {
	case n == legacyGPU:
		return backend.SeverityError, fmt.Sprintf("%s is the legacy GPU resource removed in Kubernetes 1.10; only nodes without a running device plugin still show it", n)
	case isNative(name) || isAccelerator(name):
		return "", ""
	case !strings.Contains(n, "/"):
		hint := ""
		if strings.Contains(lower, "gpu") {
			hint = "; GPUs are nvidia.com/gpu"
		}
		return backend.SeverityError, fmt.Sprintf("resource %q has no domain and is not a standard resource (cpu, memory, ephemeral-storage, hugepages-*), so the API server rejects it%s", n, hint)
	case strings.Contains(lower, "gpu") || strings.Contains(lower, "nvidia"):
		return backend.SeverityWarning, fmt.Sprintf("resource %q is not a name any common device plugin advertises (did you mean nvidia.com/gpu?); no node will offer it and the pod stays Pending", n)
	}
	return "", ""
}
