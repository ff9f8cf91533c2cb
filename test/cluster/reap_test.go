package cluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestReapOrphans checks that a cluster whose test binary died (here: an
// owner pid that has exited) is deleted by the next test binary, processes
// and work directory both.
func TestReapOrphans(t *testing.T) {
	c, err := start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(c.Workdir); err == nil {
			_ = c.delete()
		}
	})
	cs, err := kubernetes.NewForConfig(c.config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("cluster does not serve before reaping: %v", err)
	}

	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(dead.Process.Pid)
	if err := os.WriteFile(filepath.Join(c.Workdir, "owner.pid"), []byte(pid), 0o644); err != nil {
		t.Fatal(err)
	}
	reapOrphans()

	if _, err := os.Stat(c.Workdir); !os.IsNotExist(err) {
		t.Errorf("work directory %s still there after reaping (err %v)", c.Workdir, err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err == nil {
		t.Errorf("API server of reaped cluster %s still answers", c.Name)
	}
}

func TestProcessAlive(t *testing.T) {
	if !processAlive(os.Getpid()) {
		t.Error("this process reads as dead")
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if processAlive(dead.Process.Pid) {
		t.Errorf("exited process %d reads as alive", dead.Process.Pid)
	}
}

func TestDNSLabelPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"TestJobs/pod_succeeds":       "testjobs-pod-succeeds",
		"--":                          "test",
		"":                            "test",
		"ok":                          "ok",
		strings.Repeat("a", 50):       strings.Repeat("a", 40),
		"Trailing/":                   "trailing",
		"x" + strings.Repeat("-", 45): "x",
	} {
		if got := dnsLabelPrefix(in); got != want {
			t.Errorf("dnsLabelPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}
