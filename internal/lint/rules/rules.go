// Package rules is petrel lint's catalogue: one rule per file, each
// registering itself with its stable ID, severity, summary, why it matters
// and fix. IDs read PTL-<AREA>-<NNN>; areas are GPU (accelerator
// resources), QTA (quotas), JOB (batch Jobs), KIND (wrong workload kind),
// SRV (serving), HPA (autoscaling), STO (storage), MEM (memory), SHM
// (/dev/shm) and IMG (images). The PTL-IN input rules live in package lint.
//
// The shared walkers and heuristics below (containers of every pod
// template, GPU resource names, training and serving commands) keep each
// rule to its own logic.
package rules

import (
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/petrel-dev/petrel/internal/lint"
)

var catalogue []*lint.Rule

func register(r *lint.Rule) { catalogue = append(catalogue, r) }

// All returns the catalogue sorted by ID (without the PTL-IN input rules,
// which lint.New adds).
func All() []*lint.Rule {
	out := slices.Clone(catalogue)
	lint.SortRules(out)
	return out
}

// Kinds that carry a pod template, for the catalogue.
var podKinds = []string{"Pod", "Job", "CronJob", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
	"ML operator kinds (PyTorchJob, TFJob, MPIJob, RayCluster, RayJob, JobSet, LeaderWorkerSet, …)"}

// container is one container of a workload with its path.
type container struct {
	w    *lint.Workload
	c    *corev1.Container
	path lint.Path
	init bool
}

// containers lists the containers (and, with init, the init containers)
// of every workload in the set.
func containers(s *lint.Set, init bool) []container {
	var out []container
	for _, w := range s.Workloads {
		if init {
			for i := range w.PodSpec.InitContainers {
				out = append(out, container{w, &w.PodSpec.InitContainers[i], w.InitContainerPath(i), true})
			}
		}
		for i := range w.PodSpec.Containers {
			out = append(out, container{w, &w.PodSpec.Containers[i], w.ContainerPath(i), false})
		}
	}
	return out
}

// standardResources are the resource names the API server knows without a
// domain prefix.
var standardResources = map[corev1.ResourceName]bool{
	corev1.ResourceCPU: true, corev1.ResourceMemory: true, corev1.ResourceEphemeralStorage: true,
	corev1.ResourceStorage: true, corev1.ResourcePods: true,
}

// isExtended reports whether name is an extended resource: domain-qualified
// and outside kubernetes.io (as the API server's IsExtendedResourceName).
func isExtended(name corev1.ResourceName) bool {
	n := string(name)
	if !strings.Contains(n, "/") || strings.HasPrefix(n, "requests.") {
		return false
	}
	domain, _, _ := strings.Cut(n, "/")
	return domain != "kubernetes.io" && !strings.HasSuffix(domain, ".kubernetes.io")
}

// isNative reports whether name needs no device plugin.
func isNative(name corev1.ResourceName) bool {
	return standardResources[name] || strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

// acceleratorResources are the resource names device plugins in common use
// advertise.
var acceleratorResources = map[string]bool{
	"nvidia.com/gpu": true, "nvidia.com/gpu.shared": true, "amd.com/gpu": true,
	"gpu.intel.com/i915": true, "gpu.intel.com/xe": true, "habana.ai/gaudi": true,
	"aws.amazon.com/neuron": true, "aws.amazon.com/neuroncore": true, "aws.amazon.com/neurondevice": true,
	"google.com/tpu": true,
}

// legacyGPU is the resource name of the kubelet's removed built-in NVIDIA
// support (Kubernetes ≤ 1.10).
const legacyGPU = "alpha.kubernetes.io/nvidia-gpu"

// isAccelerator reports whether name is a known accelerator resource
// (including MIG slices nvidia.com/mig-1g.5gb).
func isAccelerator(name corev1.ResourceName) bool {
	n := string(name)
	return acceleratorResources[n] || strings.HasPrefix(n, "nvidia.com/mig-")
}

// gpuNames returns the accelerator resources the container asks for (in
// limits or requests) with a positive count.
func gpuNames(c *corev1.Container) []corev1.ResourceName {
	var out []corev1.ResourceName
	for _, list := range []corev1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
		for name, q := range list {
			if (isAccelerator(name) || string(name) == legacyGPU) && q.Sign() > 0 && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// podUsesGPU reports whether any container of the pod asks for an accelerator.
func podUsesGPU(spec *corev1.PodSpec) bool {
	for i := range spec.Containers {
		if len(gpuNames(&spec.Containers[i])) > 0 {
			return true
		}
	}
	return false
}

// cmdline joins a container's command and args.
func cmdline(command, args []string) string {
	return strings.Join(append(slices.Clone(command), args...), " ")
}

var (
	// trainingCmd matches commands that run a training loop.
	trainingCmd = regexp.MustCompile(`(?i)(^|[\s/"'=])(train|training|finetune|fine_tune|fine-tune|pretrain)[\w.-]*\.py\b|` +
		`--(num[-_])?epochs?\b|\bepochs?=|\btorchrun\b|torch\.distributed\.(launch|run)\b|\bdeepspeed\b|` +
		`\baccelerate launch\b|\bhorovodrun\b|\bllamafactory-cli train\b|\bpython3? -m [\w.]*train\b`)
	// trainingName matches image repositories and container names of trainers.
	trainingName = regexp.MustCompile(`(?i)^(.*[-_])?(train|trainer|training|finetune|finetuning|fine-tune)([-_].*)?$`)
	// servingCmd matches commands that start a network server.
	servingCmd = regexp.MustCompile(`(?i)\b(uvicorn|gunicorn|hypercorn|tritonserver|tensorflow_model_server|torchserve|` +
		`text-generation-launcher|vllm serve|vllm\.entrypoints|sglang\.launch_server|llama-server|mlflow models serve|` +
		`bentoml serve|serve run|flask run|streamlit run|http\.server)\b|(^|[\s/"'])(serve|server|serving|app_server)\.py\b`)
	// servingImage matches the images of common model servers (not the
	// operators and controllers that deploy them).
	servingImage = regexp.MustCompile(`(?i)(tritonserver|tensorflow/serving|vllm-openai|text-generation-inference|` +
		`torchserve|kserve/[a-z]+server|seldonio/mlserver|llama\.cpp:server|llama-cpp-server|sglang)`)
	// controllerName matches operators, controllers and other infrastructure
	// whose names mention training (kubeflow/training-operator).
	controllerName = regexp.MustCompile(`(?i)(operator|controller|webhook|dashboard|exporter|proxy|scheduler|ui)([-_:]|$)`)
)

// imageRepo returns an image reference without registry, tag or digest:
// the last path segment ("trainer" for example/trainer:1.0).
func imageRepo(image string) string {
	ref, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	ref, _, _ = strings.Cut(ref, ":")
	return ref
}

// looksLikeTraining reports whether a container runs a training loop, and
// the words that say so.
func looksLikeTraining(name, image string, command, args []string) (bool, string) {
	if m := trainingCmd.FindString(cmdline(command, args)); m != "" {
		return true, "its command runs " + strings.TrimSpace(strings.Trim(m, `"'=/`))
	}
	if trainingName.MatchString(name) && !controllerName.MatchString(name) {
		return true, "its container is named " + name
	}
	if repo := imageRepo(image); repo != "" && trainingName.MatchString(repo) && !controllerName.MatchString(repo) {
		return true, "its image is " + image
	}
	return false, ""
}

// looksLikeServer reports whether a container runs a network server, and
// the words that say so.
func looksLikeServer(image string, command, args []string) (bool, string) {
	if m := servingCmd.FindString(cmdline(command, args)); m != "" {
		return true, "its command runs " + strings.TrimSpace(strings.Trim(m, `"'/`))
	}
	if m := servingImage.FindString(image); m != "" {
		return true, "its image is the model server " + image
	}
	return false, ""
}

// tolerates reports whether tolerations let a pod onto a node tainted
// key=…:NoSchedule, as the scheduler's TaintToleration plugin matches:
// an empty key with operator Exists tolerates every taint; otherwise the
// key must match and the effect be empty or NoSchedule. Any value is
// accepted for Equal, since GPU pools use "present" or "true".
func tolerates(tols []corev1.Toleration, key string) bool {
	for _, t := range tols {
		if t.Effect != "" && t.Effect != corev1.TaintEffectNoSchedule {
			continue
		}
		if t.Key == "" && t.Operator == corev1.TolerationOpExists {
			return true
		}
		if t.Key == key {
			return true
		}
	}
	return false
}

// quantity returns q's value as a decimal string without a suffix change.
func quantity(q resource.Quantity) string { return q.String() }
