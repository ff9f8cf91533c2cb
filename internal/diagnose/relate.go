package diagnose

import (
	"fmt"
	"sort"
	"strings"

	"github.com/petrel-dev/petrel/internal/backend"
)

// blockingRules are findings that keep a pod from starting at all. When
// one pod is blocked and another crashes, the crash is often a downstream
// effect (a model server whose cache or master pod never started).
var blockingRules = map[string]bool{
	"untolerated-taint": true, "gpu-request-exceeds-nodes": true, "gpu-busy": true, "gpu-not-advertised": true,
	"gpu-insufficient": true, "resource-request-exceeds-nodes": true, "resource-busy": true,
	"node-affinity-mismatch": true, "pod-affinity-mismatch": true, "unschedulable": true, "volume-multi-attach": true, "volume-mount-failed": true,
	"image-not-found": true, "image-pull-unauthorized": true, "registry-unreachable": true, "image-pull-failed": true,
}

var crashRules = map[string]bool{"crash-loop": true, "container-failed": true, "rendezvous-peer-not-ready": true,
	"rendezvous-name-not-found": true, "python-exception": true, "torch-elastic-child-failed": true, "nccl-timeout": true, "nccl-system-error": true}

// relate adds, to every crash finding, the pods that could not start in the
// same analysis, so the report points at the root cause across dependent
// pods.
func relate(fs []backend.Finding) {
	type block struct{ obj, rule string }
	var blocked []block
	for _, f := range fs {
		if blockingRules[f.RuleID] && strings.HasPrefix(f.Object, "Pod/") {
			blocked = append(blocked, block{f.Object, f.RuleID})
		}
	}
	if len(blocked) == 0 {
		return
	}
	sort.Slice(blocked, func(i, j int) bool { return blocked[i].obj < blocked[j].obj })
	for i := range fs {
		f := &fs[i]
		if !crashRules[f.RuleID] {
			continue
		}
		n := 0
		for _, b := range blocked {
			if b.obj == f.Object {
				continue
			}
			if n == maxRelated {
				f.Evidence = append(f.Evidence, fmt.Sprintf("… and %d more pods that cannot start", len(blocked)-n))
				break
			}
			n++
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s cannot start (%s): if this container depends on it, the crash is a downstream effect — fix that first", b.obj, b.rule))
		}
	}
}

// maxRelated bounds how many blocked pods one crash finding names.
const maxRelated = 3
