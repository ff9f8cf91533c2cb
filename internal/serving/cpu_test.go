package serving

import (
	"bufio"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func startTree(t *testing.T, code string) int {
	t.Helper()
	cmd := exec.Command("python3", "-c", code)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Skipf("python3 is needed: %v", err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	// Wait until the interpreter (and any pyenv shim) has finished starting.
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("tree did not start: %v", err)
	}
	return cmd.Process.Pid
}

func TestCPUSamplerCountsTheWholeProcessTree(t *testing.T) {
	// The parent sleeps; its child spins. Only counting descendants sees it.
	busy := startTree(t, `import subprocess,sys,time
subprocess.Popen([sys.executable, "-c", "while True: pass"])
print("ready", flush=True)
time.sleep(60)`)
	idle := startTree(t, "import time; print('ready', flush=True); time.sleep(60)")
	s, err := NewCPUSampler()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, ok := s.Sample("busy", busy, now); ok {
		t.Fatal("the first reading must be a missing metric")
	}
	s.Sample("idle", idle, now)
	time.Sleep(1500 * time.Millisecond)
	now = time.Now()
	b, ok := s.Sample("busy", busy, now)
	if !ok {
		t.Fatal("no usage for the busy tree")
	}
	i, _ := s.Sample("idle", idle, now)
	// One spinning process uses up to 1000m; on a shared machine it gets
	// less, but far more than a sleeping one.
	if b < 100 || b > 1100 || i > 50 {
		t.Fatalf("busy tree %.0fm, idle tree %.0fm; want busy in [100, 1100] and idle < 50", b, i)
	}
}
