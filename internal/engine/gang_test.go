package engine

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/engine/node"
)

// rendezvousPy is a worker of a gang that does its own rendezvous with
// the environment petrel sets: worker 0 listens on MASTER_ADDR:MASTER_PORT,
// the others connect (retrying: start order is not guaranteed) and send
// (rank+1)²; worker 0 sends everyone the sum, which each prints.
const rendezvousPy = `
import os, socket, time
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
if rank == 0:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(world)
    conns = [s.accept()[0] for _ in range(world - 1)]
    total = 1 + sum(int(c.recv(64)) for c in conns)
    for c in conns: c.sendall(str(total).encode())
else:
    deadline = time.time() + 60
    while True:
        try:
            c = socket.create_connection((addr, port)); break
        except OSError:
            if time.time() > deadline: raise
            time.sleep(0.05)
    c.sendall(str((rank + 1) ** 2).encode())
    total = int(c.recv(64))
print("rank=%d world=%d node_rank=%s index=%s nnodes=%s sum=%d" % (rank, world, os.environ["NODE_RANK"], os.environ["JOB_COMPLETION_INDEX"], os.environ["PET_NNODES"], total), flush=True)
`

func gangJob(name string, workers int32, cmd ...string) *v1alpha1.TrainingJob {
	j := job(name, cmd...)
	j.Spec.NumNodes = ptr(workers)
	return j
}

func jobLogs(t *testing.T, e *Engine, name string) string {
	t.Helper()
	var b bytes.Buffer
	if err := e.Logs(context.Background(), backend.Ref{Kind: "job", Name: name}, backend.LogOptions{Attempt: -1, Replica: -1}, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestGangOfThreeRendezvousesAndCompletes(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not on PATH")
	}
	e := newEngine(t, 0)
	apply(t, e, gangJob("ring", 3, "python3", "-c", rendezvousPy))
	j := waitJob(t, e, "ring", 60*time.Second, finished)
	if j.Phase != backend.JobComplete || len(j.Attempts) != 1 || len(j.Attempts[0].Workers) != 3 {
		t.Fatalf("phase %s, attempts %+v; want Complete after one attempt of 3 workers", j.Phase, j.Attempts)
	}
	logs := jobLogs(t, e, "ring")
	for w := 0; w < 3; w++ {
		// 1 + 2² + 3² = 14: every worker got the others' data through worker 0.
		want := fmt.Sprintf("[worker %d] rank=%d world=3 node_rank=%d index=%d nnodes=3 sum=14\n", w, w, w, w)
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
		if wk := j.Attempts[0].Workers[w]; wk.Phase != backend.PodSucceeded || wk.ExitCode == nil || *wk.ExitCode != 0 {
			t.Errorf("worker %d: %+v, want Succeeded with exit code 0", w, wk)
		}
	}
}

// One worker killed: the attempt fails at once, naming it; the others are
// stopped (SIGTERM) instead of running on; the job retries as a whole and
// the failure counts once against backoffLimit.
func TestGangFailsFastAndRetriesAsAWhole(t *testing.T) {
	e := newEngine(t, 0)
	j := gangJob("ff", 3, "sh", "-c", `echo "up $RANK"; if [ "$PETREL_ATTEMPT" = 0 ]; then exec sleep 60; fi; echo "done $RANK"`)
	j.Spec.BackoffLimit = ptr(int32(1))
	apply(t, e, j)
	var pids node.ShimPids
	dir := filepath.Join(attemptDir(e.jobDir("ff"), 0), "worker-1")
	waitJob(t, e, "ff", 30*time.Second, func(j backend.Job) bool { return j.Active == 3 })
	for deadline := time.Now().Add(30 * time.Second); node.ReadJSON(filepath.Join(dir, node.PidsFile), &pids) != nil; {
		if time.Now().After(deadline) {
			t.Fatal("worker 1 wrote no pids.json in 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(pids.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got := waitJob(t, e, "ff", 60*time.Second, finished)
	if got.Phase != backend.JobComplete || len(got.Attempts) != 2 || got.Failed != 1 {
		t.Fatalf("phase %s failed %d attempts %+v; want Complete after 2 attempts, 1 failure", got.Phase, got.Failed, got.Attempts)
	}
	a := got.Attempts[0]
	if a.FailedWorker == nil || *a.FailedWorker != 1 || a.ExitCode == nil || *a.ExitCode != 137 {
		t.Fatalf("attempt 0: failedWorker %v exit %v; want worker 1 with 137", a.FailedWorker, a.ExitCode)
	}
	if !strings.Contains(a.Message, "worker 1 failed first") || !strings.Contains(a.Message, "worker 0, 2 stopped because of it") {
		t.Errorf("attempt 0 message %q does not name the failed worker and the stopped ones", a.Message)
	}
	failedAt := *a.Workers[1].EndTime
	for _, w := range []int{0, 2} {
		wk := a.Workers[w]
		// Stopped by petrel's SIGTERM, not by their own end (sleep 60).
		if wk.ExitCode == nil || *wk.ExitCode != 128+int32(syscall.SIGTERM) || wk.EndTime == nil {
			t.Fatalf("worker %d: %+v, want ended by SIGTERM (143)", w, wk)
		}
		d := wk.EndTime.Sub(failedAt)
		t.Logf("worker %d stopped %s after worker 1 failed", w, d.Round(time.Millisecond))
		if d > 30*time.Second {
			t.Errorf("worker %d ran on %s after worker 1 failed", w, d)
		}
	}
	logs := jobLogs(t, e, "ff")
	for w := 0; w < 3; w++ {
		if !strings.Contains(logs, fmt.Sprintf("[attempt 1] [worker %d] done %d", w, w)) {
			t.Errorf("attempt 1 worker %d did not finish:\n%s", w, logs)
		}
	}
}

// A preemption (petrel preempt) in the middle of training: the gang is
// stopped as a disruption, podFailurePolicy's DisruptionTarget Ignore rule
// keeps it out of backoffLimit (0 here), and the next attempt resumes
// from the last checkpoint in the job's volume.
func TestPreemptedGangResumesFromItsCheckpoint(t *testing.T) {
	e := newEngine(t, 0)
	vol := &v1alpha1.Volume{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindVolume},
		Metadata: v1alpha1.ObjectMeta{Name: "ckpt"}}
	j := gangJob("pre", 2, "sh", "-c", `ck="$CKPT/epoch"; i=0
if [ -f "$ck" ]; then i=$(cat "$ck"); echo "resumed from epoch $i"; fi
while [ "$i" -lt 12 ]; do i=$((i+1)); sleep 0.25
  if [ "$RANK" = 0 ]; then echo "$i" > "$ck.tmp" && mv "$ck.tmp" "$ck"; fi
  echo "epoch=$i"; done`)
	j.Spec.Volumes = []v1alpha1.VolumeMount{{Name: "ckpt", MountPath: "/ckpt", PathEnv: "CKPT"}}
	j.Spec.BackoffLimit = ptr(int32(0))
	j.Spec.PodFailurePolicy = &v1alpha1.PodFailurePolicy{Rules: []v1alpha1.PodFailurePolicyRule{{
		Action:          v1alpha1.PodFailurePolicyActionIgnore,
		OnPodConditions: []v1alpha1.PodFailurePolicyOnPodConditionsPattern{{Type: v1alpha1.PodConditionDisruptionTarget}},
	}}}
	apply(t, e, vol, j)
	ck := filepath.Join(e.volumePath("ckpt"), "epoch")
	waitJob(t, e, "pre", 30*time.Second, func(backend.Job) bool {
		b, _ := os.ReadFile(ck)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n >= 3
	})
	// No reader sees the preempted attempt failed before the Job
	// controller's decision on it (train prints it as it first sees it):
	// a reader polls as fast as the engine's lock lets it.
	var undecided atomic.Bool
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			j, err := e.GetJob(context.Background(), "pre")
			if err != nil || j.Finished() || len(j.Attempts) > 1 {
				return
			}
			if a := j.Attempts[0]; a.Phase == backend.PodFailed && !a.Ignored {
				undecided.Store(true)
			}
		}
	}()
	if err := e.Preempt(context.Background(), "pre"); err != nil {
		t.Fatal(err)
	}
	got := waitJob(t, e, "pre", 60*time.Second, finished)
	<-polled
	if undecided.Load() {
		t.Error("a reader saw attempt 0 Failed before podFailurePolicy marked it Ignored")
	}
	if got.Phase != backend.JobComplete || len(got.Attempts) != 2 || got.Failed != 0 {
		t.Fatalf("phase %s failed %d attempts %+v; want Complete after 2 attempts, none counted", got.Phase, got.Failed, got.Attempts)
	}
	if a := got.Attempts[0]; !a.DisruptionTarget || !a.Ignored || a.Phase != backend.PodFailed {
		t.Fatalf("attempt 0 %+v: want Failed with DisruptionTarget, ignored by the policy", a)
	}
	logs := jobLogs(t, e, "pre")
	m := regexp.MustCompile(`\[attempt 1\] \[worker 0\] resumed from epoch (\d+)`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("attempt 1 did not resume from a checkpoint:\n%s", logs)
	}
	if n, _ := strconv.Atoi(m[1]); n < 3 || n >= 12 {
		t.Errorf("resumed from epoch %d, want from the checkpoint written before the preemption (3..11)", n)
	}
	if strings.Contains(logs, "[attempt 1] [worker 0] epoch=1\n") {
		t.Errorf("attempt 1 started again from epoch 1:\n%s", logs)
	}
}

// A gang of 2 one-GPU workers with 1 GPU free waits without holding it,
// then starts with a GPU per worker once both are free.
func TestGangWaitsForAllItsGPUsHoldingNone(t *testing.T) {
	e := newEngine(t, 2)
	blocker := job("blocker", "sleep", "60")
	blocker.Spec.Resources.GPU = 1
	apply(t, e, blocker)
	waitJob(t, e, "blocker", 20*time.Second, func(j backend.Job) bool { return j.Active == 1 })
	g := gangJob("pair", 2, "sh", "-c", `echo "devices=$CUDA_VISIBLE_DEVICES"`)
	g.Spec.Resources.GPU = 1
	apply(t, e, g)
	w := waitJob(t, e, "pair", 20*time.Second, func(j backend.Job) bool { return j.Waiting != nil })
	if w.Waiting.Reason != backend.WaitingForGPUs || w.Waiting.GPUsRequested != 2 || w.Waiting.GPUsFree != 1 || len(w.Attempts) != 0 {
		t.Fatalf("waiting %+v attempts %d; want waiting for 2 GPUs with 1 free and no attempt", w.Waiting, len(w.Attempts))
	}
	e.mu.Lock()
	free := e.node.GPUs.Free()
	e.mu.Unlock()
	if free != 1 {
		t.Fatalf("%d GPUs free while the gang waits, want 1 (a waiting gang holds none)", free)
	}
	if err := e.Delete(context.Background(), backend.Ref{Kind: "job", Name: "blocker"}); err != nil {
		t.Fatal(err)
	}
	got := waitJob(t, e, "pair", 30*time.Second, finished)
	if got.Phase != backend.JobComplete {
		t.Fatalf("phase %s, want Complete", got.Phase)
	}
	var devs []string
	for _, wk := range got.Attempts[0].Workers {
		if len(wk.GPUs) != 1 {
			t.Fatalf("worker %d has GPUs %v, want 1", wk.Index, wk.GPUs)
		}
		devs = append(devs, wk.GPUs[0])
	}
	sort.Strings(devs)
	if devs[0] == devs[1] {
		t.Fatalf("both workers got GPU %s", devs[0])
	}
	logs := jobLogs(t, e, "pair")
	for i, wk := range got.Attempts[0].Workers {
		if want := fmt.Sprintf("[worker %d] devices=%s\n", i, wk.GPUs[0]); !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// A restarted server adopts every worker of a running gang and records
// the attempt once they all end.
func TestRestartedServerAdoptsAGang(t *testing.T) {
	home := t.TempDir()
	cfg := Config{Home: home, BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second,
		ShimArgv: []string{os.Args[0], "-shim"}, Logf: t.Logf}
	e1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	flag := filepath.Join(t.TempDir(), "go")
	apply(t, e1, gangJob("adopt", 2, "sh", "-c", `while [ ! -f "$0" ]; do sleep 0.05; done; echo "rank $RANK ends"`, flag))
	waitJob(t, e1, "adopt", 20*time.Second, func(j backend.Job) bool { return j.Active == 2 })
	e2 := restarted(t, e1, cfg, "none")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got := waitJob(t, e2, "adopt", 30*time.Second, finished)
	if got.Phase != backend.JobComplete || len(got.Attempts) != 1 {
		t.Fatalf("phase %s attempts %+v; want Complete after the one adopted attempt", got.Phase, got.Attempts)
	}
	logs := jobLogs(t, e2, "adopt")
	for w := 0; w < 2; w++ {
		if n := strings.Count(logs, fmt.Sprintf("[worker %d] rank %d ends", w, w)); n != 1 {
			t.Errorf("worker %d's last line appears %d times:\n%s", w, n, logs)
		}
	}
}
