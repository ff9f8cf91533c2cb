package render

import (
	"bytes"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/cli/factory"
)

func TestNewCmdParsesFlags(t *testing.T) {
	f := &factory.Factory{IO: &factory.IOStreams{}, Namespace: "team-a"}
	var got *Options
	cmd := NewCmd(f, func(o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"-f", "train.yaml", "--include-secrets"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.File != "train.yaml" || !got.IncludeSecrets || got.Namespace != "team-a" {
		t.Errorf("options = %+v, want file train.yaml, secrets included, namespace from -n", got)
	}
	cmd = NewCmd(f, func(*Options) error { return nil })
	cmd.SetArgs(nil)
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "filename") {
		t.Errorf("missing -f: err = %v, want it named", err)
	}
}

func TestRunReadsStandardInput(t *testing.T) {
	var out bytes.Buffer
	spec := `apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata: {name: hello}
spec: {image: busybox, command: [echo, hi], env: [{name: TOKEN, value: topsecret, secret: true}]}
`
	err := Run(&Options{IO: &factory.IOStreams{In: strings.NewReader(spec), Out: &out}, File: "-", Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	y := out.String()
	for _, want := range []string{"kind: Job", "name: hello", "namespace: ns", "restartPolicy: Never"} {
		if !strings.Contains(y, want) {
			t.Errorf("output lacks %q:\n%s", want, y)
		}
	}
	if strings.Contains(y, "topsecret") {
		t.Errorf("secret value printed:\n%s", y)
	}
}

func TestRunReportsSpecErrorsWithPosition(t *testing.T) {
	err := Run(&Options{IO: &factory.IOStreams{In: strings.NewReader("apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: x}\nspec: {command: [echo]}\n"), Out: &bytes.Buffer{}}, File: "-"})
	if err == nil || !strings.Contains(err.Error(), "<stdin>:4:") || !strings.Contains(err.Error(), "spec.image") {
		t.Errorf("err = %v, want <stdin>:4:…spec.image", err)
	}
}
