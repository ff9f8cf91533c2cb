package lint_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

// A stream mixing a broken document, fragments, unknown kinds and good
// objects: each problem is reported at its own position and every object
// after it is still checked.
const mixed = `apiVersion: v1
kind: Pod
metadata: {name: first}
spec:
  containers: [{name: c, image: a}]
---
this: is: not: yaml
  - [unclosed
---
- just
- a list
---
replicas: 3
---
apiVersion: apps/v1
kind: Deploymnet
metadata: {name: typo}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
---
apiVersion: batch/v1
kind: Deployment
metadata: {name: wrong-group}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad-replicas}
spec:
  replicas: three
---
apiVersion: petrel.dev/v1alpha1
kind: TrainJob
metadata: {name: t}
--- # the last document is still read
apiVersion: v1
kind: Pod
metadata: {name: last}
spec:
  containers: [{name: c, image: b}]
`

func TestInputProblemsAreReportedPerDocument(t *testing.T) {
	res := lintString(t, "mixed.yaml", mixed)
	want := []struct {
		rule     string
		severity backend.Severity
		line     int
		contains string
	}{
		{"PTL-IMG-001", backend.SeverityWarning, 5, "image a without a tag"},
		{"PTL-IN-001", backend.SeverityError, 7, "not valid YAML"},
		{"PTL-IN-002", backend.SeverityError, 10, "is a list"},
		{"PTL-IN-002", backend.SeverityError, 13, "no apiVersion or kind"},
		{"PTL-IN-003", backend.SeverityError, 16, `did you mean "Deployment"`},
		{"PTL-IN-003", backend.SeverityInfo, 20, "ConfigMap (v1) is not checked"},
		{"PTL-IN-003", backend.SeverityError, 23, `apiVersion "batch/v1" does not serve kind Deployment`},
		{"PTL-IN-004", backend.SeverityError, 31, "spec.replicas"},
		{"PTL-IN-005", backend.SeverityError, 34, `unknown kind "TrainJob"`},
		{"PTL-IMG-001", backend.SeverityWarning, 41, "image b without a tag"},
	}
	if len(res.Findings) != len(want) {
		t.Fatalf("got %d findings, want %d:\n%s", len(res.Findings), len(want), dump(res))
	}
	for i, w := range want {
		f := res.Findings[i]
		if f.RuleID != w.rule || f.Severity != w.severity || f.Line != w.line || !strings.Contains(f.Message, w.contains) || f.File != "mixed.yaml" {
			t.Errorf("finding %d = %s %s line %d %q, want %s %s line %d containing %q", i, f.RuleID, f.Severity, f.Line, f.Message, w.rule, w.severity, w.line, w.contains)
		}
	}
	if !res.Unreadable {
		t.Error("a YAML syntax error must make the result unreadable (exit 2)")
	}
	if res.Objects != 2 {
		t.Errorf("objects = %d, want the 2 good pods", res.Objects)
	}
}

func TestSchemaErrorsPointAtTheField(t *testing.T) {
	res := lintString(t, "s.yaml", `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: a
    image: a:1
  - name: b
    image: b:1
    ports:
    - containerPort: 80
      hostPort: "eighty"
`)
	fs := findingsOf(res, "PTL-IN-004")
	if len(fs) != 1 || fs[0].Line != 12 || fs[0].Col != 7 || !strings.Contains(fs[0].Message, "hostPort") {
		t.Fatalf("want PTL-IN-004 at 12:7, got:\n%s", dump(res))
	}
}

func TestPositionsAreThoseOfTheWholeFile(t *testing.T) {
	data := "# leading comment\n---\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: x:latest\n"
	res := lintString(t, "pos.yaml", data)
	fs := findingsOf(res, "PTL-IMG-001")
	if len(fs) != 1 || fs[0].Line != 10 || fs[0].Col != 5 {
		t.Fatalf("want PTL-IMG-001 at 10:5, got:\n%s", dump(res))
	}
	if len(fs[0].Evidence) != 1 || fs[0].Evidence[0] != "spec.containers[0].image: x:latest" {
		t.Errorf("evidence = %q", fs[0].Evidence)
	}
}

func TestListItemsAreObjects(t *testing.T) {
	res := lintString(t, "list.yaml", `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
  spec: {containers: [{name: c, image: "x:latest"}]}
`)
	fs := findingsOf(res, "PTL-IMG-001")
	if len(fs) != 1 || fs[0].Object != "Pod/a" || fs[0].Line != 7 {
		t.Fatalf("want PTL-IMG-001 on Pod/a at line 7, got:\n%s", dump(res))
	}
}

func TestTypedListItemsTakeTheListsKind(t *testing.T) {
	res := lintString(t, "deployments.yaml", `apiVersion: apps/v1
kind: DeploymentList
items:
- metadata: {name: web}
  spec:
    selector: {matchLabels: {app: web}}
    template:
      metadata: {labels: {app: web}}
      spec: {containers: [{name: c, image: "web:latest"}]}
`)
	fs := findingsOf(res, "PTL-IMG-001")
	if len(fs) != 1 || fs[0].Object != "Deployment/web" || fs[0].Line != 9 {
		t.Fatalf("want PTL-IMG-001 on Deployment/web at line 9, got:\n%s", dump(res))
	}
}

func TestDisableByOptionAnnotationAndSeverityOverride(t *testing.T) {
	data := `apiVersion: v1
kind: Pod
metadata:
  name: quiet
  annotations: {petrel.dev/lint-disable: "PTL-IMG-001, PTL-MEM-001"}
spec:
  containers: [{name: c, image: "x:latest", resources: {requests: {memory: 1Gi}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: loud}
spec:
  containers: [{name: c, image: "x:latest", resources: {requests: {memory: 1Gi}}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: silent
  annotations: {petrel.dev/lint-disable: all}
spec:
  containers: [{name: c, image: "x:latest", resources: {requests: {memory: 1Gi}}}]
`
	objects := func(res *lint.Result, rule string) string {
		var names []string
		for _, f := range findingsOf(res, rule) {
			names = append(names, f.Object+"/"+string(f.Severity))
		}
		return strings.Join(names, ",")
	}
	res := lintString(t, "d.yaml", data)
	if got := objects(res, "PTL-IMG-001"); got != "Pod/loud/warning" {
		t.Errorf("annotation: PTL-IMG-001 on %q, want only Pod/loud", got)
	}
	if got := objects(res, "PTL-MEM-001"); got != "Pod/loud/warning" {
		t.Errorf("annotation: PTL-MEM-001 on %q, want only Pod/loud", got)
	}
	l := newLinter(t, lint.Options{Disable: []string{"PTL-IMG-001"}, Severity: map[string]backend.Severity{"PTL-MEM-001": backend.SeverityError}})
	res = l.Lint([]lint.Source{{Name: "d.yaml", Data: []byte(data)}})
	if got := objects(res, "PTL-IMG-001"); got != "" {
		t.Errorf("--disable: PTL-IMG-001 still on %q", got)
	}
	if got := objects(res, "PTL-MEM-001"); got != "Pod/loud/error" {
		t.Errorf("severity override: PTL-MEM-001 = %q, want Pod/loud/error", got)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/.petrel-lint.yaml"
	write := func(s string) {
		t.Helper()
		if err := writeFile(path, s); err != nil {
			t.Fatal(err)
		}
	}
	write("disable: [PTL-IMG-001]\nseverity: {PTL-MEM-002: error}\n")
	c, err := lint.LoadConfig(path, true)
	if err != nil || len(c.Disable) != 1 || c.Severity["PTL-MEM-002"] != backend.SeverityError {
		t.Fatalf("config = %+v, %v", c, err)
	}
	write("disabled: [PTL-IMG-001]\n")
	if _, err := lint.LoadConfig(path, true); err == nil || !strings.Contains(err.Error(), "valid keys") {
		t.Errorf("misspelt key: err = %v", err)
	}
	if c, err := lint.LoadConfig(dir+"/absent.yaml", false); err != nil || len(c.Disable) != 0 {
		t.Errorf("optional missing config: %+v, %v", c, err)
	}
	if _, err := lint.LoadConfig(dir+"/absent.yaml", true); err == nil {
		t.Error("required missing config accepted")
	}
}

func TestOutputs(t *testing.T) {
	res := lintPaths(t, "testdata/cases/C06.yaml")
	l := newLinter(t, lint.Options{})

	var text bytes.Buffer
	if err := lint.WriteText(&text, res, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "testdata/cases/C06.yaml:15:13: error PTL-GPU-001 Job/train-gpu: ") ||
		!strings.Contains(text.String(), "\n    fix: set resources.limits[nvidia.com/gpu]: 1") || strings.Contains(text.String(), "\x1b[") {
		t.Errorf("plain text output:\n%s", text.String())
	}
	text.Reset()
	if err := lint.WriteText(&text, res, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "\x1b[31merror\x1b[0m") {
		t.Errorf("coloured output lacks a red severity:\n%q", text.String())
	}

	var js bytes.Buffer
	if err := lint.WriteJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Findings []backend.Finding `json:"findings"`
		Summary  struct {
			Errors, Warnings, Objects int
			Readable                  bool
		} `json:"summary"`
	}
	if err := json.Unmarshal(js.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != len(res.Findings) || rep.Summary.Errors != 1 || rep.Summary.Objects != 1 || !rep.Summary.Readable {
		t.Errorf("json report: %s", js.String())
	}

	var sarif bytes.Buffer
	if err := lint.WriteSARIF(&sarif, res, l.Rules(), "v0"); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID                   string `json:"id"`
						DefaultConfiguration struct{ Level string }
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Level     string `json:"level"`
				Message   struct{ Text string }
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine, StartColumn int }
					}
				}
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(sarif.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) != len(res.Findings) {
		t.Fatalf("sarif: %s", sarif.String())
	}
	run := log.Runs[0]
	found := false
	for _, r := range run.Results {
		if run.Tool.Driver.Rules[r.RuleIndex].ID != r.RuleID {
			t.Errorf("result %s points at rule %d (%s)", r.RuleID, r.RuleIndex, run.Tool.Driver.Rules[r.RuleIndex].ID)
		}
		if r.RuleID == "PTL-GPU-001" {
			found = true
			loc := r.Locations[0].PhysicalLocation
			if r.Level != "error" || loc.ArtifactLocation.URI != "testdata/cases/C06.yaml" || loc.Region.StartLine != 15 || loc.Region.StartColumn != 13 ||
				!strings.Contains(r.Message.Text, "Fix: ") {
				t.Errorf("sarif result: %+v", r)
			}
		}
	}
	if !found {
		t.Error("sarif lacks the PTL-GPU-001 result")
	}
}

func TestObjectsCreatedByAControllerInTheSetAreNotCheckedTwice(t *testing.T) {
	data := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "web:latest"}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-5d8f
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, controller: true, uid: "1"}]
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "web:latest"}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-5d8f-abcde
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f, controller: true, uid: "2"}]
spec: {containers: [{name: c, image: "web:latest"}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: orphan-of-absent-job
  ownerReferences: [{apiVersion: batch/v1, kind: Job, name: gone, controller: true, uid: "3"}]
spec: {containers: [{name: c, image: "web:latest"}]}
`
	res := lintString(t, "dump.yaml", data)
	var objs []string
	for _, f := range findingsOf(res, "PTL-IMG-001") {
		objs = append(objs, f.Object)
	}
	if got := strings.Join(objs, " "); got != "Deployment/web Pod/orphan-of-absent-job" {
		t.Errorf("PTL-IMG-001 on %q, want the Deployment and the pod whose owner is not in the input", got)
	}
}

func TestPetrelSpecValidation(t *testing.T) {
	data := `apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c, image: "x:1"}]}
---
apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata: {name: Bad_Name}
spec:
  comand: [python3, train.py]
---
apiVersion: petrel.dev/v1alpha1
kind: InferenceService
metadata: {name: s}
spec:
  command: [python3, serve.py]
  port: 8080
  readinessProbe: {httpGet: {path: /ready}}
  autoscaling: {maxReplicas: 3, target: {cpuUtilization: 60}}
`
	res := lintString(t, "p.yaml", data)
	var got []string
	for _, f := range findingsOf(res, "PTL-IN-005") {
		got = append(got, fmt.Sprintf("%d:%d %s", f.Line, f.Col, f.Message))
	}
	joined := strings.Join(got, "\n")
	if !strings.Contains(joined, `10:3 spec.comand: unknown field "comand"`) {
		t.Errorf("unknown field not reported at 10:3:\n%s", joined)
	}
	if strings.Contains(joined, "cpuUtilization") {
		t.Errorf("PTL-IN-005 restates what PTL-HPA-001 says:\n%s", joined)
	}
	if len(findingsOf(res, "PTL-HPA-001")) != 1 {
		t.Errorf("PTL-HPA-001 missing:\n%s", dump(res))
	}
	for _, f := range findingsOf(res, "PTL-IN-005") {
		if f.Object != "TrainingJob/Bad_Name" {
			t.Errorf("finding on %q, want TrainingJob/Bad_Name", f.Object)
		}
	}
}

func TestOperatorPodTemplatesAreChecked(t *testing.T) {
	data := `apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {name: ddp}
spec:
  pytorchReplicaSpecs:
    Worker:
      replicas: 4
      template:
        spec:
          volumes: [{name: data, persistentVolumeClaim: {claimName: dataset}}]
          containers:
          - name: pytorch
            image: example/ddp:1.0
            resources: {limits: {nvidia.com/gpu: 1}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: dataset}
spec: {accessModes: [ReadWriteOnce]}
---
apiVersion: jobset.x-k8s.io/v1alpha2
kind: JobSet
metadata: {name: js}
spec:
  replicatedJobs:
  - name: trainer
    replicas: 2
    template:
      spec:
        template:
          spec:
            restartPolicy: OnFailure
            containers: [{name: c, image: "example/t:1"}]
---
apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata: {name: vllm}
spec:
  replicas: 2
  leaderWorkerTemplate:
    size: 2
    workerTemplate:
      spec:
        containers:
        - name: vllm
          image: vllm/vllm-openai:v0.6.0
          ports: [{containerPort: 8000}]
---
apiVersion: kubeflow.org/v1
kind: TFJob
metadata: {name: bad}
spec:
  tfReplicaSpecs:
    Worker:
      template:
        spec:
          containers: "not a list"
`
	res := lintString(t, "ops.yaml", data)
	want := map[string]string{
		"PTL-GPU-005": "PyTorchJob/ddp@14",
		"PTL-SHM-001": "PyTorchJob/ddp@12",
		"PTL-STO-001": "PyTorchJob/ddp@10",
		"PTL-JOB-001": "JobSet/js@32",
		"PTL-SRV-001": "LeaderWorkerSet/vllm@45",
		"PTL-IN-004":  "TFJob/bad@57",
	}
	for rule, where := range want {
		fs := findingsOf(res, rule)
		if len(fs) != 1 || fmt.Sprintf("%s@%d", fs[0].Object, fs[0].Line) != where {
			t.Errorf("%s: want one finding at %s, got:\n%s", rule, where, dump(res))
		}
	}
	if fs := findingsOf(res, "PTL-STO-001"); len(fs) == 1 && !strings.Contains(fs[0].Message, "runs 4 pods") {
		t.Errorf("PTL-STO-001 message %q", fs[0].Message)
	}
	if len(findingsOf(res, "PTL-JOB-003")) != 0 {
		t.Error("JobSet child Jobs are bounded by the JobSet, not by backoffLimit")
	}
}
