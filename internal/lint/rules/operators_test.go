package rules_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
	"github.com/petrel-dev/petrel/internal/lint/rules"
)

// TestOperatorExamplesHaveNoErrors lints manifests copied unchanged from
// the example folders of JobSet, LeaderWorkerSet, KubeRay, Kubeflow
// Trainer (PyTorchJob, TFJob, TrainJob) and KServe (each file names its
// source and licence). Those projects' controllers and webhooks accept
// them, so an error from lint is a false error that blocks CI: warnings
// (advice such as a /dev/shm mount) are allowed, errors are not.
func TestOperatorExamplesHaveNoErrors(t *testing.T) {
	dir := filepath.Join("..", "testdata", "operators")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) < 15 {
		t.Fatalf("want the operator examples in %s, found %d (%v)", dir, len(files), err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "# Source: https://github.com/") || !strings.Contains(string(data), "# Licence: ") {
			t.Errorf("%s does not start with its source URL and licence", f)
		}
	}
	srcs, readErrs := lint.ReadSources([]string{dir}, nil)
	if len(readErrs) > 0 {
		t.Fatal(readErrs)
	}
	l, err := lint.New(rules.All(), lint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := l.Lint(srcs)
	for _, f := range res.Findings {
		if f.Severity == backend.SeverityError {
			t.Errorf("false error on an operator example: %s %s %s: %s", f.File, f.RuleID, f.Object, f.Message)
		}
	}
}
