package kube

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/petrel-dev/petrel/internal/spec"
)

func renderFile(t *testing.T, file string, opts Options) *Set {
	t.Helper()
	docs, err := spec.ParseFile(file)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	set, err := Render(docs, opts)
	if err != nil {
		t.Fatalf("render %s: %v", file, err)
	}
	return set
}

func renderString(t *testing.T, src string, opts Options) (*Set, error) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	docs, err := spec.ParseFile(file)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return Render(docs, opts)
}

func find[T Object](t *testing.T, set *Set, name string) T {
	t.Helper()
	for _, o := range set.Objects {
		if v, ok := o.(T); ok && o.GetName() == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T named %q among %d objects", zero, name, len(set.Objects))
	return zero
}

func count[T Object](set *Set) int {
	n := 0
	for _, o := range set.Objects {
		if _, ok := o.(T); ok {
			n++
		}
	}
	return n
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

func TestRenderTrainingJobMapsEveryField(t *testing.T) {
	set := renderFile(t, "testdata/gpu-job.yaml", Options{IncludeSecretValues: true})
	job := find[*batchv1.Job](t, set, "gpu-train")
	ps := job.Spec.Template.Spec
	c := ps.Containers[0]

	checks := []struct {
		name string
		ok   bool
	}{
		{"restartPolicy Never", ps.RestartPolicy == corev1.RestartPolicyNever},
		{"backoffLimit 3", *job.Spec.BackoffLimit == 3},
		{"activeDeadlineSeconds 3600", *job.Spec.ActiveDeadlineSeconds == 3600},
		{"ttlSecondsAfterFinished 600", *job.Spec.TTLSecondsAfterFinished == 600},
		{"terminationGracePeriodSeconds 45", *ps.TerminationGracePeriodSeconds == 45},
		{"securityContext runAsUser/runAsGroup/fsGroup 65532", ps.SecurityContext != nil && *ps.SecurityContext.RunAsUser == 65532 &&
			*ps.SecurityContext.RunAsGroup == 65532 && *ps.SecurityContext.FSGroup == 65532},
		{"two podFailurePolicy rules", len(job.Spec.PodFailurePolicy.Rules) == 2},
		{"rule 0 FailJob In [42 43]", job.Spec.PodFailurePolicy.Rules[0].Action == batchv1.PodFailurePolicyActionFailJob &&
			job.Spec.PodFailurePolicy.Rules[0].OnExitCodes.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn &&
			len(job.Spec.PodFailurePolicy.Rules[0].OnExitCodes.Values) == 2 && job.Spec.PodFailurePolicy.Rules[0].OnExitCodes.Values[1] == 43},
		{"rule 1 Ignore", job.Spec.PodFailurePolicy.Rules[1].Action == batchv1.PodFailurePolicyActionIgnore},
		{"command unchanged", strings.Join(c.Command, " ") == "python3 train.py"},
		{"args keep $(VAR) for Kubernetes to expand", strings.Join(c.Args, " ") == "--out $(CKPT_DIR)/model.pt"},
		{"workingDir", c.WorkingDir == "/app"},
		{"image", c.Image == "ghcr.io/example/train:1.0"},
		{"cpu request = limit", c.Resources.Requests.Cpu().Equal(resource.MustParse("4")) && c.Resources.Limits.Cpu().Equal(resource.MustParse("4"))},
		{"memory request = limit", c.Resources.Requests.Memory().Equal(resource.MustParse("16Gi")) && c.Resources.Limits.Memory().Equal(resource.MustParse("16Gi"))},
		{"GPUs under limits with the vendor name", c.Resources.Limits.Name("amd.com/gpu", resource.DecimalSI).Value() == 2},
		{"no GPU request (defaulted from limits by the API server)", c.Resources.Requests.Name("amd.com/gpu", resource.DecimalSI).IsZero()},
		{"GPU toleration", len(ps.Tolerations) == 1 && ps.Tolerations[0].Key == "amd.com/gpu" &&
			ps.Tolerations[0].Operator == corev1.TolerationOpExists && ps.Tolerations[0].Effect == corev1.TaintEffectNoSchedule},
		{"pathEnv holds mountPath and comes first", c.Env[0].Name == "CKPT_DIR" && c.Env[0].Value == "/ckpt"},
		{"plain env inline", envOf(c)["EPOCHS"].Value == "10"},
		{"secret env via secretKeyRef", envOf(c)["WANDB_API_KEY"].Value == "" &&
			envOf(c)["WANDB_API_KEY"].ValueFrom.SecretKeyRef.Name == "gpu-train-job-env" &&
			envOf(c)["WANDB_API_KEY"].ValueFrom.SecretKeyRef.Key == "WANDB_API_KEY"},
		{"labels", job.Labels[LabelName] == "gpu-train" && job.Labels[LabelManagedBy] == "petrel" &&
			job.Labels[LabelKind] == "job" && job.Labels[LabelWorkload] == "gpu-train" && job.Labels["team"] == "vision"},
		{"pod template carries the labels", job.Spec.Template.Labels[LabelWorkload] == "gpu-train" && job.Spec.Template.Labels["team"] == "vision"},
		{"spec annotation masks the secret", strings.Contains(job.Annotations[AnnotationSpec], MaskedValue) &&
			!strings.Contains(job.Annotations[AnnotationSpec], "s3cr3t-value")},
	}
	for _, ck := range checks {
		if !ck.ok {
			t.Errorf("%s: not rendered as expected", ck.name)
		}
	}

	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	if m := mounts["/dev/shm"]; m.Name == "" {
		t.Errorf("GPU job has no /dev/shm mount: %+v", c.VolumeMounts)
	}
	if m := mounts["/ckpt"]; m.Name != "ckpt" || m.ReadOnly {
		t.Errorf("ckpt mount = %+v, want name ckpt read-write", m)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		vols[v.Name] = v
	}
	if v := vols[mounts["/dev/shm"].Name]; v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
		t.Errorf("/dev/shm volume = %+v, want a memory-backed emptyDir", v)
	}
	if v := vols["ckpt"]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "ckpt" {
		t.Errorf("ckpt volume = %+v, want the claim ckpt", v)
	}

	sec := find[*corev1.Secret](t, set, "gpu-train-job-env")
	if string(sec.Data["WANDB_API_KEY"]) != "s3cr3t-value" || sec.Labels[LabelWorkload] != "gpu-train" {
		t.Errorf("secret = %+v, want the value under its name and the workload labels", sec)
	}
	pvc := find[*corev1.PersistentVolumeClaim](t, set, "ckpt")
	if got := pvc.Spec.Resources.Requests.Storage(); !got.Equal(resource.MustParse("2Gi")) || pvc.Spec.AccessModes[0] != corev1.ReadWriteMany {
		t.Errorf("pvc = %v %v, want 2Gi ReadWriteMany", got, pvc.Spec.AccessModes)
	}
	if set.Objects[0].GetName() != "gpu-train-job-env" && set.Objects[0].GetName() != "ckpt" {
		t.Errorf("first object %s: secrets and claims must come before the Job", set.Objects[0].GetName())
	}
	if _, ok := set.Objects[len(set.Objects)-1].(*batchv1.Job); !ok {
		t.Errorf("last object is %T, want the Job after what it uses", set.Objects[len(set.Objects)-1])
	}
}

func TestRenderJobDefaults(t *testing.T) {
	set, err := renderString(t, `apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata: {name: tiny}
spec:
  image: busybox
  command: [echo, hi]
  workingDir: examples/digits
`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	job := find[*batchv1.Job](t, set, "tiny")
	ps := job.Spec.Template.Spec
	if *job.Spec.BackoffLimit != 6 {
		t.Errorf("backoffLimit = %d, want the batch/v1 default 6 written out", *job.Spec.BackoffLimit)
	}
	if job.Spec.PodFailurePolicy != nil || job.Spec.ActiveDeadlineSeconds != nil || job.Spec.TTLSecondsAfterFinished != nil {
		t.Errorf("unset optional fields rendered: %+v", job.Spec)
	}
	if len(ps.Tolerations) != 0 || len(ps.Volumes) != 0 {
		t.Errorf("CPU-only job got tolerations %v / volumes %v", ps.Tolerations, ps.Volumes)
	}
	if ps.Containers[0].Resources.Limits != nil || ps.Containers[0].Resources.Requests != nil {
		t.Errorf("resources rendered without any asked: %+v", ps.Containers[0].Resources)
	}
	if ps.Containers[0].WorkingDir != "" || len(set.Notes) != 1 || !strings.Contains(set.Notes[0], "relative") {
		t.Errorf("relative workingDir: got %q and notes %q, want it left out with a note", ps.Containers[0].WorkingDir, set.Notes)
	}
	if count[*corev1.Secret](set) != 0 {
		t.Errorf("a Secret rendered for a job without secret env")
	}
}

func TestRenderSecretsAreNeverPrintedByDefault(t *testing.T) {
	set := renderFile(t, "testdata/gpu-job.yaml", Options{})
	if count[*corev1.Secret](set) != 0 {
		t.Fatalf("Secret rendered without IncludeSecretValues")
	}
	y, err := set.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(y, []byte("s3cr3t-value")) {
		t.Fatalf("secret value printed in render output:\n%s", y)
	}
	if !bytes.Contains(y, []byte("kubectl create secret generic gpu-train-job-env --from-literal=WANDB_API_KEY=...")) {
		t.Errorf("render output does not say how to create the secret:\n%s", y)
	}
	// With the values asked for, the base64 of the value appears in the Secret.
	set = renderFile(t, "testdata/gpu-job.yaml", Options{IncludeSecretValues: true})
	if y, _ = set.YAML(); !bytes.Contains(y, []byte("czNjcjN0LXZhbHVl")) {
		t.Errorf("--include-secrets output lacks the Secret's data")
	}
}

func TestRenderInferenceService(t *testing.T) {
	set := renderFile(t, "testdata/autoscaled-service.yaml", Options{Namespace: "ml"})
	dep := find[*appsv1.Deployment](t, set, "digits-serve")
	svc := find[*corev1.Service](t, set, "digits-serve")
	h := find[*autoscalingv2.HorizontalPodAutoscaler](t, set, "digits-serve")
	c := dep.Spec.Template.Spec.Containers[0]
	for _, o := range set.Objects {
		if o.GetNamespace() != "ml" {
			t.Errorf("%T %s in namespace %q, want ml from -n", o, o.GetName(), o.GetNamespace())
		}
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"replicas left to the HPA", dep.Spec.Replicas == nil},
		{"selector is the workload selector", dep.Spec.Selector.MatchLabels[LabelWorkload] == "digits-serve" && dep.Spec.Selector.MatchLabels[LabelKind] == "service"},
		{"template labels match the selector", dep.Spec.Template.Labels[LabelWorkload] == "digits-serve" && dep.Spec.Template.Labels[LabelManagedBy] == ManagedBy},
		{"RollingUpdate 50% / 0", dep.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType &&
			dep.Spec.Strategy.RollingUpdate.MaxSurge.String() == "50%" && dep.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() == 0},
		{"grace period", *dep.Spec.Template.Spec.TerminationGracePeriodSeconds == 20},
		{"container port", c.Ports[0].ContainerPort == 8080 && c.Ports[0].Name == "http"},
		{"PORT env holds the port, as $(PORT) does locally", c.Env[0].Name == "PORT" && c.Env[0].Value == "8080"},
		{"cpu request", c.Resources.Requests.Cpu().Equal(resource.MustParse("500m"))},
		{"readiness probe on the service port", c.ReadinessProbe.HTTPGet.Path == "/ready" && c.ReadinessProbe.HTTPGet.Port.IntValue() == 8080 && c.ReadinessProbe.PeriodSeconds == 5},
		{"liveness probe on its own port", c.LivenessProbe.HTTPGet.Port.IntValue() == 9090 && c.LivenessProbe.FailureThreshold == 5},
		{"no startup probe", c.StartupProbe == nil},
		{"ClusterIP service on the port", svc.Spec.Type == corev1.ServiceTypeClusterIP && svc.Spec.Ports[0].Port == 8080 && svc.Spec.Ports[0].TargetPort.String() == "http"},
		{"service selects the deployment's pods", svc.Spec.Selector[LabelWorkload] == "digits-serve" && svc.Spec.Selector[LabelKind] == "service"},
		{"HPA targets the deployment", h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == "digits-serve"},
		{"HPA bounds", *h.Spec.MinReplicas == 2 && h.Spec.MaxReplicas == 8},
		{"HPA CPU utilisation 60", h.Spec.Metrics[0].Type == autoscalingv2.ResourceMetricSourceType &&
			h.Spec.Metrics[0].Resource.Name == corev1.ResourceCPU && *h.Spec.Metrics[0].Resource.Target.AverageUtilization == 60},
		{"HPA scale-down behaviour", *h.Spec.Behavior.ScaleDown.StabilizationWindowSeconds == 120 &&
			*h.Spec.Behavior.ScaleDown.SelectPolicy == autoscalingv2.MinChangePolicySelect &&
			h.Spec.Behavior.ScaleDown.Policies[0].Type == autoscalingv2.PodsScalingPolicy && h.Spec.Behavior.ScaleUp == nil &&
			h.Spec.Behavior.ScaleDown.Tolerance.Equal(resource.MustParse("50m"))},
	}
	for _, ck := range checks {
		if !ck.ok {
			t.Errorf("%s: not rendered as expected", ck.name)
		}
	}
	if len(set.Notes) != 0 {
		t.Errorf("unexpected notes for a CPU target: %q", set.Notes)
	}
}

func TestRenderConcurrencyTargetNeedsAdapter(t *testing.T) {
	set := renderFile(t, "testdata/concurrency-service.yaml", Options{})
	h := find[*autoscalingv2.HorizontalPodAutoscaler](t, set, "llm")
	m := h.Spec.Metrics[0]
	if m.Type != autoscalingv2.PodsMetricSourceType || m.Pods.Metric.Name != InflightMetric ||
		m.Pods.Target.Type != autoscalingv2.AverageValueMetricType || m.Pods.Target.AverageValue.Value() != 4 {
		t.Errorf("concurrency metric = %+v, want Pods %s averageValue 4", m, InflightMetric)
	}
	if h.Spec.MinReplicas != nil {
		t.Errorf("minReplicas = %d, want unset (the HPA defaults it to 1)", *h.Spec.MinReplicas)
	}
	if len(set.Notes) != 1 || !strings.Contains(set.Notes[0], "custom-metrics adapter") {
		t.Errorf("notes = %q, want one saying the metric needs a custom-metrics adapter", set.Notes)
	}
}

// The same spec scales the same on both targets: a spec without behavior
// renders none (the controller's legacy normalisation, as the local
// engine), and a behavior's per-direction tolerance is rendered as is.
func TestRenderHPABehaviorAgreesWithTheLocalEngine(t *testing.T) {
	const head = "apiVersion: petrel.dev/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec:\n  image: python:3.12-slim\n  command: [x]\n  port: 8080\n  resources: {cpu: 500m}\n"
	tests := []struct {
		name       string
		autoscale  string
		check      func(b *autoscalingv2.HorizontalPodAutoscalerBehavior) bool
		wantRender string
	}{
		{"no behavior: none rendered", "  autoscaling: {maxReplicas: 9, target: {cpuUtilization: 70}}\n",
			func(b *autoscalingv2.HorizontalPodAutoscalerBehavior) bool { return b == nil }, "no behavior"},
		{"empty behavior: rendered, so the API server fills in the autoscaling/v2 defaults", "  autoscaling: {maxReplicas: 9, target: {cpuUtilization: 70}, behavior: {}}\n",
			func(b *autoscalingv2.HorizontalPodAutoscalerBehavior) bool {
				return b != nil && b.ScaleUp == nil && b.ScaleDown == nil
			}, "an empty behavior"},
		{"per-direction tolerance", "  autoscaling: {maxReplicas: 9, target: {cpuUtilization: 70}, behavior: {scaleUp: {tolerance: 0.05}, scaleDown: {tolerance: 200m}}}\n",
			func(b *autoscalingv2.HorizontalPodAutoscalerBehavior) bool {
				return b != nil && b.ScaleUp.Tolerance.Equal(resource.MustParse("50m")) && b.ScaleDown.Tolerance.Equal(resource.MustParse("0.2")) &&
					b.ScaleUp.Policies == nil && b.ScaleUp.StabilizationWindowSeconds == nil
			}, "scaleUp.tolerance 50m and scaleDown.tolerance 200m, nothing else"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := renderString(t, head+tt.autoscale, Options{})
			if err != nil {
				t.Fatal(err)
			}
			h := find[*autoscalingv2.HorizontalPodAutoscaler](t, set, "s")
			if !tt.check(h.Spec.Behavior) {
				t.Errorf("behavior %+v, want %s", h.Spec.Behavior, tt.wantRender)
			}
		})
	}
}

func TestRenderFixedReplicasHasNoHPA(t *testing.T) {
	set := renderFile(t, "testdata/fixed-service.yaml", Options{})
	dep := find[*appsv1.Deployment](t, set, "echo")
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
		t.Errorf("replicas = %v, want 3", dep.Spec.Replicas)
	}
	if n := count[*autoscalingv2.HorizontalPodAutoscaler](set); n != 0 {
		t.Errorf("%d HPAs for a fixed-size service", n)
	}
	if dep.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("rollingUpdate bounds rendered without a spec.strategy: %+v", dep.Spec.Strategy.RollingUpdate)
	}
}

func TestRenderVolumeSeed(t *testing.T) {
	set := renderFile(t, "testdata/seeded-volume.yaml", Options{})
	pvc := find[*corev1.PersistentVolumeClaim](t, set, "seeded")
	if !pvc.Spec.Resources.Requests.Storage().Equal(resource.MustParse(DefaultVolumeSize)) || pvc.Spec.AccessModes[0] != corev1.ReadWriteOnce {
		t.Errorf("pvc defaults = %v %v, want %s ReadWriteOnce", pvc.Spec.Resources.Requests.Storage(), pvc.Spec.AccessModes, DefaultVolumeSize)
	}
	cm := find[*corev1.ConfigMap](t, set, "seeded-seed")
	if string(cm.BinaryData["a.txt"]) != "hello\n" || string(cm.BinaryData["sub_b.txt"]) != "it's\n" {
		t.Errorf("seed ConfigMap data = %q", cm.BinaryData)
	}
	ps := find[*batchv1.Job](t, set, "reads-seed").Spec.Template.Spec
	if len(ps.InitContainers) != 1 {
		t.Fatalf("init containers = %d, want the seed container", len(ps.InitContainers))
	}
	ic := ps.InitContainers[0]
	script := ic.Command[2]
	for _, want := range []string{"cp '/petrel-seed/sub/b.txt' '/petrel-volume/sub/b.txt'", "touch /petrel-volume/" + SeedMarker, "if [ -e /petrel-volume/" + SeedMarker} {
		if !strings.Contains(script, want) {
			t.Errorf("seed script lacks %q:\n%s", want, script)
		}
	}
	rw := false
	for _, m := range ic.VolumeMounts {
		if m.Name == "seeded" && !m.ReadOnly {
			rw = true
		}
	}
	if !rw {
		t.Errorf("seed container does not mount the claim read-write: %+v", ic.VolumeMounts)
	}
	if main := ps.Containers[0]; !main.VolumeMounts[0].ReadOnly || main.Env[0].Name != "DATA" || main.Env[0].Value != "/data" {
		t.Errorf("main container mount/env = %+v %+v", main.VolumeMounts, main.Env)
	}
	var items []corev1.KeyToPath
	for _, v := range ps.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == "seeded-seed" {
			items = v.ConfigMap.Items
		}
	}
	if len(items) != 2 || items[1].Key != "sub_b.txt" || items[1].Path != "sub/b.txt" {
		t.Errorf("configMap items = %+v, want keys mapped back to their paths", items)
	}
}

func TestRenderLargeSourceIsNotSeeded(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "big"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big", "blob"), make([]byte, SeedLimit+1), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "v.yaml")
	os.WriteFile(file, []byte("apiVersion: petrel.dev/v1alpha1\nkind: Volume\nmetadata: {name: big}\nspec: {size: 5Gi, source: big}\n"), 0o644)
	docs, err := spec.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	set, err := Render(docs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if count[*corev1.ConfigMap](set) != 0 || len(set.Notes) != 1 || !strings.Contains(set.Notes[0], "kubectl cp") {
		t.Errorf("large source: %d ConfigMaps, notes %q; want none and a note on copying the data", count[*corev1.ConfigMap](set), set.Notes)
	}
}

func TestRenderErrorsNameTheLine(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"workload without image", `apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata: {name: noimage}
spec:
  command: [echo]
`, "spec.yaml:5:3: spec.image: spec.image is required on Kubernetes"},
		{"missing volume source", `apiVersion: petrel.dev/v1alpha1
kind: Volume
metadata: {name: v}
spec:
  source: nowhere
`, "spec.yaml:5:11: spec.source: cannot read volume source"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderString(t, tc.src, Options{})
			var list spec.ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("err = %v, want a spec.ErrorList", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestRenderPetrelLabelsWinOverSpecLabels(t *testing.T) {
	set, err := renderString(t, `apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata:
  name: j
  labels: {app.kubernetes.io/managed-by: helm, petrel.dev/workload: other, tier: gold}
spec: {image: busybox, command: ["true"]}
`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	job := find[*batchv1.Job](t, set, "j")
	if job.Labels[LabelManagedBy] != ManagedBy || job.Labels[LabelWorkload] != "j" || job.Labels["tier"] != "gold" {
		t.Errorf("labels = %v", job.Labels)
	}
}

// TestYAMLIsApplyable checks the printed form: one document per object,
// each with apiVersion and kind, no status and no empty creationTimestamp.
func TestYAMLIsApplyable(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	examples, _ := filepath.Glob("../../examples/*/*.yaml")
	for _, f := range append(files, examples...) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			set := renderFile(t, f, Options{Namespace: "ns1"})
			y, err := set.YAML()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(y, []byte("creationTimestamp")) || bytes.Contains(y, []byte("\nstatus:")) {
				t.Errorf("output has creationTimestamp or status noise:\n%s", y)
			}
			docs := bytes.Split(y, []byte("\n---\n"))
			n := 0
			for _, d := range docs {
				var m map[string]any
				if err := yaml.Unmarshal(d, &m); err != nil {
					t.Fatalf("document does not parse: %v\n%s", err, d)
				}
				if len(m) == 0 {
					continue // the notes-only header
				}
				n++
				if m["apiVersion"] == nil || m["kind"] == nil {
					t.Errorf("document without apiVersion/kind:\n%s", d)
				}
			}
			if n != len(set.Objects) {
				t.Errorf("%d documents for %d objects", n, len(set.Objects))
			}
		})
	}
}

func TestRenderDistributedJobIsAnIndexedJobWithAHeadlessService(t *testing.T) {
	set, err := Render(parse(t, "testdata/distributed-job.yaml"), Options{Namespace: "ml"})
	if err != nil {
		t.Fatal(err)
	}
	job := find[*batchv1.Job](t, set, "ddp")
	if job.Spec.CompletionMode == nil || *job.Spec.CompletionMode != batchv1.IndexedCompletion || *job.Spec.Completions != 3 || *job.Spec.Parallelism != 3 {
		t.Fatalf("job spec %+v, want Indexed with completions = parallelism = 3", job.Spec)
	}
	ps := job.Spec.Template.Spec
	if ps.Subdomain != "ddp" {
		t.Errorf("subdomain %q, want the headless Service ddp", ps.Subdomain)
	}
	svc := find[*corev1.Service](t, set, "ddp")
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses || svc.Spec.Selector[LabelKind] != KindJob {
		t.Errorf("service %+v, want headless, publishing not-ready pods, selecting the job's pods", svc.Spec)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range ps.Containers[0].Env {
		env[e.Name] = e
	}
	for k, want := range map[string]string{"PET_NNODES": "3", "PET_NPROC_PER_NODE": "2", "PET_MASTER_ADDR": "ddp-0.ddp", "PET_MASTER_PORT": "29500",
		"MASTER_ADDR": "ddp-0.ddp", "MASTER_PORT": "29500", "WORLD_SIZE": "6"} {
		if env[k].Value != want {
			t.Errorf("%s = %q, want %q", k, env[k].Value, want)
		}
	}
	for _, k := range []string{"PET_NODE_RANK", "NODE_RANK"} {
		if f := env[k].ValueFrom; f == nil || f.FieldRef == nil || !strings.Contains(f.FieldRef.FieldPath, batchv1.JobCompletionIndexAnnotation) {
			t.Errorf("%s = %+v, want the job completion index", k, env[k])
		}
	}
	if _, ok := env["RANK"]; ok {
		t.Errorf("RANK set with 2 processes per worker: torchrun sets it per process")
	}
	rules := job.Spec.PodFailurePolicy.Rules
	if last := rules[len(rules)-1]; last.Action != batchv1.PodFailurePolicyActionFailJob || last.OnExitCodes.Operator != batchv1.PodFailurePolicyOnExitCodesOpNotIn {
		t.Errorf("podFailurePolicy %+v, want a last rule failing the job at the first non-zero exit", rules)
	}
	if p := svc.Spec.Ports[0]; p.TargetPort.IntValue() != int(p.Port) {
		t.Errorf("service port %+v, want targetPort = port", p)
	}
	if len(rules) < 2 {
		t.Fatalf("podFailurePolicy %+v, want an Ignore rule on DisruptionTarget before the fail-fast rule", rules)
	}
	ign := rules[len(rules)-2]
	if ign.Action != batchv1.PodFailurePolicyActionIgnore || len(ign.OnPodConditions) != 1 ||
		ign.OnPodConditions[0].Type != corev1.DisruptionTarget || ign.OnPodConditions[0].Status != corev1.ConditionTrue {
		t.Errorf("rule before fail-fast %+v, want Ignore on DisruptionTarget=True", ign)
	}
}

// TestRenderOnPodConditionsRules: a spec rule on pod conditions renders as
// batch/v1 onPodConditions with status defaulting to True, and a
// distributed job whose spec already has a DisruptionTarget rule gets no
// second one from petrel.
func TestRenderOnPodConditionsRules(t *testing.T) {
	docs := parseString(t, `apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata:
  name: ddp
spec:
  image: python:3.12-slim
  command: [python, train.py]
  numNodes: 2
  podFailurePolicy:
    rules:
    - action: FailJob
      onPodConditions:
      - type: DisruptionTarget
`)
	set, err := Render(docs, Options{Namespace: "ml"})
	if err != nil {
		t.Fatal(err)
	}
	rules := find[*batchv1.Job](t, set, "ddp").Spec.PodFailurePolicy.Rules
	if len(rules) != 2 {
		t.Fatalf("rules %+v, want the spec's rule and the fail-fast rule only", rules)
	}
	r := rules[0]
	if r.Action != batchv1.PodFailurePolicyActionFailJob || len(r.OnPodConditions) != 1 ||
		r.OnPodConditions[0].Type != corev1.DisruptionTarget || r.OnPodConditions[0].Status != corev1.ConditionTrue {
		t.Errorf("rule 0 %+v, want FailJob on DisruptionTarget=True", r)
	}
}
