package rules

import (
	"k8s.io/apimachinery/pkg/api/resource"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

// MinModelServerMemory is the smallest memory limit PTL-MEM-003 accepts for
// a known model-server image (Triton, TF Serving, vLLM, TGI, TorchServe…).
var MinModelServerMemory = resource.MustParse("1Gi")

func init() {
	register(&lint.Rule{
		ID:       "PTL-MEM-003",
		Severity: backend.SeverityWarning,
		Summary:  "model-server image (Triton, TF Serving, vLLM, TGI, TorchServe…) with a memory limit under 1Gi",
		Why: "Model servers read the model into host memory before (or besides) the GPU; their runtime alone takes " +
			"hundreds of MiB. Under a small limit the kernel OOM-kills the server while it loads the model (exit 137, " +
			"OOMKilled), and the pod crash-loops without ever serving.",
		Fix:   "set the memory limit to at least the model's size plus the runtime's overhead (a few GiB for most models)",
		Kinds: podKinds,
		Check: func(p *lint.Pass) {
			for _, c := range containers(p.Set, false) {
				if !servingImage.MatchString(c.c.Image) {
					continue
				}
				lim, ok := c.c.Resources.Limits[corev1.ResourceMemory]
				if !ok || lim.Cmp(MinModelServerMemory) >= 0 {
					continue
				}
				p.Report(c.w.Object, c.path.Key("resources", "limits", "memory"), "",
					"container %q runs the model server %s with a memory limit of %s; loading a model needs more and the server is OOM-killed (exit 137) before it serves",
					c.c.Name, c.c.Image, quantity(lim))
			}
		},
	})
}
