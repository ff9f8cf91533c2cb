package server

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/cli/factory"
)

func TestInstallWritesUserUnitUnderHome(t *testing.T) {
	userHome := t.TempDir()
	petrelHome := filepath.Join(t.TempDir(), "petrel home")
	var out, errOut bytes.Buffer
	opts := &InstallOptions{
		IO:       &factory.IOStreams{Out: &out, ErrOut: &errOut},
		Home:     petrelHome,
		UserHome: userHome,
		Binary:   "/opt/petrel/bin/petrel",
	}
	if err := installRun(opts); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(userHome, ".config", "systemd", "user", "petrel.service")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("unit not written: %v", err)
	}
	unit := string(b)
	for _, want := range []string{
		"ExecStart=/opt/petrel/bin/petrel server --home \"" + petrelHome + "\"\n",
		"Restart=on-failure\n",
		"KillMode=process\n", // workloads and load balancers outlive a restart
		"WantedBy=default.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if got := out.String(); got != "systemctl --user enable --now petrel\n" {
		t.Errorf("stdout = %q, want the systemctl line", got)
	}
}

func TestSystemdQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/petrel": "/usr/bin/petrel",
		"/a b/petrel":     `"/a b/petrel"`,
		`/a"b%c`:          `"/a\"b%%c"`,
	} {
		if got := systemdQuote(in); got != want {
			t.Errorf("systemdQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
