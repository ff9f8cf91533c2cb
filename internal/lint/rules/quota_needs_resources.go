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
		ID:       "PTL-QTA-002",
		Severity: backend.SeverityError,
		Summary:  "workload in a namespace whose ResourceQuota caps cpu/memory, with containers that do not set them",
		Why: "A ResourceQuota on requests.cpu, limits.memory and so on makes admission reject every pod whose containers " +
			"do not declare those values (\"failed quota: must specify limits.cpu,...\"). A Job then shows no pods at all, " +
			"only FailedCreate events, and a GPU job never starts.",
		Fix:   "set the cpu and memory requests and limits the quota names on every container, or add a LimitRange with defaults",
		Kinds: append(podKinds, "ResourceQuota", "LimitRange", "TrainingJob", "InferenceService"),
		Check: func(p *lint.Pass) {
			for _, qo := range p.Set.Quotas {
				need := quotaNeeds(qo.Typed.(*corev1.ResourceQuota))
				if len(need) == 0 {
					continue
				}
				for _, w := range p.Set.Workloads {
					if !lint.SameNamespace(w.Object, qo) {
						continue
					}
					defaults := limitRangeDefaults(lint.InNamespace(p.Set.LimitRanges, w.Object))
					for _, c := range containersOf(w) {
						var missing []string
						for _, key := range need {
							if !containerSets(c.c, key) && !defaults[key] {
								missing = append(missing, key)
							}
						}
						if len(missing) == 0 {
							continue
						}
						p.Report(w.Object, c.path.Key("resources"),
							fmt.Sprintf("set %s on container %q, or add a LimitRange with default and defaultRequest for them", strings.Join(missing, ", "), c.c.Name),
							"ResourceQuota %s (%s:%d) requires %s, which container %q does not set; admission rejects its pods (\"failed quota: must specify ...\")",
							qo.Name, qo.File, line(qo), strings.Join(missing, ","), c.c.Name)
					}
				}
				for _, o := range append(append([]*lint.Object{}, p.Set.TrainingJobs...), p.Set.InferenceServices...) {
					if !lint.SameNamespace(o, qo) {
						continue
					}
					res, path := petrelResources(o)
					var missing []string
					for _, key := range need {
						if (strings.HasSuffix(key, ".cpu") && res.CPU == nil) || (strings.HasSuffix(key, ".memory") && res.Memory == nil) {
							missing = append(missing, key)
						}
					}
					if len(missing) > 0 {
						p.Report(o, path, "set spec.resources.cpu and spec.resources.memory (petrel renders each as request and limit)",
							"ResourceQuota %s requires %s, which this %s does not set; admission rejects its pods on Kubernetes",
							qo.Name, strings.Join(missing, ","), o.Kind)
					}
				}
			}
		},
	})
}

// quotaNeeds returns the container fields a quota forces every pod to set
// (requests.cpu, limits.memory, ...); bare cpu and memory mean requests.
func quotaNeeds(q *corev1.ResourceQuota) []string {
	var out []string
	for k := range q.Spec.Hard {
		switch string(k) {
		case "cpu", "requests.cpu":
			out = append(out, "requests.cpu")
		case "memory", "requests.memory":
			out = append(out, "requests.memory")
		case "limits.cpu", "limits.memory":
			out = append(out, string(k))
		}
	}
	sort.Strings(out)
	return out
}

// containerSets reports whether c sets the field key (requests.cpu ...). A
// limit without a request sets the request too (API defaulting).
func containerSets(c *corev1.Container, key string) bool {
	section, res, _ := strings.Cut(key, ".")
	name := corev1.ResourceName(res)
	if _, ok := c.Resources.Limits[name]; ok {
		return true
	}
	if section == "requests" {
		_, ok := c.Resources.Requests[name]
		return ok
	}
	return false
}

// limitRangeDefaults returns the fields Container LimitRanges default.
func limitRangeDefaults(lrs []*lint.Object) map[string]bool {
	out := map[string]bool{}
	for _, o := range lrs {
		for _, item := range o.Typed.(*corev1.LimitRange).Spec.Limits {
			if item.Type != corev1.LimitTypeContainer {
				continue
			}
			for name := range item.Default {
				out["limits."+string(name)] = true
				out["requests."+string(name)] = true // a default limit also defaults the request
			}
			for name := range item.DefaultRequest {
				out["requests."+string(name)] = true
			}
		}
	}
	return out
}

// containersOf lists a workload's containers and init containers.
func containersOf(w *lint.Workload) []container {
	var out []container
	for i := range w.PodSpec.InitContainers {
		out = append(out, container{w, &w.PodSpec.InitContainers[i], w.InitContainerPath(i), true})
	}
	for i := range w.PodSpec.Containers {
		out = append(out, container{w, &w.PodSpec.Containers[i], w.ContainerPath(i), false})
	}
	return out
}

func line(o *lint.Object) int {
	l, _, _ := o.Pos(lint.Path{})
	return l
}
