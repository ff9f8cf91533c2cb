package diagnose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
)

const caseDir = "../../diagnose/testdata/cases/"

func streams(in string) (*factory.IOStreams, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	return &factory.IOStreams{In: strings.NewReader(in), Out: out, ErrOut: errOut}, out, errOut
}

func TestFlagParsing(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{name: "job ref", args: []string{"job/train"}, want: Options{Ref: backend.Ref{Kind: "job", Name: "train"}, Output: "text"}},
		{name: "short kinds", args: []string{"svc/digits", "-o", "json"}, want: Options{Ref: backend.Ref{Kind: "service", Name: "digits"}, Output: "json"}},
		{name: "files without ref", args: []string{"--from-file", "a.yaml", "--from-file", "-"}, want: Options{Files: []string{"a.yaml", "-"}, Output: "text"}},
		{name: "deployment offline", args: []string{"deploy/x", "--from-file", "a.yaml"}, want: Options{Ref: backend.Ref{Kind: "deployment", Name: "x"}, Files: []string{"a.yaml"}, Output: "text"}},
		{name: "deployment live", args: []string{"deployment/x"}, want: Options{Ref: backend.Ref{Kind: "deployment", Name: "x"}, Output: "text"}},
		{name: "hpa live", args: []string{"hpa/x"}, want: Options{Ref: backend.Ref{Kind: "hpa", Name: "x"}, Output: "text"}},
		{name: "pvc live", args: []string{"persistentvolumeclaim/x"}, want: Options{Ref: backend.Ref{Kind: "pvc", Name: "x"}, Output: "text"}},
		{name: "no ref, no file", args: nil, wantErr: "name the workload"},
		{name: "bad ref", args: []string{"train"}, wantErr: "is not KIND/NAME"},
		{name: "unknown kind", args: []string{"volume/x"}, wantErr: "unknown kind"},
		{name: "bad output", args: []string{"job/x", "-o", "yaml"}, wantErr: "use -o text or -o json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			io, _, _ := streams("")
			var got *Options
			cmd := NewCmd(&factory.Factory{IO: io}, func(o *Options) error { got = o; return nil })
			cmd.SetArgs(tc.args)
			cmd.SetOut(io.Out)
			cmd.SetErr(io.ErrOut)
			err := cmd.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Ref != tc.want.Ref || got.Output != tc.want.Output || strings.Join(got.Files, ",") != strings.Join(tc.want.Files, ",") {
				t.Errorf("options = %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestRunFromFileText(t *testing.T) {
	io, out, _ := streams("")
	err := Run(context.Background(), &Options{IO: io, Files: []string{caseDir + "C01.yaml"}, Ref: backend.Ref{Kind: "pod", Name: "cuda-train"}, Output: "text"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"error: Pod cuda-train asks for 2 nvidia.com/gpu but the largest node has 1 — it will never schedule.\n",
		"  rule gpu-request-exceeds-nodes, Pod/cuda-train\n",
		"    event Pod/cuda-train Warning FailedScheduling (x12) from default-scheduler: \"0/3 nodes are available: 3 Insufficient nvidia.com/gpu.\"\n",
		"  fix: Request at most 1 nvidia.com/gpu per pod",
		"  (permanent: will not resolve by waiting)\n",
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}

func TestRunFromStdinJSONMergesFiles(t *testing.T) {
	// The pod and its events come on stdin, the nodes from a file: the
	// analysis sees the merged state.
	data, err := os.ReadFile(caseDir + "C01.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(string(data), "- apiVersion: v1\n  kind: Node", 2)
	nodes := t.TempDir() + "/nodes.yaml"
	if err := os.WriteFile(nodes, []byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Node"+parts[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	io, out, _ := streams(parts[0])
	if err := Run(context.Background(), &Options{IO: io, Files: []string{"-", nodes}, Output: "json"}); err != nil {
		t.Fatal(err)
	}
	var fs []backend.Finding
	if err := json.Unmarshal(out.Bytes(), &fs); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if len(fs) == 0 || fs[0].RuleID != "gpu-request-exceeds-nodes" || !fs[0].Permanent {
		t.Fatalf("findings = %+v", fs)
	}
}

func TestRunHealthyAndWarnings(t *testing.T) {
	io, out, errOut := streams("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n---\n" +
		"apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec: {containers: [{name: c, image: busybox}]}\nstatus: {phase: Running, conditions: [{type: Ready, status: \"True\"}]}\n")
	if err := Run(context.Background(), &Options{IO: io, Files: []string{"-"}, Output: "text"}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "No problems found in the saved state.\n" {
		t.Errorf("stdout = %q", got)
	}
	if !strings.Contains(errOut.String(), "kind Widget (example.com/v1) is not a Kubernetes kind that diagnose knows; skipped") {
		t.Errorf("stderr = %q", errOut.String())
	}
}

func TestRunUnreadableFile(t *testing.T) {
	io, _, _ := streams("")
	err := Run(context.Background(), &Options{IO: io, Files: []string{t.TempDir() + "/missing.yaml"}, Output: "text"})
	if err == nil || !strings.Contains(err.Error(), "kubectl get") {
		t.Fatalf("error = %v", err)
	}
}

// recordingBackend answers Diagnose from a fixed list and records the ref;
// every other method is unused by petrel diagnose.
type recordingBackend struct {
	backend.Backend
	ref      backend.Ref
	findings []backend.Finding
	err      error
}

func (b *recordingBackend) Diagnose(_ context.Context, ref backend.Ref) ([]backend.Finding, error) {
	b.ref = ref
	return b.findings, b.err
}

func TestRunLiveAsksTheBackend(t *testing.T) {
	b := &recordingBackend{findings: []backend.Finding{{RuleID: "gpu-busy", Severity: backend.SeverityWarning, Object: "Job/train",
		Message: "Job train waits for 2 GPUs and only 1 are free right now.", Evidence: []string{"waiting: waiting for 2 GPUs, 1 free"}, Fix: "Wait."}}}
	io, out, _ := streams("")
	f := &factory.Factory{IO: io, BackendOverride: b}
	cmd := NewCmd(f, nil)
	cmd.SetArgs([]string{"job/train"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if b.ref != (backend.Ref{Kind: "job", Name: "train"}) {
		t.Errorf("backend got ref %+v", b.ref)
	}
	if !strings.Contains(out.String(), "warning: Job train waits for 2 GPUs") || strings.Contains(out.String(), "permanent") {
		t.Errorf("output:\n%s", out.String())
	}

	b.err = errors.New("job \"nope\": not found")
	cmd = NewCmd(f, nil)
	cmd.SetArgs([]string{"job/nope"})
	cmd.SetOut(io2())
	cmd.SetErr(io2())
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "diagnose job/nope") {
		t.Errorf("error = %v", err)
	}
}

func io2() io.Writer { return &bytes.Buffer{} }
