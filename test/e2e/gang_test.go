package e2e

import (
	"strings"
	"testing"
)

// A distributed job through the CLI on the local engine: `train` streams
// every worker's lines prefixed with attempt and worker, says which worker
// failed first and that the others were stopped, and the gang is retried
// as a whole; `describe` lists the workers.
func TestTrainRunsAGangAndSaysWhichWorkerFailed(t *testing.T) {
	e := newEnv(t)
	spec := e.write("gang.yaml", jobYAML("gang", "  numNodes: 3\n  backoffLimit: 1\n", "sh", "-c",
		`echo "rank $RANK of $WORLD_SIZE, worker 0 at $MASTER_ADDR"; if [ "$RANK" = 2 ] && [ "$PETREL_ATTEMPT" = 0 ]; then echo "CUDA error: an illegal memory access was encountered" >&2; exit 3; fi; [ "$PETREL_ATTEMPT" = 0 ] && exec sleep 60; echo finished`))
	r := e.petrel("train", "-f", spec)
	if r.code != 0 {
		t.Fatalf("train: code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"[attempt 0] [worker 2] rank 2 of 3, worker 0 at 127.0.0.1\n",
		"[attempt 0] [worker 2] CUDA error: an illegal memory access was encountered\n",
		"[attempt 1] [worker 0] finished\n", "[attempt 1] [worker 1] finished\n", "[attempt 1] [worker 2] finished\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("train's output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "attempt 0 failed (exit code 3, Error): worker 2 failed first") || !strings.Contains(r.stderr, "worker 0, 1 stopped because of it") {
		t.Errorf("train's state lines do not name the failed worker:\n%s", r.stderr)
	}
	d := e.petrel("describe", "job", "gang")
	if !strings.Contains(d.stdout, "failed first") || !strings.Contains(d.stdout, "stopped because worker 2 failed") {
		t.Errorf("describe does not list the workers:\n%s", d.stdout)
	}
}
