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
		ID:       "PTL-QTA-001",
		Severity: backend.SeverityError,
		Summary:  "ResourceQuota caps an extended resource (GPU) under limits.<name> or <name> instead of requests.<name>",
		Why: "The quota controller tracks extended resources only under the requests. prefix. limits.nvidia.com/gpu is " +
			"accepted by the API server but never evaluated, so GPU use in the namespace is not bounded at all.",
		Fix:   "write the key as requests.nvidia.com/gpu",
		Kinds: []string{"ResourceQuota"},
		Check: func(p *lint.Pass) {
			for _, o := range p.Set.Quotas {
				q := o.Typed.(*corev1.ResourceQuota)
				keys := make([]string, 0, len(q.Spec.Hard))
				for k := range q.Spec.Hard {
					keys = append(keys, string(k))
				}
				sort.Strings(keys)
				for _, k := range keys {
					name, prefixed := strings.CutPrefix(k, "limits.")
					if strings.HasPrefix(k, "requests.") || strings.HasPrefix(k, "count/") ||
						strings.Contains(k, ".storageclass.storage.k8s.io/") || !isExtended(corev1.ResourceName(name)) {
						continue
					}
					how := "is not a quota key"
					if prefixed {
						how = "is accepted but never evaluated for extended resources"
					}
					p.Report(o, lint.Path{"spec", "hard", k}, fmt.Sprintf("rename the key to requests.%s", name),
						"quota key %s %s, so %s use in the namespace is unbounded; extended resources are capped only as requests.%s",
						k, how, name, name)
				}
			}
		},
	})
}
