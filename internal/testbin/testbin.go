// Package testbin builds the petrel binary for tests that run the real
// CLI and `petrel server`, as a user's shell does. It is imported by
// tests only.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Build compiles this module's cmd/petrel into dir and returns its path.
func Build(dir string) (string, error) {
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	bin := filepath.Join(dir, "petrel")
	build := exec.Command("go", "build", "-o", bin, "./cmd/petrel")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build petrel: %v\n%s", err, out)
	}
	return bin, nil
}

// Main is a TestMain body: it builds petrel into a temporary directory,
// stores its path in *bin, runs the tests (run is m.Run, or cluster.Main
// bound to m), removes the binary and returns the exit code.
func Main(bin *string, run func() int) int {
	dir, err := os.MkdirTemp("", "petrel-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return run()
}
