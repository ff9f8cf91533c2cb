package render

import (
	"bytes"
	"os"
	"path/filepath"
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
	if len(got.Files) != 1 || got.Files[0] != "train.yaml" || !got.IncludeSecrets || got.Namespace != "team-a" {
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
	err := Run(&Options{IO: &factory.IOStreams{In: strings.NewReader(spec), Out: &out}, Files: []string{"-"}, Namespace: "ns"})
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
	err := Run(&Options{IO: &factory.IOStreams{In: strings.NewReader("apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: x}\nspec: {command: [echo]}\n"), Out: &bytes.Buffer{}}, Files: []string{"-"}})
	if err == nil || !strings.Contains(err.Error(), "<stdin>:4:") || !strings.Contains(err.Error(), "spec.image") {
		t.Errorf("err = %v, want <stdin>:4:…spec.image", err)
	}
}

func TestEveryFileAndDirectoryIsRendered(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.yaml", "apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: first}\nspec: {image: busybox, command: [echo]}\n")
	b := write("b.yaml", "apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: second}\nspec: {image: busybox, command: [echo]}\n")
	for name, files := range map[string][]string{"two -f": {a, b}, "a directory": {dir}} {
		var out bytes.Buffer
		if err := Run(&Options{IO: &factory.IOStreams{In: strings.NewReader(""), Out: &out}, Files: files}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, want := range []string{"name: first", "name: second"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: output lacks %q:\n%s", name, want, out.String())
			}
		}
	}
}

func TestDigitsExampleRendersWithoutItsSeedDataUnlessAsked(t *testing.T) {
	files := []string{"../../../examples/digits/"}
	var out bytes.Buffer
	if err := Run(&Options{IO: &factory.IOStreams{In: strings.NewReader(""), Out: &out}, Files: files}); err != nil {
		t.Fatal(err)
	}
	y := out.String()
	if strings.Contains(y, "binaryData") || !strings.Contains(y, "ConfigMap digits-data-seed") || !strings.Contains(y, "--include-seed-data") {
		t.Errorf("seed ConfigMap printed or its note missing:\n%.2000s", y)
	}
	for _, line := range strings.Split(y, "\n") {
		if len(line) > 1000 {
			t.Fatalf("a line of %d characters", len(line))
		}
	}
	if strings.Count(y, "kind: PersistentVolumeClaim") != 2 {
		t.Errorf("want two claims (digits-models declared in both files is one volume):\n%s", y)
	}
	out.Reset()
	if err := Run(&Options{IO: &factory.IOStreams{In: strings.NewReader(""), Out: &out}, Files: files, IncludeSeedData: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "binaryData") {
		t.Error("--include-seed-data: the seed ConfigMap is missing")
	}
}
