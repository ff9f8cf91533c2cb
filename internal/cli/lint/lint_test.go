package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/cli/factory"
)

// runLint executes `petrel lint args...` with stdin and returns stdout,
// stderr and the exit code main would use.
func runLint(t *testing.T, stdin string, terminal bool, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	f := &factory.Factory{IO: &factory.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut, IsTerminal: terminal}}
	cmd := NewCmd(f)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	code := 0
	if err != nil {
		var ec interface{ ExitCode() int }
		if !errors.As(err, &ec) {
			t.Fatalf("error without exit code: %v", err)
		}
		code = ec.ExitCode()
	}
	return out.String(), errOut.String(), code
}

const cases = "../../lint/testdata/cases/"

func TestExitCodes(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"clean", []string{"../../lint/testdata/good"}, 0},
		{"warnings only", []string{cases + "C12.yaml"}, 0},
		{"an error", []string{cases + "C06.yaml"}, ExitFindings},
		{"missing file", []string{cases + "C06.yaml", "no/such/file.yaml"}, ExitUnreadable},
		{"error disabled", []string{"--disable", "PTL-GPU-001", cases + "C06.yaml"}, 0},
		{"unknown rule", []string{"--disable", "PTL-XYZ-001", cases + "C06.yaml"}, ExitUnreadable},
		{"no paths", nil, ExitUnreadable},
		{"bad output", []string{"-o", "xml", cases + "C06.yaml"}, ExitUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runLint(t, "", false, tt.args...)
			if code != tt.want {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.want, stderr)
			}
		})
	}
}

func TestStdinAndSummary(t *testing.T) {
	data, err := os.ReadFile(cases + "C07.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runLint(t, string(data), false, "-")
	if code != ExitFindings {
		t.Errorf("exit code = %d, want 1", code)
	}
	if !strings.HasPrefix(out, "<stdin>:10:5: error PTL-QTA-001 ResourceQuota/team-gpu-quota: ") {
		t.Errorf("stdout = %q", out)
	}
	if !strings.Contains(stderr, "1 error, 0 warnings, 0 notes in 1 object in 1 file") {
		t.Errorf("stderr = %q", stderr)
	}
}

func TestNotYAMLStillLintsTheRest(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a-broken.yaml"), []byte("\x00\x01 not: [yaml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(cases + "C14.yaml")
	if err := os.WriteFile(filepath.Join(dir, "b.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := runLint(t, "", false, "-o", "json", dir)
	if code != ExitUnreadable {
		t.Errorf("exit code = %d, want 2", code)
	}
	var rep struct {
		Findings []struct{ RuleID, File string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	var rules []string
	for _, f := range rep.Findings {
		rules = append(rules, filepath.Base(f.File)+":"+f.RuleID)
	}
	got := strings.Join(rules, " ")
	if !strings.Contains(got, "a-broken.yaml:PTL-IN-001") || !strings.Contains(got, "b.yaml:PTL-JOB-004") {
		t.Errorf("findings = %s", got)
	}
}

func TestColourFollowsTerminalAndNoColor(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	out, _, _ := runLint(t, "", true, cases+"C06.yaml")
	if !strings.Contains(out, "\x1b[") {
		t.Error("no colour on a terminal")
	}
	t.Setenv("NO_COLOR", "1")
	out, _, _ = runLint(t, "", true, cases+"C06.yaml")
	if strings.Contains(out, "\x1b[") {
		t.Error("colour despite NO_COLOR")
	}
	t.Setenv("NO_COLOR", "")
	out, _, _ = runLint(t, "", false, cases+"C06.yaml")
	if strings.Contains(out, "\x1b[") {
		t.Error("colour when not a terminal")
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lint.yaml")
	if err := os.WriteFile(cfg, []byte("disable: [PTL-GPU-001]\nseverity: {PTL-MEM-001: error}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := runLint(t, "", false, "--config", cfg, cases+"C06.yaml")
	if strings.Contains(out, "PTL-GPU-001") || !strings.Contains(out, "error PTL-MEM-001") || code != ExitFindings {
		t.Errorf("code %d, output:\n%s", code, out)
	}
	// The default config file is read from the current directory.
	abs, _ := filepath.Abs(cases + "C06.yaml")
	if err := os.WriteFile(filepath.Join(dir, ".petrel-lint.yaml"), []byte("disable: [PTL-GPU-001]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	out, _, code = runLint(t, "", false, abs)
	if strings.Contains(out, "PTL-GPU-001") || code != 0 {
		t.Errorf(".petrel-lint.yaml not applied: code %d\n%s", code, out)
	}
	if _, _, code := runLint(t, "", false, "--config", filepath.Join(dir, "absent.yaml"), abs); code != ExitUnreadable {
		t.Errorf("missing --config: exit %d, want 2", code)
	}
}

func TestList(t *testing.T) {
	out, _, code := runLint(t, "", false, "--list")
	if code != 0 || !strings.Contains(out, "PTL-GPU-001   error    GPU or other extended resource asked for under requests only") ||
		!strings.Contains(out, "PTL-IN-001") || !strings.Contains(out, "    why:") {
		t.Errorf("--list:\n%s", out)
	}
	out, _, _ = runLint(t, "", false, "--list", "-o", "json")
	var rules []struct{ ID, Severity, Summary, Why, Fix string }
	if err := json.Unmarshal([]byte(out), &rules); err != nil || len(rules) < 25 {
		t.Fatalf("--list -o json: %d rules, %v", len(rules), err)
	}
	for _, r := range rules {
		if r.ID == "" || r.Why == "" || r.Fix == "" {
			t.Errorf("incomplete catalogue entry %+v", r)
		}
	}
}

func TestFlagsParse(t *testing.T) {
	var got *Options
	f := &factory.Factory{IO: &factory.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}}
	cmd := NewCmdLint(f, func(o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"-o", "sarif", "--disable", "PTL-IMG-001,PTL-MEM-002", "--disable", "PTL-SHM-001", "--config", "c.yaml", "a.yaml", "-"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Output != "sarif" || strings.Join(got.Disable, " ") != "PTL-IMG-001 PTL-MEM-002 PTL-SHM-001" || got.Config != "c.yaml" ||
		strings.Join(got.Paths, " ") != "a.yaml -" {
		t.Errorf("options = %+v", got)
	}
}
