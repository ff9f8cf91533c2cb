package spec

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// Validate checks each document's fields and the documents together
// (unique names per kind, mounts of declared volumes). A Volume declared
// twice identically (train.yaml and serve.yaml both declare the volume
// they share) is one declaration; see MergeIdentical. Volumes that already
// exist on the target may be named in known; mounts of them are accepted.
// It returns an ErrorList or nil.
func Validate(docs []*Document, known ...string) error {
	return validate(docs, known, true)
}

func validate(docs []*Document, known []string, checkMounts bool) error {
	var errs ErrorList
	declared := map[string]bool{}
	for _, k := range known {
		declared[k] = true
	}
	seen := map[string]*Document{}
	for _, d := range docs {
		key := d.Object.GetKind() + "/" + d.Object.GetName()
		if prev, ok := seen[key]; ok && !sameDeclaration(prev, d) {
			if _, vol := d.Object.(*v1alpha1.Volume); vol {
				errs = append(errs, d.errAt("spec", fmt.Sprintf("declare it the same way in both places (identical declarations are one volume), or rename one; the first is at %s:%d", prev.File, prev.PosOf("metadata.name").Line),
					"Volume %q is declared twice, differently", d.Object.GetName()))
				continue
			}
			errs = append(errs, d.errAt("metadata.name", fmt.Sprintf("rename one; the first is at %s:%d", prev.File, prev.PosOf("metadata.name").Line),
				"duplicate %s name %q", d.Object.GetKind(), d.Object.GetName()))
		}
		if _, ok := seen[key]; !ok {
			seen[key] = d
		}
		if v, ok := d.Object.(*v1alpha1.Volume); ok {
			declared[v.Metadata.Name] = true
		}
	}
	for _, d := range docs {
		v := &validator{doc: d, checkMounts: checkMounts}
		v.meta(d.Object.GetMeta())
		switch o := d.Object.(type) {
		case *v1alpha1.TrainingJob:
			v.trainingJob(&o.Spec, declared)
		case *v1alpha1.InferenceService:
			v.inferenceService(&o.Spec, declared)
		case *v1alpha1.Volume:
			v.volume(&o.Spec)
		}
		errs = append(errs, v.errs...)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// metricName is a name Katib's stdout filter captures before "=".
var metricName = regexp.MustCompile(`^[\w|-]+$`)

func (d *Document) errAt(path, fix, format string, args ...any) *FieldError {
	return &FieldError{File: d.File, Pos: d.PosOf(path), Path: path, Msg: fmt.Sprintf(format, args...), Fix: fix}
}

type validator struct {
	doc         *Document
	errs        ErrorList
	checkMounts bool
}

func (v *validator) fail(path, fix, format string, args ...any) {
	v.errs = append(v.errs, v.doc.errAt(path, fix, format, args...))
}

func (v *validator) meta(m *v1alpha1.ObjectMeta) {
	if m.Name == "" {
		v.fail("metadata.name", "set metadata.name to a DNS-1123 label such as digits-train", "name is required")
		return
	}
	if errs := validation.IsDNS1123Label(m.Name); len(errs) > 0 {
		v.fail("metadata.name", "use lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit (DNS-1123 label)",
			"invalid name %q: %s", m.Name, strings.Join(errs, "; "))
	}
	for k, val := range m.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			v.fail("metadata.labels."+k, "label keys are [prefix/]name, name at most 63 characters of [A-Za-z0-9_.-]", "invalid label key %q", k)
		}
		if errs := validation.IsValidLabelValue(val); len(errs) > 0 {
			v.fail("metadata.labels."+k, "label values are at most 63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric", "invalid label value %q", val)
		}
	}
}

func (v *validator) securityContext(sc *v1alpha1.SecurityContext) {
	if sc == nil {
		return
	}
	for f, id := range map[string]*int64{"runAsUser": sc.RunAsUser, "runAsGroup": sc.RunAsGroup, "fsGroup": sc.FSGroup} {
		if id != nil && *id < 0 {
			v.fail("spec.securityContext."+f, "set a numeric user or group id, 0 or more", "negative %s %d", f, *id)
		}
	}
}

// MaxArgBytes is the longest one argument or environment value may be:
// the kernel's MAX_ARG_STRLEN (32 pages, 128 KiB), beyond which exec fails
// with E2BIG; MaxExecBytes bounds them all together, half the usual
// ARG_MAX of 2 MiB so the inherited environment still fits. A spec over
// either could never start, so it is refused at apply, not retried.
const (
	MaxArgBytes  = 128 << 10
	MaxExecBytes = 1 << 20
)

// MaxSeconds is the largest number of seconds a duration field can hold
// (activeDeadlineSeconds, terminationGracePeriodSeconds): Go's
// time.Duration counts nanoseconds in an int64, about 292 years.
const MaxSeconds = math.MaxInt64 / int64(time.Second)

// execString checks one argv element or env value that reaches exec.
func (v *validator) execString(path, s string, total *int) {
	*total += len(s) + 1
	switch {
	case strings.IndexByte(s, 0) >= 0:
		v.fail(path, "remove the NUL byte: exec passes C strings, which end at the first NUL", "contains a NUL byte")
	case len(s) > MaxArgBytes:
		v.fail(path, "pass large data in a file on a volume instead (the kernel's limit per argument or variable is 128 KiB)", "%d bytes, over the %d-byte limit", len(s), MaxArgBytes)
	}
}

func (v *validator) workload(command, args []string, env []v1alpha1.EnvVar, res *v1alpha1.Resources, mounts []v1alpha1.VolumeMount, declared map[string]bool) {
	if len(command) == 0 || command[0] == "" {
		v.fail("spec.command", `give the program and its arguments as a list, e.g. command: [python3, train.py]`, "command is required")
	}
	total := 0
	for i, c := range command {
		v.execString(fmt.Sprintf("spec.command[%d]", i), c, &total)
	}
	for i, a := range args {
		v.execString(fmt.Sprintf("spec.args[%d]", i), a, &total)
	}
	for i, e := range env {
		v.execString(fmt.Sprintf("spec.env[%d].value", i), e.Value, &total)
		total += len(e.Name) + 1
	}
	if total > MaxExecBytes {
		v.fail("spec", "pass large data in a file on a volume instead", "command, args and env add up to %d bytes, over the %d-byte limit", total, MaxExecBytes)
	}
	envNames := map[string]bool{}
	for i, e := range env {
		p := fmt.Sprintf("spec.env[%d].name", i)
		if errs := validation.IsEnvVarName(e.Name); len(errs) > 0 || e.Name == "" {
			v.fail(p, "environment variable names are letters, digits, '_', '-' and '.', not starting with a digit", "invalid environment variable name %q", e.Name)
		}
		if envNames[e.Name] {
			v.fail(p, "remove one of the two", "duplicate environment variable %q", e.Name)
		}
		envNames[e.Name] = true
	}
	if res.GPU < 0 {
		v.fail("spec.resources.gpu", "set a whole number of GPUs, 0 or more", "negative GPU count %d", res.GPU)
	}
	if res.GPUResourceName != "" {
		if errs := validation.IsQualifiedName(res.GPUResourceName); len(errs) > 0 || !strings.Contains(res.GPUResourceName, "/") {
			v.fail("spec.resources.gpuResourceName", "use a vendor-qualified extended resource name such as nvidia.com/gpu or amd.com/gpu", "invalid GPU resource name %q", res.GPUResourceName)
		}
	}
	if res.CPU != nil && res.CPU.IsZero() {
		v.fail("spec.resources.cpu", `set a positive CPU amount such as "500m", or leave cpu out`, "cpu is zero")
	}
	if res.Memory != nil && res.Memory.IsZero() {
		v.fail("spec.resources.memory", `set a positive memory amount such as "512Mi", or leave memory out`, "memory is zero")
	}
	mountNames := map[string]bool{}
	for i, m := range mounts {
		p := fmt.Sprintf("spec.volumes[%d]", i)
		if errs := validation.IsDNS1123Label(m.Name); len(errs) > 0 {
			v.fail(p+".name", "volume names are DNS-1123 labels (lower-case letters, digits, '-'), so they cannot name a path", "invalid volume name %q", m.Name)
		} else if v.checkMounts && !declared[m.Name] {
			v.fail(p+".name", fmt.Sprintf("declare it in the same file:\n---\napiVersion: %s\nkind: Volume\nmetadata: {name: %s}\nspec: {size: 1Gi}", v1alpha1.APIVersion, m.Name),
				"volume %q is not declared", m.Name)
		}
		if mountNames[m.Name] {
			v.fail(p+".name", "mount each volume once", "volume %q is mounted twice", m.Name)
		}
		mountNames[m.Name] = true
		if !strings.HasPrefix(m.MountPath, "/") {
			v.fail(p+".mountPath", "mountPath is an absolute path inside the container, e.g. /data", "mountPath %q is not absolute", m.MountPath)
		}
		if m.PathEnv != "" {
			if errs := validation.IsEnvVarName(m.PathEnv); len(errs) > 0 {
				v.fail(p+".pathEnv", "use an environment variable name such as DATA_DIR", "invalid pathEnv %q", m.PathEnv)
			} else if envNames[m.PathEnv] {
				v.fail(p+".pathEnv", "rename the env entry or the pathEnv", "pathEnv %q is also set in spec.env", m.PathEnv)
			}
		}
	}
}

func (v *validator) trainingJob(s *v1alpha1.TrainingJobSpec, declared map[string]bool) {
	v.workload(s.Command, s.Args, s.Env, &s.Resources, s.Volumes, declared)
	v.securityContext(s.SecurityContext)
	seenMetric := map[string]bool{}
	for i, m := range s.Metrics {
		if !metricName.MatchString(m) {
			v.fail(fmt.Sprintf("spec.metrics[%d]", i), "a metric name is letters, digits, '_', '-' and '|', as the job prints it before '=' (Katib's stdout format)", "invalid metric name %q", m)
		}
		if seenMetric[m] {
			v.fail(fmt.Sprintf("spec.metrics[%d]", i), "list each metric once", "duplicate metric %q", m)
		}
		seenMetric[m] = true
	}
	if n := s.NumNodes; n != nil && (*n < 1 || *n > v1alpha1.MaxNumNodes) {
		v.fail("spec.numNodes", fmt.Sprintf("set the number of workers, 1 to %d", v1alpha1.MaxNumNodes), "numNodes %d out of range", *n)
	}
	if n := s.NumProcPerNode; n != nil && (*n < 1 || *n > 1024) {
		v.fail("spec.numProcPerNode", "set the processes per worker, 1 to 1024 (usually its GPU count)", "numProcPerNode %d out of range", *n)
	}
	if s.BackoffLimit != nil && *s.BackoffLimit < 0 {
		v.fail("spec.backoffLimit", "set 0 (no retries) or more; the Kubernetes default is 6", "negative backoffLimit %d", *s.BackoffLimit)
	}
	if s.ActiveDeadlineSeconds != nil && *s.ActiveDeadlineSeconds <= 0 {
		v.fail("spec.activeDeadlineSeconds", "set a positive number of seconds, or leave it out for no deadline", "activeDeadlineSeconds must be positive, got %d", *s.ActiveDeadlineSeconds)
	} else if s.ActiveDeadlineSeconds != nil && *s.ActiveDeadlineSeconds > MaxSeconds {
		v.fail("spec.activeDeadlineSeconds", fmt.Sprintf("set at most %d seconds (292 years), or leave it out for no deadline", MaxSeconds), "activeDeadlineSeconds %d is too large", *s.ActiveDeadlineSeconds)
	}
	if s.TTLSecondsAfterFinished != nil && *s.TTLSecondsAfterFinished < 0 {
		v.fail("spec.ttlSecondsAfterFinished", "set 0 or more seconds", "negative ttlSecondsAfterFinished %d", *s.TTLSecondsAfterFinished)
	}
	if s.TerminationGracePeriodSeconds != nil && *s.TerminationGracePeriodSeconds < 0 {
		v.fail("spec.terminationGracePeriodSeconds", "set 0 or more seconds", "negative terminationGracePeriodSeconds %d", *s.TerminationGracePeriodSeconds)
	} else if s.TerminationGracePeriodSeconds != nil && *s.TerminationGracePeriodSeconds > MaxSeconds {
		v.fail("spec.terminationGracePeriodSeconds", fmt.Sprintf("set at most %d seconds", MaxSeconds), "terminationGracePeriodSeconds %d is too large", *s.TerminationGracePeriodSeconds)
	}
	if s.PodFailurePolicy != nil {
		for i, r := range s.PodFailurePolicy.Rules {
			p := fmt.Sprintf("spec.podFailurePolicy.rules[%d]", i)
			switch r.Action {
			case v1alpha1.PodFailurePolicyActionFailJob, v1alpha1.PodFailurePolicyActionIgnore, v1alpha1.PodFailurePolicyActionCount:
			default:
				v.fail(p+".action", "valid actions: FailJob, Ignore, Count", "unknown action %q", r.Action)
			}
			if r.OnExitCodes != nil && len(r.OnPodConditions) > 0 {
				v.fail(p, "split it into two rules (batch/v1 allows one of onExitCodes and onPodConditions per rule)", "rule has both onExitCodes and onPodConditions")
				continue
			}
			if r.OnExitCodes == nil {
				if len(r.OnPodConditions) == 0 {
					v.fail(p, "add onExitCodes: {operator: In, values: [42]} or onPodConditions: [{type: DisruptionTarget}]", "rule has neither onExitCodes nor onPodConditions")
				}
				for j, c := range r.OnPodConditions {
					if c.Type == "" {
						v.fail(fmt.Sprintf("%s.onPodConditions[%d].type", p, j), "name a pod condition type, e.g. DisruptionTarget", "type is empty")
					}
					if c.Status != "" && c.Status != "True" && c.Status != "False" && c.Status != "Unknown" {
						v.fail(fmt.Sprintf("%s.onPodConditions[%d].status", p, j), "valid statuses: True (default), False, Unknown", "unknown status %q", c.Status)
					}
				}
				continue
			}
			if r.OnExitCodes.Operator != "In" && r.OnExitCodes.Operator != "NotIn" {
				v.fail(p+".onExitCodes.operator", "valid operators: In, NotIn", "unknown operator %q", r.OnExitCodes.Operator)
			}
			if len(r.OnExitCodes.Values) == 0 {
				v.fail(p+".onExitCodes.values", "list at least one exit code", "values is empty")
			}
			for j, c := range r.OnExitCodes.Values {
				if c == 0 && r.OnExitCodes.Operator == "In" {
					v.fail(fmt.Sprintf("%s.onExitCodes.values[%d]", p, j), "exit code 0 is success; batch/v1 forbids it with operator In", "exit code 0 with operator In")
				}
			}
		}
	}
}

func (v *validator) inferenceService(s *v1alpha1.InferenceServiceSpec, declared map[string]bool) {
	v.workload(s.Command, s.Args, s.Env, &s.Resources, s.Volumes, declared)
	v.securityContext(s.SecurityContext)
	if s.Port < 1 || s.Port > 65535 {
		v.fail("spec.port", "set the port the server listens on, 1–65535; locally it is published as $(PORT)", "port %d out of range", s.Port)
	}
	if s.Replicas != nil && *s.Replicas < 0 {
		v.fail("spec.replicas", "set 0 or more replicas", "negative replicas %d", *s.Replicas)
	}
	if a := s.Autoscaling; a != nil {
		minR := int32(1)
		if a.MinReplicas != nil {
			minR = *a.MinReplicas
			if minR < 1 {
				v.fail("spec.autoscaling.minReplicas", "set minReplicas to 1 or more", "minReplicas %d below 1", minR)
			}
		}
		if a.MaxReplicas < 1 {
			v.fail("spec.autoscaling.maxReplicas", "set maxReplicas to 1 or more", "maxReplicas is required and must be at least 1")
		} else if a.MaxReplicas < minR {
			v.fail("spec.autoscaling.maxReplicas", "make maxReplicas at least minReplicas", "maxReplicas %d below minReplicas %d", a.MaxReplicas, minR)
		}
		t := a.Target
		switch {
		case t.CPUUtilization == nil && t.Concurrency == nil:
			v.fail("spec.autoscaling.target", "set target: {cpuUtilization: 70} or target: {concurrency: 4}", "no autoscaling target")
		case t.CPUUtilization != nil && t.Concurrency != nil:
			v.fail("spec.autoscaling.target", "set one of cpuUtilization or concurrency", "two autoscaling targets")
		case t.CPUUtilization != nil:
			if *t.CPUUtilization < 1 {
				v.fail("spec.autoscaling.target.cpuUtilization", "set a percentage of the CPU request, e.g. 70", "cpuUtilization must be positive")
			}
			if s.Resources.CPU == nil {
				v.fail("spec.autoscaling.target.cpuUtilization", `set spec.resources.cpu (e.g. "500m"): CPU utilisation is measured against the CPU request, as the HorizontalPodAutoscaler does`, "a CPU target needs a CPU request")
			}
		case t.Concurrency != nil:
			if *t.Concurrency < 1 {
				v.fail("spec.autoscaling.target.concurrency", "set the in-flight requests per replica to aim for, e.g. 4", "concurrency must be positive")
			}
		}
		if b := a.Behavior; b != nil {
			v.rules("spec.autoscaling.behavior.scaleUp", b.ScaleUp)
			v.rules("spec.autoscaling.behavior.scaleDown", b.ScaleDown)
		}
	}
	for name, p := range map[string]*v1alpha1.Probe{"readinessProbe": s.ReadinessProbe, "livenessProbe": s.LivenessProbe, "startupProbe": s.StartupProbe} {
		if p == nil {
			continue
		}
		path := "spec." + name
		if !strings.HasPrefix(p.HTTPGet.Path, "/") {
			v.fail(path+".httpGet.path", "set an absolute HTTP path such as /v2/health/ready", "httpGet.path %q must start with /", p.HTTPGet.Path)
		}
		for f, val := range map[string]int32{"initialDelaySeconds": p.InitialDelaySeconds, "periodSeconds": p.PeriodSeconds, "timeoutSeconds": p.TimeoutSeconds, "failureThreshold": p.FailureThreshold, "successThreshold": p.SuccessThreshold} {
			if val < 0 {
				v.fail(path+"."+f, "set 0 or more (0 takes the kubelet's default)", "negative %s %d", f, val)
			}
		}
	}
	if s.TerminationGracePeriodSeconds != nil && *s.TerminationGracePeriodSeconds < 0 {
		v.fail("spec.terminationGracePeriodSeconds", "set 0 or more seconds", "negative terminationGracePeriodSeconds %d", *s.TerminationGracePeriodSeconds)
	} else if s.TerminationGracePeriodSeconds != nil && *s.TerminationGracePeriodSeconds > MaxSeconds {
		v.fail("spec.terminationGracePeriodSeconds", fmt.Sprintf("set at most %d seconds", MaxSeconds), "terminationGracePeriodSeconds %d is too large", *s.TerminationGracePeriodSeconds)
	}
	if st := s.Strategy; st != nil {
		for f, val := range map[string]string{"maxSurge": st.MaxSurge, "maxUnavailable": st.MaxUnavailable} {
			if val == "" {
				continue
			}
			if _, err := ParseIntOrPercent(val); err != nil {
				v.fail("spec.strategy."+f, `write a replica count such as 1 or a percentage such as "25%"`, "invalid %s %q", f, val)
			}
		}
	}
}

func (v *validator) rules(path string, r *v1alpha1.ScalingRules) {
	if r == nil {
		return
	}
	if r.StabilizationWindowSeconds != nil && (*r.StabilizationWindowSeconds < 0 || *r.StabilizationWindowSeconds > 3600) {
		v.fail(path+".stabilizationWindowSeconds", "set 0–3600 seconds (autoscaling/v2)", "stabilizationWindowSeconds %d out of range", *r.StabilizationWindowSeconds)
	}
	switch r.SelectPolicy {
	case "", "Max", "Min", "Disabled":
	default:
		v.fail(path+".selectPolicy", "valid values: Max, Min, Disabled", "unknown selectPolicy %q", r.SelectPolicy)
	}
	if r.Tolerance != nil && r.Tolerance.Sign() < 0 {
		v.fail(path+".tolerance", "set a fraction of 0 or more, e.g. 0.05 for 5 % (autoscaling/v2)", "negative tolerance %s", r.Tolerance.String())
	}
	for i, p := range r.Policies {
		pp := fmt.Sprintf("%s.policies[%d]", path, i)
		if p.Type != "Pods" && p.Type != "Percent" {
			v.fail(pp+".type", "valid types: Pods, Percent", "unknown policy type %q", p.Type)
		}
		if p.Value <= 0 {
			v.fail(pp+".value", "set a positive value", "value must be positive")
		}
		if p.PeriodSeconds <= 0 || p.PeriodSeconds > 1800 {
			v.fail(pp+".periodSeconds", "set 1–1800 seconds (autoscaling/v2)", "periodSeconds %d out of range", p.PeriodSeconds)
		}
	}
}

func (v *validator) volume(s *v1alpha1.VolumeSpec) {
	for i, m := range s.AccessModes {
		switch m {
		case "ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod":
		default:
			v.fail(fmt.Sprintf("spec.accessModes[%d]", i), "valid modes: ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod", "unknown access mode %q", m)
		}
	}
	if s.Size != nil && s.Size.IsZero() {
		v.fail("spec.size", `set a positive size such as "1Gi"`, "size is zero")
	}
}

// ParseIntOrPercent parses a rolling-update bound: "25%" or "1". It returns
// the number and whether it is a percentage encoded as negative-free pair.
func ParseIntOrPercent(s string) (IntOrPercent, error) {
	var n int
	if strings.HasSuffix(s, "%") {
		if _, err := fmt.Sscanf(strings.TrimSuffix(s, "%"), "%d", &n); err != nil || n < 0 {
			return IntOrPercent{}, fmt.Errorf("invalid percentage %q", s)
		}
		return IntOrPercent{Value: n, Percent: true}, nil
	}
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != s {
		return IntOrPercent{}, fmt.Errorf("invalid count %q", s)
	}
	return IntOrPercent{Value: n}, nil
}

// IntOrPercent is a replica count or a percentage of the desired replicas,
// as apps/v1 maxSurge/maxUnavailable.
type IntOrPercent struct {
	Value   int
	Percent bool
}

// Scaled resolves the bound against total replicas, rounding up for surge
// (roundUp true) and down for unavailable, as the Deployment controller does.
func (p IntOrPercent) Scaled(total int, roundUp bool) int {
	if !p.Percent {
		return p.Value
	}
	if roundUp {
		return (p.Value*total + 99) / 100
	}
	return p.Value * total / 100
}
