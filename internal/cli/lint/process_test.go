package lint

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/testbin"
)

// TestBinary runs the real petrel binary, as helm template | petrel lint -
// would: the exit status reaches the shell through cmd/petrel's ExitCode
// handling.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the petrel binary")
	}
	bin, err := testbin.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), errb.String(), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), 0
	}
	quota, err := os.ReadFile(cases + "C07.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code := run(string(quota), "lint", "-")
	if code != 1 || !strings.Contains(out, "<stdin>:10:5: error PTL-QTA-001") || !strings.Contains(stderr, "error: lint found 1 error(s)") {
		t.Errorf("stdin with an error: exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	if _, stderr, code := run("", "lint", "../../lint/testdata/good", "../../../examples"); code != 0 {
		t.Errorf("correct manifests and examples: exit %d, stderr %s", code, stderr)
	}
	if _, _, code := run("", "lint", "no-such-dir"); code != 2 {
		t.Errorf("missing input: exit %d, want 2", code)
	}
}
