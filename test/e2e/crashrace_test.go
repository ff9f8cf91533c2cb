package e2e

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
)

// TestServerKilledAroundAttemptStartNeverRunsAnAttemptTwice kills the
// server with SIGKILL at random points in the milliseconds around an
// attempt's start, 50 times, and restarts it: every job must end Complete
// with exactly one attempt, whose workload ran exactly once, and whose
// recorded exit code is the workload's real one (0). Before durable
// intent, attempts ran twice or healthy ones were failed as lost.
func TestServerKilledAroundAttemptStartNeverRunsAnAttemptTwice(t *testing.T) {
	e := newEnv(t)
	marks := filepath.Join(t.TempDir(), "runs")
	rng := rand.New(rand.NewSource(1))
	const trials = 50
	for i := 0; i < trials; i++ {
		name := fmt.Sprintf("race-%02d", i)
		spec := e.write(name+".yaml", jobYAML(name, "  backoffLimit: 3\n", "sh", "-c",
			`echo "$PETREL_JOB_NAME $PETREL_ATTEMPT" >> `+marks+`; sleep 0.2`))
		e.petrel("get", "jobs") // starts a server (the previous one was killed)
		pid := e.serverPID()
		// Submit in the background and kill the server at a random point
		// of the submit: before, during or just after the apply and the
		// attempt's start, a different point each trial.
		cmd := exec.Command(petrelBin, "train", "-f", spec, "--detach")
		cmd.Env = append(os.Environ(), "PETREL_HOME="+e.home, "PETREL_FAKE_GPUS=0")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Intn(120)) * time.Millisecond)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = cmd.Wait()
		// A submit the kill cut short before the job was stored is made
		// again, as a user would.
		if r := e.petrel("get", "jobs", name); r.code != 0 {
			if r := e.petrel("train", "-f", spec, "--detach"); r.code != 0 {
				t.Fatalf("%s: train --detach: %s", name, r.stderr)
			}
		}
	}
	// Every job is then finished by the server the next command starts.
	deadline := time.Now().Add(3 * time.Minute)
	for i := 0; i < trials; i++ {
		name := fmt.Sprintf("race-%02d", i)
		var j backend.Job
		for {
			j = e.job(name)
			if j.Finished() || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if j.Phase != backend.JobComplete || len(j.Attempts) != 1 || j.Attempts[0].ExitCode == nil || *j.Attempts[0].ExitCode != 0 {
			t.Errorf("%s: %s with attempts %+v, want Complete after one attempt with exit code 0", name, j.Phase, j.Attempts)
		}
	}
	b, err := os.ReadFile(marks)
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		runs[l]++
	}
	for i := 0; i < trials; i++ {
		if n := runs[fmt.Sprintf("race-%02d 0", i)]; n != 1 {
			t.Errorf("race-%02d attempt 0 ran %d times, want once", i, n)
		}
	}
	if len(runs) != trials {
		t.Errorf("workload runs %v, want one per job", runs)
	}
}

// `petrel logs -f` survives the server's death as `train` does: it goes on
// with the next server and prints every line once.
func TestLogsFollowReconnectsAfterTheServerDies(t *testing.T) {
	e := newEnv(t)
	spec := e.write("lines.yaml", jobYAML("lines", "", "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do echo line-$i; sleep 0.4; done"))
	if r := e.petrel("train", "-f", spec, "--detach"); r.code != 0 {
		t.Fatalf("train --detach: %s", r.stderr)
	}
	readPids(t, e.home, "lines", 0) // the workload runs
	pid := e.serverPID()
	var errb strings.Builder
	cmd := exec.Command(petrelBin, "logs", "lines", "-f")
	cmd.Env = append(os.Environ(), "PETREL_HOME="+e.home, "PETREL_FAKE_GPUS=0")
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill the server once a few lines are out (and the rest are not).
	var out strings.Builder
	few := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.HasSuffix(sc.Text(), "line-2") {
				close(few)
			}
		}
	}()
	select {
	case <-few:
	case <-copied:
		t.Fatalf("logs -f ended before line-2: %v: %s; printed:\n%s", cmd.Wait(), errb.String(), out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("logs -f printed no line-2 within 60s; printed:\n%s", out.String())
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	<-copied
	if err := cmd.Wait(); err != nil {
		t.Fatalf("logs -f: %v: %s", err, errb.String())
	}
	for i := 1; i <= 8; i++ {
		if n := strings.Count(out.String(), fmt.Sprintf("line-%d\n", i)); n != 1 {
			t.Errorf("line-%d printed %d times:\n%s", i, n, out.String())
		}
	}
}
