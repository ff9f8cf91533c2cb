package diagnose

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// LegacyGPUResource is the resource name GPUs had before device plugins
// (Kubernetes ≤ 1.9 accelerators feature gate). Nodes reporting only this
// name have no device plugin registering nvidia.com/gpu.
const LegacyGPUResource corev1.ResourceName = "alpha.kubernetes.io/nvidia-gpu"

// isGPUResource reports whether name is an accelerator resource a device
// plugin advertises (nvidia.com/gpu, amd.com/gpu, MIG slices, Intel GPUs)
// or the legacy alpha key.
func isGPUResource(name corev1.ResourceName) bool {
	n := string(name)
	return strings.HasSuffix(n, "/gpu") || strings.HasPrefix(n, "nvidia.com/mig-") ||
		strings.HasPrefix(n, "gpu.intel.com/") || name == LegacyGPUResource
}

// containerRequest is what one container asks the scheduler for: the
// request, else the limit (extended resources such as GPUs are set as
// limits and the request defaults to it).
func containerRequest(c *corev1.Container, name corev1.ResourceName) resource.Quantity {
	if q, ok := c.Resources.Requests[name]; ok {
		return q
	}
	if q, ok := c.Resources.Limits[name]; ok {
		return q
	}
	return resource.Quantity{}
}

// podRequest is the pod's effective request of one resource, as the
// scheduler computes it: the larger of the sum over containers and the
// largest init container.
func podRequest(spec *corev1.PodSpec, name corev1.ResourceName) resource.Quantity {
	var sum resource.Quantity
	for i := range spec.Containers {
		sum.Add(containerRequest(&spec.Containers[i], name))
	}
	for i := range spec.InitContainers {
		if q := containerRequest(&spec.InitContainers[i], name); q.Cmp(sum) > 0 {
			sum = q
		}
	}
	return sum
}

// podResourceNames lists every resource the pod's containers ask for.
func podResourceNames(spec *corev1.PodSpec) []corev1.ResourceName {
	seen := map[corev1.ResourceName]bool{}
	var out []corev1.ResourceName
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			for _, rl := range []corev1.ResourceList{cs[i].Resources.Limits, cs[i].Resources.Requests} {
				for n := range rl {
					if !seen[n] {
						seen[n] = true
						out = append(out, n)
					}
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// largestAllocatable returns the node with the most allocatable of name and
// that amount; nil when no node advertises it.
func largestAllocatable(nodes []corev1.Node, name corev1.ResourceName) (*corev1.Node, resource.Quantity) {
	var best *corev1.Node
	var max resource.Quantity
	for i := range nodes {
		q, ok := nodes[i].Status.Allocatable[name]
		if !ok || q.IsZero() {
			continue
		}
		if best == nil || q.Cmp(max) > 0 {
			best, max = &nodes[i], q
		}
	}
	return best, max
}

var (
	reInsufficient = regexp.MustCompile(`Insufficient ([A-Za-z0-9./_-]+)`)
	reTaint        = regexp.MustCompile(`untolerated taints?\(?s?\)? ?\{([^}]*)\}`)
)

// insufficientResources parses the scheduler's "N Insufficient NAME" parts.
func insufficientResources(msg string) []corev1.ResourceName {
	var out []corev1.ResourceName
	seen := map[string]bool{}
	for _, m := range reInsufficient.FindAllStringSubmatch(msg, -1) {
		n := strings.TrimRight(m[1], ".,")
		if !seen[n] {
			seen[n] = true
			out = append(out, corev1.ResourceName(n))
		}
	}
	return out
}

// untoleratedTaints parses "had untolerated taint {KEY: VALUE}" parts into
// taints (the event does not say the effect; NoSchedule is assumed until a
// node in state says otherwise).
func untoleratedTaints(msg string) []corev1.Taint {
	var out []corev1.Taint
	for _, m := range reTaint.FindAllStringSubmatch(msg, -1) {
		k, v, _ := strings.Cut(m[1], ":")
		out = append(out, corev1.Taint{Key: strings.TrimSpace(k), Value: strings.TrimSpace(v), Effect: corev1.TaintEffectNoSchedule})
	}
	return out
}

func taintString(t corev1.Taint) string {
	s := t.Key
	if t.Value != "" {
		s += "=" + t.Value
	}
	return s + ":" + string(t.Effect)
}

func quantityEvidence(field string, q resource.Quantity) string {
	return fmt.Sprintf("%s: %s", field, q.String())
}
