package serving

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
)

// replicaBin is the test replica server (testdata/replica), built once.
var replicaBin string

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "-lb" { // RemoteBalancer tests' process
		if err := RunLB(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "serving-test")
	if err != nil {
		panic(err)
	}
	replicaBin = filepath.Join(dir, "replica")
	out, err := exec.Command("go", "build", "-o", replicaBin, "./testdata/replica").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build test replica: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testSpec is a service of test replicas with a 1 s readiness probe.
func testSpec(ctl string, replicas int32) v1alpha1.InferenceServiceSpec {
	return v1alpha1.InferenceServiceSpec{
		PodTemplate: v1alpha1.PodTemplate{
			Command:                       []string{replicaBin},
			Env:                           []v1alpha1.EnvVar{{Name: "GEN", Value: "1"}, {Name: "CONTROL_DIR", Value: ctl}},
			TerminationGracePeriodSeconds: ptr[int64](5),
		},
		Port:           8080,
		Replicas:       &replicas,
		ReadinessProbe: &v1alpha1.Probe{HTTPGet: v1alpha1.HTTPGetAction{Path: "/ready"}, PeriodSeconds: 1},
	}
}

func ptr[T any](v T) *T { return &v }

func startService(t *testing.T, cfg Config) *Service {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "svc"
	}
	if cfg.LogDir == "" {
		cfg.LogDir = t.TempDir()
	}
	s, err := NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.Delete(ctx)
	})
	return s
}

func waitFor(t *testing.T, s *Service, d time.Duration, what string, cond func(backend.Service) bool) backend.Service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	st, err := s.Wait(ctx, cond)
	if err != nil {
		t.Fatalf("%s: not within %v: desired %d, ready %d, replicas %+v\nevents: %s", what, d, st.DesiredReplicas, st.ReadyReplicas, st.Replicas, eventLines(st))
	}
	return st
}

func eventLines(st backend.Service) string {
	var b strings.Builder
	for _, e := range st.Events {
		fmt.Fprintf(&b, "\n  %s %s %s", e.Time.Format("15:04:05.000"), e.Reason, e.Message)
	}
	return b.String()
}

// loadGen sends requests from workers until stopped and counts outcomes.
type loadGen struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
	byBody     map[string]int
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(url, method string, workers int) *loadGen {
	g := &loadGen{stop: make(chan struct{}), byBody: map[string]int{}}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 30 * time.Second}
	for i := 0; i < workers; i++ {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for {
				select {
				case <-g.stop:
					return
				default:
				}
				req, _ := http.NewRequest(method, url, strings.NewReader(`{"x":1}`))
				resp, err := client.Do(req)
				if err != nil {
					g.fail(err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					g.fail(fmt.Sprintf("%d %s", resp.StatusCode, body))
					continue
				}
				g.ok.Add(1)
				g.mu.Lock()
				g.byBody[strings.TrimSpace(string(body))]++
				g.mu.Unlock()
			}
		}()
	}
	return g
}

func (g *loadGen) fail(msg string) {
	g.failed.Add(1)
	g.mu.Lock()
	if len(g.failures) < 5 {
		g.failures = append(g.failures, msg)
	}
	g.mu.Unlock()
}

func (g *loadGen) Stop() { close(g.stop); g.wg.Wait() }

func TestServiceScalesUpUnderCPULoadAndDownAfterTheWindow(t *testing.T) {
	spec := testSpec(t.TempDir(), 1)
	spec.Replicas = nil
	spec.Resources.CPU = ptr(resource.MustParse("50m"))
	spec.Autoscaling = &v1alpha1.Autoscaling{MinReplicas: ptr[int32](1), MaxReplicas: 3,
		Target:   v1alpha1.AutoscalingTarget{CPUUtilization: ptr[int32](50)},
		Behavior: &v1alpha1.ScalingBehavior{ScaleDown: &v1alpha1.ScalingRules{StabilizationWindowSeconds: ptr[int32](2)}}}
	sync := time.Second
	s := startService(t, Config{Spec: spec, SyncPeriod: sync})
	waitFor(t, s, 20*time.Second, "first replica ready", func(st backend.Service) bool { return st.ReadyReplicas == 1 })
	// Let one sync take the baseline CPU reading.
	waitFor(t, s, 5*sync, "idle metric", func(st backend.Service) bool { return st.Metric != "" })

	load := startLoad(s.URL()+"/work?ms=20", http.MethodGet, 2)
	start := time.Now()
	st := waitFor(t, s, 2*sync+time.Second, "scale-up within two sync periods", func(st backend.Service) bool { return st.DesiredReplicas > 1 })
	t.Logf("scaled to %d after %v: %s", st.DesiredReplicas, time.Since(start).Round(time.Millisecond), st.Events[len(st.Events)-1].Message)
	var msg string
	for _, e := range st.Events {
		if e.Reason == "SuccessfulRescale" {
			msg = e.Message
		}
	}
	if !strings.HasPrefix(msg, "New size: ") || !strings.HasSuffix(msg, "; reason: cpu resource utilization (percentage of request) above target") {
		t.Errorf("rescale event %q does not say why", msg)
	}
	waitFor(t, s, 20*time.Second, "new replicas ready", func(st backend.Service) bool { return st.ReadyReplicas == st.DesiredReplicas })
	load.Stop()
	if load.failed.Load() > 0 {
		t.Errorf("%d requests failed while scaling up: %v", load.failed.Load(), load.failures)
	}

	// Idle: after the 2 s stabilisation window the count returns to 1.
	idleSince := time.Now()
	waitFor(t, s, 2*time.Second+4*sync+5*time.Second, "scale-down after the window", func(st backend.Service) bool {
		return st.DesiredReplicas == 1 && len(st.Replicas) == 1
	})
	if d := time.Since(idleSince); d < 2*time.Second {
		t.Errorf("scaled down after %v, before the 2 s stabilisation window", d)
	}
}

func TestServiceScalesOnConcurrency(t *testing.T) {
	spec := testSpec(t.TempDir(), 1)
	spec.Replicas = nil
	spec.Autoscaling = &v1alpha1.Autoscaling{MaxReplicas: 3, Target: v1alpha1.AutoscalingTarget{Concurrency: ptr[int32](1)}}
	s := startService(t, Config{Spec: spec, SyncPeriod: time.Second})
	waitFor(t, s, 20*time.Second, "first replica ready", func(st backend.Service) bool { return st.ReadyReplicas == 1 })
	load := startLoad(s.URL()+"/sleep?ms=50", http.MethodGet, 6)
	defer load.Stop()
	st := waitFor(t, s, 3*time.Second, "scale-up on concurrency", func(st backend.Service) bool { return st.DesiredReplicas == 3 })
	if !strings.HasPrefix(st.Metric, "concurrency ") {
		t.Errorf("metric %q is not the concurrency", st.Metric)
	}
}

func pidOf(t *testing.T, s *Service, name string) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.replicas {
		if r.name == name && r.proc != nil {
			return r.proc.Pid()
		}
	}
	t.Fatalf("replica %s has no process", name)
	return 0
}

func TestServiceRestartsAKilledReplicaAndStopsRoutingToIt(t *testing.T) {
	s := startService(t, Config{Spec: testSpec(t.TempDir(), 2)})
	st := waitFor(t, s, 20*time.Second, "two ready replicas", func(st backend.Service) bool { return st.ReadyReplicas == 2 })
	victim := st.Replicas[0].Name
	pid := pidOf(t, s, victim)
	killed := time.Now()
	syscall.Kill(pid, syscall.SIGKILL)
	// Within one probe period (1 s) the load balancer no longer routes to it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for s.lb.(*LoadBalancer).Get(victim).Ready() {
		select {
		case <-ctx.Done():
			t.Fatal("the load balancer still routes to the killed replica after one probe period")
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Logf("unrouted %v after the kill", time.Since(killed).Round(time.Millisecond))
	st = waitFor(t, s, 20*time.Second, "restart", func(st backend.Service) bool {
		for _, r := range st.Replicas {
			if r.Name == victim && r.Restarts == 1 && r.Ready {
				return true
			}
		}
		return false
	})
	for _, r := range st.Replicas {
		if r.Name == victim && r.LastReason != "Error" {
			t.Errorf("last reason %q, want Error", r.LastReason)
		}
	}
	if pidOf(t, s, victim) == pid {
		t.Error("the replica was not restarted as a new process")
	}
}

func TestServiceNotReadyReplicaGetsNoTraffic(t *testing.T) {
	ctl := t.TempDir()
	s := startService(t, Config{Spec: testSpec(ctl, 2)})
	st := waitFor(t, s, 20*time.Second, "two ready replicas", func(st backend.Service) bool { return st.ReadyReplicas == 2 })
	sick := st.Replicas[1]
	os.WriteFile(filepath.Join(ctl, "notready-"+strconv.Itoa(sick.Port)), nil, 0o644)
	// failureThreshold 3 × period 1 s.
	waitFor(t, s, 6*time.Second, "replica marked not ready", func(st backend.Service) bool { return st.ReadyReplicas == 1 })
	before := hitsOf(t, sick.Port)
	for i := 0; i < 50; i++ {
		if code, _ := get(t, s.URL()+"/sleep?ms=1"); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	if after := hitsOf(t, sick.Port); after != before {
		t.Fatalf("the not-ready replica got %d requests", after-before)
	}
	// Ready again: it gets traffic again.
	os.Remove(filepath.Join(ctl, "notready-"+strconv.Itoa(sick.Port)))
	waitFor(t, s, 6*time.Second, "replica ready again", func(st backend.Service) bool { return st.ReadyReplicas == 2 })
}

func hitsOf(t *testing.T, port int) int {
	t.Helper()
	_, body := get(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/hits")
	n, err := strconv.Atoi(strings.TrimSpace(body))
	if err != nil {
		t.Fatalf("hits: %q", body)
	}
	return n
}

func TestServiceRollingUpdateUnderLoadFailsNoRequest(t *testing.T) {
	spec := testSpec(t.TempDir(), 2)
	spec.Strategy = &v1alpha1.RollingUpdate{MaxSurge: "1", MaxUnavailable: "0"}
	s := startService(t, Config{Spec: spec})
	waitFor(t, s, 20*time.Second, "two ready replicas", RolledOut)

	gets := startLoad(s.URL()+"/sleep?ms=5", http.MethodGet, 2)
	posts := startLoad(s.URL()+"/sleep?ms=5", http.MethodPost, 2)
	next := spec
	next.Env = []v1alpha1.EnvVar{{Name: "GEN", Value: "2"}, spec.Env[1]}
	if err := s.Update(next, 2, nil, ""); err != nil {
		t.Fatal(err)
	}
	maxReplicas := 0
	st := waitFor(t, s, 60*time.Second, "rolled out generation 2", func(st backend.Service) bool {
		maxReplicas = max(maxReplicas, len(st.Replicas))
		return st.Generation == 2 && RolledOut(st)
	})
	time.Sleep(200 * time.Millisecond) // a few requests on the new generation
	gets.Stop()
	posts.Stop()
	for _, g := range []*loadGen{gets, posts} {
		if g.failed.Load() != 0 {
			t.Errorf("%d of %d requests failed: %v", g.failed.Load(), g.failed.Load()+g.ok.Load(), g.failures)
		}
	}
	if maxReplicas > 3 {
		t.Errorf("saw %d replicas at once; maxSurge 1 allows 3", maxReplicas)
	}
	gen2 := 0
	for body, n := range posts.byBody {
		if strings.HasSuffix(body, " 2") {
			gen2 += n
		}
	}
	if gen2 == 0 {
		t.Errorf("no request reached generation 2: %v", posts.byBody)
	}
	for _, r := range st.Replicas {
		if r.Generation != 2 {
			t.Errorf("replica %s is still generation %d", r.Name, r.Generation)
		}
	}
	t.Logf("%d GETs and %d POSTs, none failed; at most %d replicas", gets.ok.Load(), posts.ok.Load(), maxReplicas)
}

// groupAlive reports whether any live (not zombie) process of process
// group pgid is in /proc. Zombies are dead: in a container without an
// init that reaps, orphans stay zombies.
func groupAlive(t *testing.T, pgid int) bool {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		t.Fatal(err)
	}
	procs, err := fs.AllProcs()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if st, err := p.Stat(); err == nil && st.PGRP == pgid && st.State != "Z" {
			return true
		}
	}
	return false
}

func TestServiceDeleteLeavesNoProcessBehind(t *testing.T) {
	spec := testSpec(t.TempDir(), 2)
	spec.Args = []string{"-child"}
	s := startService(t, Config{Spec: spec})
	st := waitFor(t, s, 20*time.Second, "two ready replicas", func(st backend.Service) bool { return st.ReadyReplicas == 2 })
	var pgids []int
	for _, r := range st.Replicas {
		pgids = append(pgids, pidOf(t, s, r.Name))
	}
	for _, g := range pgids {
		if !groupAlive(t, g) {
			t.Fatalf("process group %d is not running before delete", g)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	for _, g := range pgids {
		if groupAlive(t, g) {
			t.Errorf("process group %d (replica and its sleep child) survived delete", g)
		}
	}
	if resp, err := http.Get(s.URL()); err == nil {
		resp.Body.Close()
		t.Error("the load balancer still answers after delete")
	}
}

func TestServiceLivenessFailureRestartsTheReplica(t *testing.T) {
	ctl := t.TempDir()
	spec := testSpec(ctl, 1)
	spec.LivenessProbe = &v1alpha1.Probe{HTTPGet: v1alpha1.HTTPGetAction{Path: "/live"}, PeriodSeconds: 1, FailureThreshold: 2}
	spec.StartupProbe = &v1alpha1.Probe{HTTPGet: v1alpha1.HTTPGetAction{Path: "/ready"}, PeriodSeconds: 1}
	s := startService(t, Config{Spec: spec})
	st := waitFor(t, s, 20*time.Second, "ready replica", func(st backend.Service) bool { return st.ReadyReplicas == 1 })
	port := st.Replicas[0].Port
	os.WriteFile(filepath.Join(ctl, "unhealthy-"+strconv.Itoa(port)), nil, 0o644)
	st = waitFor(t, s, 10*time.Second, "liveness restart", func(st backend.Service) bool {
		return len(st.Replicas) == 1 && st.Replicas[0].Restarts >= 1
	})
	if st.Replicas[0].LastReason != "LivenessProbeFailed" {
		t.Errorf("last reason %q, want LivenessProbeFailed", st.Replicas[0].LastReason)
	}
	os.Remove(filepath.Join(ctl, "unhealthy-"+strconv.Itoa(port)))
	waitFor(t, s, 20*time.Second, "ready after restart", func(st backend.Service) bool { return st.ReadyReplicas == 1 })
}

func TestServiceCrashingReplicaBacksOff(t *testing.T) {
	spec := testSpec(t.TempDir(), 1)
	spec.Args = []string{"-exit", "3"}
	s := startService(t, Config{Spec: spec, BackOff: CrashLoopBackOff{Initial: 300 * time.Millisecond, Max: time.Second}})
	st := waitFor(t, s, 20*time.Second, "three restarts", func(st backend.Service) bool {
		return len(st.Replicas) == 1 && st.Replicas[0].Restarts >= 3
	})
	r := st.Replicas[0]
	if r.LastReason != "Error" || r.Ready {
		t.Errorf("replica %+v: want last reason Error and not ready", r)
	}
	if code, body := get(t, s.URL()+"/"); code != http.StatusServiceUnavailable {
		t.Errorf("with no ready replica the service answered %d %s", code, body)
	}
}

// A replica that exits keeps its last log lines in its status, where
// diagnose reads the cause (bug 9 of issue 12: a missing model file).
func TestServiceCrashedReplicaKeepsItsLastLogLines(t *testing.T) {
	spec := testSpec(t.TempDir(), 1)
	const cause = "FileNotFoundError: [Errno 2] No such file or directory: '/models/digits.json'"
	spec.Args = []string{"-say", cause, "-exit", "1"}
	s := startService(t, Config{Spec: spec, BackOff: CrashLoopBackOff{Initial: 300 * time.Millisecond, Max: time.Second}})
	st := waitFor(t, s, 20*time.Second, "a restart", func(st backend.Service) bool {
		return len(st.Replicas) == 1 && st.Replicas[0].Restarts >= 1 && len(st.Replicas[0].LogTail) > 0
	})
	if tail := st.Replicas[0].LogTail; tail[len(tail)-1] != cause {
		t.Errorf("log tail %q, want it to end with %q", tail, cause)
	}
}

func TestServiceDetachLeavesReplicasRunningForASuccessorToAdopt(t *testing.T) {
	spec := testSpec(t.TempDir(), 2)
	s1 := startService(t, Config{Spec: spec})
	st := waitFor(t, s1, 20*time.Second, "two ready replicas", func(st backend.Service) bool { return st.ReadyReplicas == 2 })
	addr := strings.TrimPrefix(s1.URL(), "http://")
	pids := map[string]int{}
	for _, r := range st.Replicas {
		pids[r.Name] = pidOf(t, s1, r.Name)
	}
	adopted := s1.Detach()
	if len(adopted) != 2 {
		t.Fatalf("detach handed over %d replicas, want 2", len(adopted))
	}
	for _, a := range adopted {
		if !groupAlive(t, a.Proc.Pid()) {
			t.Fatalf("replica %d stopped on detach", a.Index)
		}
	}

	s2 := startService(t, Config{Spec: spec, Addr: addr, Adopt: adopted})
	st = waitFor(t, s2, 20*time.Second, "adopted replicas ready", func(st backend.Service) bool { return st.ReadyReplicas == 2 })
	if s2.URL() != s1.URL() {
		t.Errorf("URL changed from %s to %s", s1.URL(), s2.URL())
	}
	for _, r := range st.Replicas {
		if pidOf(t, s2, r.Name) != pids[r.Name] || r.Restarts != 0 {
			t.Errorf("replica %s: pid %d (was %d), restarts %d: it was restarted, not adopted", r.Name, pidOf(t, s2, r.Name), pids[r.Name], r.Restarts)
		}
	}
	if code, _ := get(t, s2.URL()+"/sleep?ms=1"); code != 200 {
		t.Fatalf("request through the successor: %d", code)
	}
	// The successor supervises what it adopted: a killed replica restarts.
	victim := st.Replicas[0].Name
	syscall.Kill(pids[victim], syscall.SIGKILL)
	waitFor(t, s2, 20*time.Second, "adopted replica restarted", func(st backend.Service) bool {
		for _, r := range st.Replicas {
			if r.Name == victim && r.Restarts == 1 && r.Ready {
				return true
			}
		}
		return false
	})
	if n := len(s2.Status().Replicas); n != 2 {
		t.Errorf("%d replicas after adoption, want 2 (no extra replicas started)", n)
	}
}
