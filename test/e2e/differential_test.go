package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/engine"
	"github.com/petrel-dev/petrel/internal/kube"
	"github.com/petrel-dev/petrel/internal/spec"
	"github.com/petrel-dev/petrel/test/cluster"
)

// scenario is one training job whose outcome both targets must agree on.
// Locally the command really runs; on the simulated cluster kwok ends the
// pods as the petrel.dev/sim-* annotations say (hack/cluster/stages), which
// is what the same command does to a real pod. The outcome is asserted on
// both: final phase and reason, and per attempt its reason and exit code.
type scenario struct {
	name        string
	annotations string // YAML flow map for metadata.annotations
	spec        string // YAML under spec:, indented two spaces
	phase       backend.JobPhase
	reason      string
	attempts    []string // "Reason/exitCode" per attempt
	// upstreamBackoff runs the local side with the Job controller's real
	// back-off (10 s doubling) instead of the tests' short one, for rows
	// whose attempt count depends on it.
	upstreamBackoff bool
	// gpuBusy makes the job's GPU unavailable on both targets: locally one
	// fake GPU held by another job, on the cluster no GPU node at all.
	gpuBusy bool
	// workers is numNodes for a gang row (0: one worker). A gang is
	// compared per worker, not per attempt or pod: locally an attempt of
	// the gang is one attempt whose Workers are its processes, on
	// Kubernetes every worker is a pod of the Indexed Job. So a gang row's
	// attempts lists each worker, in worker order, as "wN Reason/exitCode"
	// when it ended by itself, or "wN stopped" when it was stopped because
	// another worker failed: locally the gang sends it SIGTERM, on
	// Kubernetes the Job controller deletes its pod (FailJob); that is the
	// same outcome reached differently, so the table does not compare how
	// they ended. Gang rows have one attempt of the gang on both targets
	// (a local gang retry is a new attempt, a Kubernetes one is a new pod
	// per index: not comparable, by design; see the README).
	workers int
}

var scenarios = []scenario{
	{
		name:  "succeeds",
		spec:  "  command: [sh, -c, \"exit 0\"]\n",
		phase: backend.JobComplete, reason: backend.ReasonCompletionsReached,
		attempts: []string{"Completed/0"},
	},
	{
		name:        "exhausts-backoff-limit",
		annotations: `{petrel.dev/sim-exit-code: "3"}`,
		spec:        "  command: [sh, -c, \"exit 3\"]\n  backoffLimit: 2\n",
		phase:       backend.JobFailed, reason: backend.ReasonBackoffLimitExceeded,
		attempts: []string{"Error/3", "Error/3", "Error/3"},
	},
	{
		name:        "failure-policy-fails-at-once",
		annotations: `{petrel.dev/sim-exit-code: "42"}`,
		spec: "  command: [sh, -c, \"exit 42\"]\n  backoffLimit: 5\n" +
			"  podFailurePolicy:\n    rules:\n    - {action: FailJob, onExitCodes: {operator: In, values: [42]}}\n",
		phase: backend.JobFailed, reason: backend.ReasonPodFailurePolicy,
		attempts: []string{"Error/42"},
	},
	{
		name:        "oom-killed",
		annotations: `{petrel.dev/sim-reason: OOMKilled, petrel.dev/sim-exit-code: "137"}`,
		spec: "  command: [python3, -c, \"x = bytearray(400 * 1024 * 1024)\"]\n  backoffLimit: 0\n" +
			"  resources: {memory: 64Mi}\n",
		phase: backend.JobFailed, reason: backend.ReasonBackoffLimitExceeded,
		attempts: []string{"OOMKilled/137"},
	},
	{
		// Ignored failures do not count against backoffLimit but still wait
		// out the back-off (0 s, 10 s, then 20 s): two attempts fit in the
		// 25 s deadline on both targets.
		name:        "ignored-failures-back-off",
		annotations: `{petrel.dev/sim-exit-code: "3"}`,
		spec: "  command: [sh, -c, \"sleep 1; exit 3\"]\n  backoffLimit: 0\n  activeDeadlineSeconds: 25\n" +
			"  podFailurePolicy:\n    rules:\n    - {action: Ignore, onExitCodes: {operator: In, values: [3]}}\n",
		phase: backend.JobFailed, reason: backend.ReasonDeadlineExceeded,
		attempts:        []string{"Error/3", "Error/3"},
		upstreamBackoff: true,
	},
	{
		// The deadline counts from the job's start, while its pod waits for
		// a GPU it cannot get: no attempt ever runs.
		name:  "deadline-while-waiting-for-gpus",
		spec:  "  command: [sh, -c, \"exit 0\"]\n  activeDeadlineSeconds: 3\n  resources: {gpu: 1}\n",
		phase: backend.JobFailed, reason: backend.ReasonDeadlineExceeded,
		attempts: nil,
		gpuBusy:  true,
	},
	{
		// A gang of 3 that succeeds: every worker sees its own rank.
		name:  "gang-succeeds",
		spec:  "  command: [sh, -c, 'echo \"rank $RANK of $WORLD_SIZE\"; [ \"$RANK\" = \"$JOB_COMPLETION_INDEX\" ]']\n  numNodes: 3\n",
		phase: backend.JobComplete, reason: backend.ReasonCompletionsReached,
		attempts: []string{"w0 Completed/0", "w1 Completed/0", "w2 Completed/0"},
		workers:  3,
	},
	{
		// Worker 1 of 3 fails while the others wait (in a collective, as
		// it were); the fail-fast rule fails the job at once, not after
		// backoffLimit retries, and the others are stopped. On the cluster
		// only index 1 exits (petrel.dev/sim-index); the others run until
		// the Job controller deletes them.
		name:        "gang-worker-fails-fast",
		annotations: `{petrel.dev/sim-exit-code: "3", petrel.dev/sim-index: "1"}`,
		spec: "  command: [sh, -c, 'if [ \"$RANK\" = 1 ]; then sleep 1; exit 3; fi; exec sleep 60']\n  numNodes: 3\n  backoffLimit: 2\n" +
			"  podFailurePolicy:\n    rules:\n    - {action: FailJob, onExitCodes: {operator: NotIn, values: [0]}}\n",
		phase: backend.JobFailed, reason: backend.ReasonPodFailurePolicy,
		attempts: []string{"w0 stopped", "w1 Error/3", "w2 stopped"},
		workers:  3,
	},
}

func (s scenario) yaml() string {
	ann := ""
	if s.annotations != "" {
		ann = "\n  annotations: " + s.annotations
	}
	return fmt.Sprintf("apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: %s%s\nspec:\n  image: busybox:1.36\n  terminationGracePeriodSeconds: 1\n%s", s.name, ann, s.spec)
}

// outcome summarises a finished job the way the table states it.
func outcome(j *backend.Job) (phase backend.JobPhase, reason string, attempts []string) {
	if c := j.FinalCondition(); c != nil {
		reason = c.Reason
	}
	if j.Spec.Workers() > 1 {
		return j.Phase, reason, workerOutcomes(j)
	}
	for _, a := range j.Attempts {
		if a.Phase == backend.PodPending && a.ExitCode == nil {
			continue // a pod that never ran (Kubernetes keeps it until deleted)
		}
		code := "?"
		if a.ExitCode != nil {
			code = fmt.Sprint(*a.ExitCode)
		}
		attempts = append(attempts, a.Reason+"/"+code)
	}
	return j.Phase, reason, attempts
}

// workerOutcomes is a gang's outcome per worker (see scenario.workers).
// Locally each attempt lists its workers; on Kubernetes every pod is a
// worker, its index the one in its name (an Indexed Job names its pods
// JOB-INDEX-xxxxx), and a worker whose pod was deleted (gone, or still
// Terminating) was stopped.
func workerOutcomes(j *backend.Job) []string {
	var out []string
	end := func(w int, reason string, code *int32) string {
		c := "?"
		if code != nil {
			c = fmt.Sprint(*code)
		}
		return fmt.Sprintf("w%d %s/%s", w, reason, c)
	}
	if len(j.Attempts) > 0 && len(j.Attempts[0].Workers) > 0 { // the local engine
		for _, a := range j.Attempts {
			for _, w := range a.Workers {
				if a.FailedWorker != nil && *a.FailedWorker != w.Index && w.Reason != backend.ReasonCompleted {
					out = append(out, fmt.Sprintf("w%d stopped", w.Index))
					continue
				}
				out = append(out, end(w.Index, w.Reason, w.ExitCode))
			}
		}
		return out
	}
	byWorker := map[int][]string{}
	for _, a := range j.Attempts { // Kubernetes: one pod per worker and try
		idx, _, _ := strings.Cut(strings.TrimPrefix(a.Name, j.Name+"-"), "-")
		w, err := strconv.Atoi(idx)
		if err != nil {
			return append(out, "pod "+a.Name+" has no worker index in its name")
		}
		if a.Reason == "Terminating" && a.ExitCode == nil {
			continue
		}
		if a.Phase == backend.PodPending && a.ExitCode == nil {
			continue // a pod that never ran
		}
		byWorker[w] = append(byWorker[w], end(w, a.Reason, a.ExitCode))
	}
	for w := 0; w < int(j.Spec.Workers()); w++ {
		if len(byWorker[w]) == 0 {
			out = append(out, fmt.Sprintf("w%d stopped", w))
		}
		out = append(out, byWorker[w]...)
	}
	return out
}

// runScenario applies the scenario on b and waits for its final state.
func runScenario(t *testing.T, b backend.Backend, s scenario) *backend.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	docs, err := spec.Parse(s.name+".yaml", []byte(s.yaml()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Apply(ctx, docs); err != nil {
		t.Fatal(err)
	}
	ch, err := b.WatchJob(ctx, s.name)
	if err != nil {
		t.Fatal(err)
	}
	for range ch {
	}
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish in time", s.name)
	}
	// Attempts are read once more: on Kubernetes the last pod's status can
	// trail the Job's condition by a moment.
	var j *backend.Job
	for i := 0; i < 100; i++ {
		if j, err = b.GetJob(ctx, s.name); err != nil {
			t.Fatal(err)
		}
		if _, _, at := outcome(j); len(at) == len(s.attempts) && !strings.Contains(strings.Join(at, ","), "/?") && (len(at) > 0 || len(j.Attempts) == 0) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return j
}

// TestLocalAndKubernetesAgree runs one table of scenarios on the local
// engine and on a real control plane (kube-apiserver, the Job controller
// of kube-controller-manager, kube-scheduler; pods simulated by kwok) and
// asserts the same outcome on both.
func TestLocalAndKubernetesAgree(t *testing.T) {
	eng, err := engine.New(engine.Config{Home: t.TempDir(), BackoffBase: 200 * time.Millisecond,
		GPUs: engine.FakeGPUs(0), ShimArgv: []string{petrelBin, "shim"}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	c := cluster.Start(t, cluster.Options{Nodes: 2})
	ns := c.Namespace(t, "differential")
	kb, err := kube.New(kube.Config{REST: c.RESTConfig(t), Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	targets := []struct {
		name string
		b    backend.Backend
	}{{"local", eng}, {"kubernetes", kb}}
	for _, s := range scenarios {
		s := s
		t.Run(s.name, func(t *testing.T) {
			if len(s.attempts) > 0 && strings.HasPrefix(s.attempts[0], "OOMKilled") && engine.CgroupSupport() != nil {
				t.Skipf("memory limits cannot be enforced on this host: %v", engine.CgroupSupport())
			}
			targets := targets
			if s.upstreamBackoff || s.gpuBusy {
				targets = []struct {
					name string
					b    backend.Backend
				}{{"local", scenarioEngine(t, s)}, targets[1]}
			}
			results := map[string]string{}
			for _, tg := range targets {
				j := runScenario(t, tg.b, s)
				phase, reason, attempts := outcome(j)
				got := fmt.Sprintf("%s %s %v", phase, reason, attempts)
				want := fmt.Sprintf("%s %s %v", s.phase, s.reason, s.attempts)
				t.Logf("%s: %s", tg.name, got)
				if got != want {
					t.Errorf("%s: got %s, want %s", tg.name, got, want)
				}
				results[tg.name] = got
			}
			if results["local"] != results["kubernetes"] {
				t.Errorf("targets disagree:\n  local:      %s\n  kubernetes: %s", results["local"], results["kubernetes"])
			}
		})
	}
}

// scenarioEngine is a local engine of its own for a scenario that needs
// the upstream back-off or a busy GPU.
func scenarioEngine(t *testing.T, s scenario) *engine.Engine {
	t.Helper()
	cfg := engine.Config{Home: t.TempDir(), BackoffBase: 200 * time.Millisecond, GPUs: engine.FakeGPUs(0),
		ShimArgv: []string{petrelBin, "shim"}, Logf: t.Logf}
	if s.upstreamBackoff {
		cfg.BackoffBase = 0 // the default: 10 s doubling
	}
	if s.gpuBusy {
		cfg.GPUs = engine.FakeGPUs(1)
	}
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = eng.Delete(context.Background(), backend.Ref{Kind: "job", Name: "gpu-holder"})
		eng.Close()
	})
	if s.gpuBusy {
		docs, err := spec.Parse("holder.yaml", []byte("apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: gpu-holder\nspec:\n  command: [sleep, \"60\"]\n  terminationGracePeriodSeconds: 1\n  resources: {gpu: 1}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Apply(context.Background(), docs); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ch, err := eng.WatchJob(ctx, "gpu-holder")
		if err != nil {
			t.Fatal(err)
		}
		for j := range ch {
			if j.Phase == backend.JobRunning {
				break
			}
		}
	}
	return eng
}
