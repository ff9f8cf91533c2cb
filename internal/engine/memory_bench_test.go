package engine

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/testbin"
)

// BenchmarkServerIdleRSSWithHistory starts a real `petrel server` over a
// state directory holding 0 and 10,000 finished jobs (each with a failed
// and a succeeded attempt, log tails and metrics, as real runs leave them)
// and reports its idle resident set: the controllers keep only unfinished
// jobs in memory and read history from the store on demand, so the two
// should be close (issue target: under 50 MB with 10,000 stored).
//
//	go test -run '^$' -bench ServerIdleRSS -benchtime 1x ./internal/engine/
func BenchmarkServerIdleRSSWithHistory(b *testing.B) {
	bin, err := testbin.Build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{0, 10000} {
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				home, err := os.MkdirTemp("", "ph-")
				if err != nil {
					b.Fatal(err)
				}
				defer os.RemoveAll(home)
				populate(b, home, n)
				rss := idleServerRSS(b, bin, home)
				b.ReportMetric(float64(rss)/(1<<20), "MiB-idle-RSS")
			}
		})
	}
}

// populate writes n finished jobs into home's store.
func populate(b *testing.B, home string, n int) {
	b.Helper()
	st, err := openStore(filepath.Join(home, "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	var tail []string
	for l := 0; l < 20; l++ {
		tail = append(tail, fmt.Sprintf("Traceback line %d: something went wrong in the data loader at step %d", l, l*100))
	}
	for i := 0; i < n; i++ {
		now := time.Now().Add(-time.Hour)
		one, zero := int32(1), int32(0)
		r := &jobRecord{Job: backend.Job{Name: fmt.Sprintf("job-%05d", i), Phase: backend.JobComplete, CreationTime: now,
			StartTime: &now, CompletionTime: &now, Succeeded: 1, Failed: 1,
			Conditions: []backend.Condition{
				{Type: backend.ConditionSuccessCriteriaMet, Status: "True", Reason: backend.ReasonCompletionsReached, Message: backend.MessageCompletionsReached, LastTransitionTime: now},
				{Type: backend.ConditionComplete, Status: "True", Reason: backend.ReasonCompletionsReached, Message: backend.MessageCompletionsReached, LastTransitionTime: now}},
			LastMetrics: map[string]float64{"epoch": 20, "loss": 0.1, "accuracy": 0.97}}, Dir: "/tmp"}
		r.Spec.Command = []string{"python3", "train.py", "--epochs", "20"}
		r.Attempts = []backend.Attempt{
			{Index: 0, Name: r.Name + "-0", Phase: backend.PodFailed, StartTime: &now, EndTime: &now, ExitCode: &one, Reason: backend.ReasonError, LogTail: tail},
			{Index: 1, Name: r.Name + "-1", Phase: backend.PodSucceeded, StartTime: &now, EndTime: &now, ExitCode: &zero, Reason: backend.ReasonCompleted},
		}
		if err := st.putJob(ctx, r); err != nil {
			b.Fatal(err)
		}
		for k := range r.Attempts {
			if err := st.putAttempt(ctx, r.Name, &r.Attempts[k]); err != nil {
				b.Fatal(err)
			}
		}
		var pts []backend.MetricPoint
		for e := 1; e <= 20; e++ {
			pts = append(pts, backend.MetricPoint{Attempt: 1, Time: now, Name: "loss", Value: 1 / float64(e)})
		}
		if err := st.addMetrics(ctx, r.Name, pts); err != nil {
			b.Fatal(err)
		}
	}
}

// idleServerRSS starts `petrel server` on home, waits until it answers on
// its socket and has settled, reads VmRSS and stops it.
func idleServerRSS(b *testing.B, bin, home string) int64 {
	b.Helper()
	cmd := exec.Command(bin, "server")
	cmd.Env = append(os.Environ(), "PETREL_HOME="+home, "PETREL_FAKE_GPUS=0")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	sock := filepath.Join(home, "petrel.sock")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Idle: the start-up work (loading state, the spare shim) is over.
	time.Sleep(3 * time.Second)
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
