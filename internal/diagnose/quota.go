package diagnose

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	register(Analyzer{
		Name: "quota",
		Description: "Reads FailedCreate events of Jobs, ReplicaSets and StatefulSets: a ResourceQuota that is " +
			"exceeded (permanent when one pod alone asks for more than the quota's hard limit) or that requires " +
			"requests/limits the pod does not declare, and other admission refusals.",
		Rules: []Rule{
			{"quota-exceeded", "Pod creation is refused because it would exceed a ResourceQuota."},
			{"quota-requires-resources", "Pod creation is refused because a ResourceQuota requires requests/limits the pod lacks."},
			{"pod-create-failed", "The controller cannot create pods for another reason, quoted from its event."},
		},
		Run: runQuota,
	})
}

var (
	reQuotaName = regexp.MustCompile(`(?:exceeded|failed) quota: ([^,:]+)`)
	reQuotaPart = regexp.MustCompile(`(requested|used|limited): ([^ ]+(?:, ?[a-z][^ ,]*=[^ ,]+)*)`)
)

// quotaAmounts parses "requested: a=1,b=2, used: a=0, limited: a=4".
func quotaAmounts(msg string) map[string]map[string]resource.Quantity {
	out := map[string]map[string]resource.Quantity{}
	for _, m := range reQuotaPart.FindAllStringSubmatch(msg, -1) {
		vals := map[string]resource.Quantity{}
		for _, kv := range strings.Split(m[2], ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				continue
			}
			if q, err := resource.ParseQuantity(strings.TrimRight(v, ".,")); err == nil {
				vals[k] = q
			}
		}
		out[m[1]] = vals
	}
	return out
}

func runQuota(c *Context) []backend.Finding {
	var out []backend.Finding
	// From the objects: admission (the ResourceQuota plugin) rejects every
	// pod of a workload whose template lacks what a quota constrains.
	required := quotaRequirements(c)
	done := map[string]bool{}
	for _, e := range c.ScopeEvents() {
		if e.Reason != "FailedCreate" {
			continue
		}
		if f, ok := required[e.InvolvedObject.Kind+"/"+e.InvolvedObject.Name]; ok && (e.Message == "" || strings.Contains(e.Message, "must specify")) {
			if !done[f.Object] {
				f.Evidence = append(f.Evidence, eventEvidence(e))
				out = append(out, f)
				done[f.Object] = true
			}
			continue
		}
		obj := e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name
		ev := []string{eventEvidence(e)}
		quota := ""
		if m := reQuotaName.FindStringSubmatch(e.Message); m != nil {
			quota = strings.TrimSpace(m[1])
			for i := range c.State.ResourceQuotas {
				q := &c.State.ResourceQuotas[i]
				if q.Name == quota {
					ev = append(ev, fmt.Sprintf("ResourceQuota %s: spec.hard %v, status.used %v", q.Name, q.Spec.Hard, q.Status.Used))
				}
			}
		}
		f := backend.Finding{Severity: backend.SeverityError, Object: obj, Evidence: ev}
		switch {
		case strings.Contains(e.Message, "must specify"):
			f.RuleID, f.Permanent = "quota-requires-resources", true
			_, need, _ := strings.Cut(e.Message, "must specify ")
			f.Message = fmt.Sprintf("%s has no pods: admission rejects every pod because ResourceQuota %s requires each container to declare %s.", e.InvolvedObject.Name, quota, strings.TrimSpace(need))
			f.Fix = "Add cpu and memory requests and limits to every container (or a LimitRange in the namespace that sets defaults)."
		case strings.Contains(e.Message, "exceeded quota"):
			f.RuleID = "quota-exceeded"
			amounts := quotaAmounts(e.Message)
			var over []string
			for res, req := range amounts["requested"] {
				if lim, ok := amounts["limited"][res]; ok && req.Cmp(lim) > 0 {
					over = append(over, fmt.Sprintf("%s %s > hard %s", res, req.String(), lim.String()))
				}
			}
			if len(over) > 0 {
				f.Permanent = true
				f.Message = fmt.Sprintf("%s cannot create pods: one pod asks for more than ResourceQuota %s allows in total (%s), so it will never fit.", e.InvolvedObject.Name, quota, strings.Join(over, ", "))
				f.Fix = "Lower the pod's request below the quota, or ask the namespace's admin to raise the quota."
			} else {
				f.Message = fmt.Sprintf("%s cannot create pods now: ResourceQuota %s is used up by other workloads in the namespace.", e.InvolvedObject.Name, quota)
				f.Fix = "Wait for other workloads to finish (the controller retries), lower the request, or raise the quota."
			}
		default:
			f.RuleID = "pod-create-failed"
			f.Message = fmt.Sprintf("%s cannot create pods: %s", e.InvolvedObject.Name, e.Message)
			f.Fix = "Fix what the admission error names (policy, quota, service account, LimitRange)."
		}
		out = append(out, f)
	}
	for _, obj := range sortedKeys(required) {
		if !done[obj] {
			out = append(out, required[obj])
		}
	}
	return out
}

// quotaRequirements finds, for the Jobs and Deployments in scope that have
// no pods, the ResourceQuotas of their namespace that constrain cpu or
// memory requests/limits their pod template does not declare: the
// ResourceQuota admission plugin rejects such pods ("must specify …")
// unless a LimitRange fills in defaults. Keyed by "Kind/name".
func quotaRequirements(c *Context) map[string]backend.Finding {
	out := map[string]backend.Finding{}
	check := func(kind, name, namespace string, spec *corev1.PodSpec, hasPods bool) {
		if hasPods {
			return
		}
		for i := range c.State.ResourceQuotas {
			q := &c.State.ResourceQuotas[i]
			if !sameNamespace(q.Namespace, namespace) {
				continue
			}
			need := quotaMissing(q.Spec.Hard, spec)
			if len(need) == 0 {
				continue
			}
			obj := kind + "/" + name
			out[obj] = backend.Finding{RuleID: "quota-requires-resources", Severity: backend.SeverityError, Object: obj, Permanent: true,
				Evidence: []string{fmt.Sprintf("ResourceQuota %s: spec.hard %v", q.Name, q.Spec.Hard),
					fmt.Sprintf("%s %s: pod template containers declare no %s", kind, name, strings.Join(need, ","))},
				Message: fmt.Sprintf("%s has no pods: admission rejects every pod because ResourceQuota %s requires each container to declare %s.", name, q.Name, strings.Join(need, ",")),
				Fix:     "Add cpu and memory requests and limits to every container (or a LimitRange in the namespace that sets defaults)."}
			return
		}
	}
	for _, j := range c.jobs {
		check("Job", j.Name, j.Namespace, &j.Spec.Template.Spec, j.Status.Active > 0 || j.Status.Succeeded > 0 || j.Status.Failed > 0 || len(c.jobPods(j)) > 0)
	}
	for _, d := range c.deployments {
		check("Deployment", d.Name, d.Namespace, &d.Spec.Template.Spec, d.Status.Replicas > 0)
	}
	return out
}

// quotaMissing returns the quota keys among hard that some container of
// spec does not declare, sorted. A limit without a request defaults the
// request (core/v1 defaulting), so it satisfies requests.* too.
func quotaMissing(hard corev1.ResourceList, spec *corev1.PodSpec) []string {
	var need []string
	for key := range hard {
		k := string(key)
		res, isLimit := "", false
		switch k {
		case "cpu", "memory", "requests.cpu", "requests.memory":
			res = strings.TrimPrefix(k, "requests.")
		case "limits.cpu", "limits.memory":
			res, isLimit = strings.TrimPrefix(k, "limits."), true
		default:
			continue
		}
		for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
			missing := false
			for _, ct := range cs {
				_, lim := ct.Resources.Limits[corev1.ResourceName(res)]
				_, req := ct.Resources.Requests[corev1.ResourceName(res)]
				if !lim && (isLimit || !req) {
					missing = true
				}
			}
			if missing {
				need = append(need, k)
				break
			}
		}
	}
	sort.Strings(need)
	return need
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
