package spec

import (
	"errors"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

const good = `apiVersion: petrel.dev/v1alpha1
kind: Volume
metadata: {name: data}
spec: {size: 1Gi, accessModes: [ReadWriteOnce], source: data}
---
apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata:
  name: train
  labels: {team: ml}
spec:
  command: [python3, train.py]
  args: ["--data", "$(DATA_DIR)/x.csv"]
  env: [{name: EPOCHS, value: "3"}]
  resources: {cpu: 500m, memory: 1Gi, gpu: 1}
  volumes: [{name: data, mountPath: /data, readOnly: true, pathEnv: DATA_DIR}]
  backoffLimit: 2
  activeDeadlineSeconds: 600
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes: {operator: In, values: [42]}
`

func TestParseValidSpec(t *testing.T) {
	docs, err := Parse("/work/x/train.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("%d documents", len(docs))
	}
	j := docs[1].Object.(*v1alpha1.TrainingJob)
	if j.Spec.Resources.CPU.MilliValue() != 500 || j.Spec.Resources.Memory.Value() != 1<<30 || j.Spec.Resources.GPUName() != "nvidia.com/gpu" {
		t.Fatalf("resources %+v", j.Spec.Resources)
	}
	if j.Spec.EffectiveBackoffLimit() != 2 || *j.Spec.ActiveDeadlineSeconds != 600 || j.Spec.PodFailurePolicy.Rules[0].OnExitCodes.Values[0] != 42 {
		t.Fatalf("spec %+v", j.Spec)
	}
	if docs[1].Dir != "/work/x" {
		t.Fatalf("dir %q", docs[1].Dir)
	}
	if err := Validate(docs); err != nil {
		t.Fatal(err)
	}
}

func TestDefaults(t *testing.T) {
	var s v1alpha1.TrainingJobSpec
	if s.EffectiveBackoffLimit() != 6 || s.EffectiveGracePeriod() != 30 {
		t.Fatal("Kubernetes defaults: backoffLimit 6, terminationGracePeriodSeconds 30")
	}
}

// Every class of bad input gives file:line:col, the field path and a fix.
func TestBadInputIsReportedWithPositionFieldAndFix(t *testing.T) {
	job := func(body string) string {
		return "apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: j}\nspec:\n" + body
	}
	cases := []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"syntax error", "apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\n  bad: [", []string{"f.yaml:", "YAML syntax error"}},
		{"unknown field with suggestion", job("  command: [x]\n  backofLimit: 3\n"), []string{"f.yaml:6:3:", "spec.backofLimit", `unknown field "backofLimit"`, `did you mean "backoffLimit"`}},
		{"wrong type int", job("  command: [x]\n  backoffLimit: three\n"), []string{"f.yaml:6:17:", "spec.backoffLimit", "expected an integer", "whole number"}},
		{"wrong type string", job("  command: [x]\n  env: [{name: A, value: 1}]\n"), []string{"spec.env[0].value", "expected a string", `quote it: "1"`}},
		{"list expected", job("  command: python3 train.py\n"), []string{"f.yaml:5:12:", "spec.command", "expected a list"}},
		{"bad quantity", job("  command: [x]\n  resources: {memory: 4GB}\n"), []string{"f.yaml:6:23:", "spec.resources.memory", `invalid quantity "4GB"`, "4Gi"}},
		{"negative quantity", job("  command: [x]\n  resources: {cpu: -1}\n"), []string{"spec.resources.cpu", "negative"}},
		{"negative backoffLimit", job("  command: [x]\n  backoffLimit: -1\n"), []string{"f.yaml:6:17:", "spec.backoffLimit", "negative backoffLimit -1", "default is 6"}},
		{"negative gpu", job("  command: [x]\n  resources: {gpu: -2}\n"), []string{"spec.resources.gpu", "negative GPU count"}},
		{"zero deadline", job("  command: [x]\n  activeDeadlineSeconds: 0\n"), []string{"spec.activeDeadlineSeconds", "must be positive"}},
		{"invalid name", "apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: My_Job}\nspec: {command: [x]}\n", []string{"f.yaml:3:18:", "metadata.name", "DNS-1123"}},
		{"missing command", job("  image: x\n"), []string{"spec.command", "command is required"}},
		{"unknown kind", "apiVersion: petrel.dev/v1alpha1\nkind: TrainJob\nmetadata: {name: j}\n", []string{"f.yaml:2:7:", `unknown kind "TrainJob"`, `did you mean "TrainingJob"`}},
		{"wrong apiVersion", "apiVersion: batch/v1\nkind: Job\n", []string{"f.yaml:1:13:", "apiVersion", "petrel.dev/v1alpha1"}},
		{"duplicate names", job("  command: [x]\n") + "---\n" + job("  command: [y]\n"), []string{"f.yaml:9:18:", `duplicate TrainingJob name "j"`, "first is at f.yaml:3"}},
		{"duplicate field", job("  command: [x]\n  command: [y]\n"), []string{"f.yaml:6:3:", `duplicate field "command"`}},
		{"volume name escaping its directory", job("  command: [x]\n  volumes: [{name: ../../etc, mountPath: /d}]\n"), []string{"spec.volumes[0].name", `invalid volume name "../../etc"`, "cannot name a path"}},
		{"relative mountPath", "apiVersion: petrel.dev/v1alpha1\nkind: Volume\nmetadata: {name: v}\n---\n" + job("  command: [x]\n  volumes: [{name: v, mountPath: data}]\n"), []string{"spec.volumes[0].mountPath", "not absolute"}},
		{"bad failure policy", job("  command: [x]\n  podFailurePolicy: {rules: [{action: Retry, onExitCodes: {operator: In, values: [0]}}]}\n"), []string{`unknown action "Retry"`, "FailJob, Ignore, Count", "exit code 0 with operator In"}},
		{"hpa min above max", "apiVersion: petrel.dev/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec:\n  command: [x]\n  port: 8080\n  resources: {cpu: 1}\n  autoscaling: {minReplicas: 5, maxReplicas: 2, target: {cpuUtilization: 70}}\n", []string{"spec.autoscaling.maxReplicas", "maxReplicas 2 below minReplicas 5"}},
		{"cpu target without request", "apiVersion: petrel.dev/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec:\n  command: [x]\n  port: 8080\n  autoscaling: {maxReplicas: 2, target: {cpuUtilization: 70}}\n", []string{"spec.autoscaling.target.cpuUtilization", "needs a CPU request", "spec.resources.cpu"}},
		{"negative hpa tolerance", "apiVersion: petrel.dev/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec:\n  command: [x]\n  port: 8080\n  autoscaling: {maxReplicas: 2, target: {concurrency: 4}, behavior: {scaleUp: {tolerance: -0.05}}}\n", []string{"spec.autoscaling.behavior.scaleUp.tolerance", "negative quantity"}},
		{"not a mapping", "- a\n- b\n", []string{"f.yaml:1:1:", "document is a list"}},
		// Limits (issue 9): values that overflow or could never reach exec.
		{"deadline overflow", job("  command: [x]\n  activeDeadlineSeconds: 10000000000\n"), []string{"f.yaml:6:26:", "spec.activeDeadlineSeconds", "too large", "9223372036"}},
		{"NUL in env", job("  command: [x]\n  env: [{name: A, value: \"a\\0b\"}]\n"), []string{"spec.env[0].value", "NUL byte"}},
		{"NUL in args", job("  command: [x]\n  args: [\"a\\0b\"]\n"), []string{"spec.args[0]", "NUL byte"}},
		{"huge env value", job("  command: [x]\n  env: [{name: A, value: " + strings.Repeat("x", MaxArgBytes+1) + "}]\n"), []string{"f.yaml:6:", "spec.env[0].value", "over the 131072-byte limit"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err.Error(), w)
				}
			}
		})
	}
}

func TestUndeclaredVolumeIsCheckedAcrossFilesAndTarget(t *testing.T) {
	docs, err := Parse("job.yaml", []byte("apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: j}\nspec:\n  command: [x]\n  volumes: [{name: data, mountPath: /d}]\n"))
	if err != nil {
		t.Fatalf("a file may mount a volume declared elsewhere: %v", err)
	}
	err = Validate(docs)
	if err == nil || !strings.Contains(err.Error(), "job.yaml:6:") || !strings.Contains(err.Error(), `volume "data" is not declared`) || !strings.Contains(err.Error(), "kind: Volume") {
		t.Fatalf("err = %v", err)
	}
	if err := Validate(docs, "data"); err != nil {
		t.Fatalf("a volume that exists on the target: %v", err)
	}
}

func TestIntOrPercent(t *testing.T) {
	p, err := ParseIntOrPercent("25%")
	if err != nil || !p.Percent || p.Scaled(10, true) != 3 || p.Scaled(10, false) != 2 {
		t.Fatalf("25%% of 10: %+v %v", p, err)
	}
	if _, err := ParseIntOrPercent("1.5"); err == nil {
		t.Fatal("1.5 accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("apiVersion: petrel.dev/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec: {command: [x], port: 80, autoscaling: {maxReplicas: 2, target: {concurrency: 4}}}\n"))
	f.Add([]byte("a: [\n"))
	f.Add([]byte("--- &a\nx: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Parse("fuzz.yaml", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %v", err)
			}
			for _, e := range list {
				if e.Pos.Line < 1 || !strings.HasPrefix(e.Error(), "fuzz.yaml:") {
					t.Fatalf("error without a position: %q", e.Error())
				}
			}
			return
		}
		for _, d := range docs {
			if d.Object == nil || d.Object.GetName() == "" {
				t.Fatalf("accepted a document without a name: %q", data)
			}
		}
	})
}

func TestRollingUpdateBoundsTakeCountsAndPercentages(t *testing.T) {
	docs, err := Parse("s.yaml", []byte("apiVersion: petrel.dev/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec:\n  command: [x]\n  port: 8080\n  strategy: {maxSurge: 1, maxUnavailable: \"25%\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	st := docs[0].Object.(*v1alpha1.InferenceService).Spec.Strategy
	if st.MaxSurge != "1" || st.MaxUnavailable != "25%" {
		t.Fatalf("strategy %+v", st)
	}
	if _, err := Parse("s.yaml", []byte("apiVersion: petrel.dev/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec:\n  command: [x]\n  port: 8080\n  strategy: {maxSurge: 1.5}\n")); err == nil || !strings.Contains(err.Error(), "spec.strategy.maxSurge") {
		t.Fatalf("maxSurge 1.5: %v", err)
	}
}

func TestEveryProblemIsReportedInOnePass(t *testing.T) {
	_, err := Parse("f.yaml", []byte("apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: j}\nspec:\n  command: [x]\n  resources: {cpu: -1, memory: 4GB, gpu: -2}\n  backoffLimit: -1\n"))
	for _, want := range []string{"spec.resources.cpu", "spec.resources.memory", "spec.resources.gpu", "spec.backoffLimit"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not report %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "command is required") {
		t.Errorf("a field that failed to decode was judged again: %v", err)
	}
}
