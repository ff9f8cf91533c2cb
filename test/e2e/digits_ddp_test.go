package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
)

// The examples/digits-ddp tests run the example's real train.py as a gang
// of real processes (python3, standard library): the workers rendezvous
// over TCP at MASTER_ADDR:MASTER_PORT, all-reduce their gradients and
// checkpoint into a volume. A run of 20 epochs takes a few seconds.

const ddpDir = "../../examples/digits-ddp"

// ddpSpec is examples/digits-ddp/train.yaml with numNodes workers and
// extra args, written into e's spec folder: the job runs in the example's
// folder (an absolute workingDir) and the data volume is seeded from
// examples/digits/data (an absolute source), as the original does from
// its own folder. edit may change the rest of the spec text.
func ddpSpec(t *testing.T, e *env, workers int, args []string, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ddpDir, "train.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs(ddpDir)
	data, _ := filepath.Abs(filepath.Join(ddpDir, "..", "digits", "data"))
	s := string(b)
	for _, r := range [][2]string{
		{"source: ../digits/data", "source: " + data},
		{"  numNodes: 2\n", fmt.Sprintf("  numNodes: %d\n  workingDir: %s\n", workers, dir)},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("examples/digits-ddp/train.yaml no longer has %q", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	argsLine := regexp.MustCompile(`(?m)^  args: \[.*\]$`)
	if !argsLine.MatchString(s) {
		t.Fatal("examples/digits-ddp/train.yaml has no args line")
	}
	q := []string{"--data", "$(DATA_DIR)/digits.csv"}
	q = append(q, args...)
	for i := range q {
		q[i] = strconv.Quote(q[i])
	}
	s = argsLine.ReplaceAllLiteralString(s, "  args: ["+strings.Join(q, ", ")+"]")
	if edit != nil {
		s = edit(s)
	}
	return e.write(fmt.Sprintf("digits-ddp-%d.yaml", workers), s)
}

var heldOut = regexp.MustCompile(`held-out accuracy: ([0-9.]+)`)

func heldOutAccuracy(t *testing.T, out string) float64 {
	t.Helper()
	m := heldOut.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no held-out accuracy in the output:\n%s", out)
	}
	acc, _ := strconv.ParseFloat(m[1], 64)
	return acc
}

// singleProcessAccuracy runs examples/digits/train.py itself (one process,
// no petrel) for the same number of epochs: the accuracy to match.
func singleProcessAccuracy(t *testing.T, epochs int) float64 {
	t.Helper()
	cmd := exec.Command("python3", "train.py", "--data", "data/digits.csv", "--model-dir", t.TempDir(), "--epochs", fmt.Sprint(epochs))
	cmd.Dir = filepath.Join(ddpDir, "..", "digits")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("examples/digits: %v\n%s", err, out)
	}
	return heldOutAccuracy(t, string(out))
}

// TestDigitsDDPMatchesTheSingleProcessAccuracy trains examples/digits-ddp
// with 2 and with 4 workers: each completes in one attempt, every worker
// prints its rank and finishes, worker 0 reports metrics per epoch, and
// the held-out accuracy is within 2 points of examples/digits trained
// alone for as many epochs (the global batch and schedule are the same;
// only the order of the rows within an epoch differs).
func TestDigitsDDPMatchesTheSingleProcessAccuracy(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is required (hack/test.sh installs it)")
	}
	const epochs = 20
	single := singleProcessAccuracy(t, epochs)
	t.Logf("examples/digits alone: held-out accuracy %.4f", single)
	for _, workers := range []int{2, 4} {
		workers := workers
		t.Run(fmt.Sprintf("%d-workers", workers), func(t *testing.T) {
			e := newEnv(t)
			start := time.Now()
			r := e.petrel("train", "-f", ddpSpec(t, e, workers, []string{"--epochs", fmt.Sprint(epochs)}, nil))
			if r.code != 0 {
				t.Fatalf("train: code %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			acc := heldOutAccuracy(t, r.stdout)
			t.Logf("%d workers: held-out accuracy %.4f in %s (petrel train)", workers, acc, time.Since(start).Round(10*time.Millisecond))
			if d := acc - single; d < -0.02 || d > 0.02 {
				t.Errorf("%d workers: held-out accuracy %.4f, single process %.4f: more than 2 points apart", workers, acc, single)
			}
			for w := 0; w < workers; w++ {
				for _, want := range []string{
					fmt.Sprintf("[attempt 0] [worker %d] worker %d of %d: ", w, w, workers),
					fmt.Sprintf("[attempt 0] [worker %d] worker %d: done\n", w, w),
				} {
					if !strings.Contains(r.stdout, want) {
						t.Errorf("output lacks %q:\n%s", want, r.stdout)
					}
				}
			}
			if !strings.Contains(r.stdout, fmt.Sprintf("[attempt 0] [worker 0] epoch=%d loss=", epochs)) {
				t.Errorf("no metric line for the last epoch:\n%s", r.stdout)
			}
			j := e.job("digits-ddp")
			if j.Phase != backend.JobComplete || len(j.Attempts) != 1 || len(j.Attempts[0].Workers) != workers {
				t.Fatalf("job %s with %d attempts %+v; want Complete in one attempt of %d workers", j.Phase, len(j.Attempts), j.Attempts, workers)
			}
			if got := j.LastMetrics["test_accuracy"]; got != acc {
				t.Errorf("metrics test_accuracy = %v, want %v", got, acc)
			}
			if _, err := os.Stat(filepath.Join(e.home, "volumes", "digits-ddp-ckpt", "digits-ddp.json")); err != nil {
				t.Errorf("no checkpoint in the volume: %v", err)
			}
		})
	}
}

// TestDigitsDDPResumesAfterPreemption preempts examples/digits-ddp (2
// workers, backoffLimit 0) once its log shows epoch 2 finished: the next
// attempt says "resumed from epoch N" with N >= 2, does not train epoch 1
// again, and the job completes with the retry budget unused.
func TestDigitsDDPResumesAfterPreemption(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is required (hack/test.sh installs it)")
	}
	const epochs = 8
	e := newEnv(t)
	spec := ddpSpec(t, e, 2, []string{"--epochs", fmt.Sprint(epochs), "--epoch-sleep", "0.5"}, func(s string) string {
		return strings.Replace(s, "  backoffLimit: 1\n", "  backoffLimit: 0\n", 1)
	})
	if r := e.petrel("train", "-f", spec, "--detach"); r.code != 0 {
		t.Fatalf("train --detach: code %d\n%s", r.code, r.stderr)
	}
	epochLine := regexp.MustCompile(`\[attempt 0\] \[worker 0\] epoch=(\d+) `)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		logs := e.petrel("logs", "digits-ddp").stdout
		done := 0
		for _, m := range epochLine.FindAllStringSubmatch(logs, -1) {
			done, _ = strconv.Atoi(m[1])
		}
		if done >= epochs {
			t.Fatalf("the job finished before it could be preempted:\n%s", logs)
		}
		if done >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("epoch 2 not finished after 2 minutes:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	preempted := time.Now()
	if r := e.petrel("preempt", "job", "digits-ddp"); r.code != 0 {
		t.Fatalf("preempt: code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := e.petrel("wait", "--for=condition=Complete", "job/digits-ddp", "--timeout=3m"); r.code != 0 {
		t.Fatalf("wait: code %d\n%s\n%s\nlogs:\n%s", r.code, r.stdout, r.stderr, e.petrel("logs", "digits-ddp").stdout)
	}
	t.Logf("completed %s after the preemption", time.Since(preempted).Round(10*time.Millisecond))
	j := e.job("digits-ddp")
	if j.Phase != backend.JobComplete || len(j.Attempts) != 2 || j.Failed != 0 {
		t.Fatalf("phase %s failed %d attempts %+v; want Complete after 2 attempts, none counted", j.Phase, j.Failed, j.Attempts)
	}
	if a := j.Attempts[0]; !a.DisruptionTarget || !a.Ignored {
		t.Errorf("attempt 0 %+v: want DisruptionTarget, ignored by the policy", a)
	}
	logs := e.petrel("logs", "digits-ddp").stdout
	m := regexp.MustCompile(`\[attempt 1\] \[worker 0\] resumed from epoch (\d+)`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("attempt 1 did not resume from the checkpoint:\n%s", logs)
	}
	n, _ := strconv.Atoi(m[1])
	t.Logf("attempt 1 resumed from epoch %d", n)
	if n < 2 || n >= epochs {
		t.Errorf("resumed from epoch %d, want 2..%d (the checkpoint written before the preemption)", n, epochs-1)
	}
	if !strings.Contains(logs, fmt.Sprintf("[attempt 1] [worker 1] worker 1: resumed from epoch %d\n", n)) {
		t.Errorf("worker 1 did not get the checkpoint's weights from worker 0:\n%s", logs)
	}
	if strings.Contains(logs, "[attempt 1] [worker 0] epoch=1 ") || !strings.Contains(logs, fmt.Sprintf("[attempt 1] [worker 0] epoch=%d ", epochs)) {
		t.Errorf("attempt 1 did not go on from the checkpoint to epoch %d:\n%s", epochs, logs)
	}
	if acc := heldOutAccuracy(t, logs); acc < 0.9 {
		t.Errorf("held-out accuracy after resuming %.4f < 0.9 (8 epochs alone reach 0.95)", acc)
	}
}
