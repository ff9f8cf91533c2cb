package lint_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
	"github.com/petrel-dev/petrel/internal/lint/rules"
)

// newLinter returns a linter over the whole catalogue.
func newLinter(t testing.TB, opts lint.Options) *lint.Linter {
	t.Helper()
	l, err := lint.New(rules.All(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// lintString lints one in-memory file named name.
func lintString(t testing.TB, name, data string) *lint.Result {
	t.Helper()
	return newLinter(t, lint.Options{}).Lint([]lint.Source{{Name: name, Data: []byte(data)}})
}

// lintPaths lints files and directories as the command does.
func lintPaths(t testing.TB, paths ...string) *lint.Result {
	t.Helper()
	srcs, errs := lint.ReadSources(paths, strings.NewReader(""))
	return newLinter(t, lint.Options{}).Lint(srcs, errs...)
}

func findingsOf(res *lint.Result, rule string) []backend.Finding {
	var out []backend.Finding
	for _, f := range res.Findings {
		if f.RuleID == rule {
			out = append(out, f)
		}
	}
	return out
}

func dump(res *lint.Result) string {
	var b strings.Builder
	for _, f := range res.Findings {
		fmt.Fprintf(&b, "  %s:%d:%d %s %s %s: %s\n", f.File, f.Line, f.Col, f.Severity, f.RuleID, f.Object, f.Message)
	}
	return b.String()
}

// TestCases checks that every lint case of shared/cases/failure-cases.md
// gives its expected finding, at the line of the offending field.
func TestCases(t *testing.T) {
	tests := []struct {
		id       string
		rule     string
		severity backend.Severity
		object   string
		line     int
		contains string
	}{
		{"C02", "PTL-GPU-006", backend.SeverityWarning, "DaemonSet/nvidia-device-plugin-daemonset", 13, "does not tolerate the nvidia.com/gpu:NoSchedule taint"},
		{"C02", "PTL-GPU-003", backend.SeverityError, "Pod/legacy-gpu-train", 27, "alpha.kubernetes.io/nvidia-gpu is the legacy GPU resource"},
		{"C05", "PTL-GPU-005", backend.SeverityWarning, "Deployment/training", 15, "does not tolerate the nvidia.com/gpu:NoSchedule taint"},
		{"C05", "PTL-KIND-001", backend.SeverityWarning, "Deployment/training", 13, "looks like a training run"},
		{"C06", "PTL-GPU-001", backend.SeverityError, "Job/train-gpu", 15, "1 nvidia.com/gpu under requests only"},
		{"C07", "PTL-QTA-001", backend.SeverityError, "ResourceQuota/team-gpu-quota", 10, "requests.nvidia.com/gpu"},
		{"C08", "PTL-QTA-002", backend.SeverityError, "Job/notebook-task", 14, "requires limits.cpu,limits.memory,requests.cpu,requests.memory"},
		{"C09", "PTL-HPA-001", backend.SeverityError, "Deployment/tf-model", 15, `container "tfserving" has no cpu request`},
		{"C10", "PTL-HPA-003", backend.SeverityInfo, "HorizontalPodAutoscaler/worker", 6, "no scale-up stabilization window"},
		{"C11", "PTL-SHM-001", backend.SeverityWarning, "Job/train", 11, "no memory-backed /dev/shm"},
		{"C12", "PTL-JOB-001", backend.SeverityWarning, "Job/failed-job", 10, "backoffLimit 2 does not reliably stop"},
		{"C13", "PTL-JOB-001", backend.SeverityWarning, "Job/nightly-train-1551540600", 9, "logs is deleted when the Job fails"},
		{"C14", "PTL-JOB-004", backend.SeverityWarning, "Job/finetune-llm", 7, "ttlSecondsAfterFinished 60"},
		{"C15", "PTL-STO-001", backend.SeverityWarning, "Deployment/sklearn-pvc-predictor", 29, "also mounted by Pod/model-store-pod"},
		{"C16", "PTL-SRV-002", backend.SeverityWarning, "Deployment/triton", 17, "livenessProbe but no startupProbe"},
		{"C17", "PTL-SRV-001", backend.SeverityWarning, "Deployment/doc-api", 14, "Service doc-api sends it traffic"},
		{"C18", "PTL-MEM-003", backend.SeverityWarning, "Pod/bert-v2-predictor-00003-abcde", 13, "memory limit of 500Mi"},
		{"C19", "PTL-MEM-001", backend.SeverityWarning, "Deployment/llm-server", 16, "sets no memory limit"},
	}
	for _, tt := range tests {
		t.Run(tt.id+"/"+tt.rule, func(t *testing.T) {
			file := filepath.Join("testdata", "cases", tt.id+".yaml")
			res := lintPaths(t, file)
			for _, f := range findingsOf(res, tt.rule) {
				if f.Object == tt.object && f.Line == tt.line && f.Severity == tt.severity &&
					strings.Contains(f.Message, tt.contains) && f.File == file && f.Fix != "" {
					return
				}
			}
			t.Errorf("%s: want %s %s on %s at line %d containing %q; got:\n%s", tt.id, tt.severity, tt.rule, tt.object, tt.line, tt.contains, dump(res))
		})
	}
}

// TestCorrectManifestsGiveNoWarnings guards against false positives on
// manifests written the way the rules recommend.
func TestCorrectManifestsGiveNoWarnings(t *testing.T) {
	res := lintPaths(t, filepath.Join("testdata", "good"))
	if res.Files < 6 || res.Objects < 15 {
		t.Fatalf("read %d files, %d objects; want the whole good set", res.Files, res.Objects)
	}
	for _, f := range res.Findings {
		if f.Severity != backend.SeverityInfo {
			t.Errorf("false positive: %s:%d:%d %s %s: %s", f.File, f.Line, f.Col, f.RuleID, f.Object, f.Message)
		}
	}
}

// TestProjectExamplesGiveNoWarnings lints the project's own examples.
func TestProjectExamplesGiveNoWarnings(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "*.yaml"))
	more, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "*.yml"))
	files = append(files, more...)
	if len(files) == 0 {
		t.Skip("examples/ holds no YAML specs yet")
	}
	res := lintPaths(t, files...)
	if res.Objects == 0 {
		t.Fatalf("no objects read from %v", files)
	}
	for _, f := range res.Findings {
		if f.Severity != backend.SeverityInfo {
			t.Errorf("example gives a finding: %s:%d:%d %s %s: %s", f.File, f.Line, f.Col, f.RuleID, f.Object, f.Message)
		}
	}
}

func TestCatalogueIsComplete(t *testing.T) {
	l := newLinter(t, lint.Options{})
	seen := map[string]bool{}
	for _, r := range l.Rules() {
		if seen[r.ID] {
			t.Errorf("duplicate rule %s", r.ID)
		}
		seen[r.ID] = true
		if r.Summary == "" || r.Why == "" || r.Fix == "" || len(r.Kinds) == 0 || r.Area() == "" {
			t.Errorf("rule %s lacks catalogue data: %+v", r.ID, r)
		}
		switch r.Severity {
		case backend.SeverityError, backend.SeverityWarning, backend.SeverityInfo:
		default:
			t.Errorf("rule %s has severity %q", r.ID, r.Severity)
		}
	}
	for _, area := range []string{"GPU", "QTA", "JOB", "KIND", "SRV", "HPA", "STO", "MEM", "SHM", "IMG", "IN"} {
		found := false
		for id := range seen {
			if strings.HasPrefix(id, "PTL-"+area+"-") {
				found = true
			}
		}
		if !found {
			t.Errorf("no rule in area %s", area)
		}
	}
}

func TestNewRejectsUnknownRuleAndSeverity(t *testing.T) {
	if _, err := lint.New(rules.All(), lint.Options{Disable: []string{"PTL-NOPE-001"}}); err == nil || !strings.Contains(err.Error(), "--list") {
		t.Errorf("unknown rule: err = %v", err)
	}
	if _, err := lint.New(rules.All(), lint.Options{Severity: map[string]backend.Severity{"PTL-IMG-001": "fatal"}}); err == nil {
		t.Error("bad severity accepted")
	}
}

func TestReadSourcesWalksDirectoriesAndReportsMissing(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "sub", "deeper"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, ".git"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("a: 1\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "sub", "deeper", "b.yml"), []byte("b: 1\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "sub", "notes.txt"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(dir, ".git", "c.yaml"), []byte("c: 1\n"), 0o644))
	srcs, errs := lint.ReadSources([]string{dir, filepath.Join(dir, "missing.yaml"), "-"}, strings.NewReader("kind: x\n"))
	var names []string
	for _, s := range srcs {
		names = append(names, strings.TrimPrefix(s.Name, dir))
	}
	want := "/a.yaml /sub/deeper/b.yml <stdin>"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("sources = %q, want %q", got, want)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "missing.yaml") {
		t.Errorf("read errors = %v", errs)
	}
}
