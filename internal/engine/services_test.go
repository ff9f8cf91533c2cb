package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/engine/node"
	"github.com/petrel-dev/petrel/internal/spec"
)

// waitService polls the service's status until cond holds (services have
// no watch in backend.Backend).
func waitService(t *testing.T, e *Engine, name string, timeout time.Duration, what string, cond func(backend.Service) bool) backend.Service {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *backend.Service
	for time.Now().Before(deadline) {
		s, err := e.GetService(context.Background(), name)
		if err == nil && cond(*s) {
			return *s
		}
		last = s
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v; last status %+v", what, timeout, last)
	return backend.Service{}
}

func replicaPids(t *testing.T, e *Engine, name string) []int {
	t.Helper()
	var out []int
	dirs, _ := filepath.Glob(filepath.Join(e.serviceDir(name), "replicas", "*", node.PidsFile))
	for _, f := range dirs {
		var p ShimPids
		if err := node.ReadJSON(f, &p); err == nil && node.Alive(p.Pid, p.StartTicks) {
			out = append(out, p.Pid)
		}
	}
	return out
}

func TestEngineRunsAServiceAcrossScaleRestartAndDelete(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed")
	}
	home := t.TempDir()
	cfg := Config{Home: home, GPUs: FakeGPUs(0), ShimArgv: []string{os.Args[0], "-shim"}, Logf: t.Logf}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close() }()

	vol := &v1alpha1.Volume{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindVolume},
		Metadata: v1alpha1.ObjectMeta{Name: "site"}}
	svc := inferenceService("web", v1alpha1.InferenceServiceSpec{
		PodTemplate: v1alpha1.PodTemplate{
			Command:                       []string{"python3", "-m", "http.server", "$(PORT)", "--bind", "127.0.0.1", "--directory", "$(SITE)"},
			Volumes:                       []v1alpha1.VolumeMount{{Name: "site", MountPath: "/site", PathEnv: "SITE"}},
			TerminationGracePeriodSeconds: ptr(int64(2)),
		},
		Port:           8080,
		Replicas:       ptr(int32(2)),
		ReadinessProbe: &v1alpha1.Probe{HTTPGet: v1alpha1.HTTPGetAction{Path: "/"}, PeriodSeconds: 1},
	})
	specDir := t.TempDir()
	if _, err := e.Apply(context.Background(), docsOf(specDir, vol, svc)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.volumePath("site"), "hello.txt"), []byte("hello from the volume\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := waitService(t, e, "web", 60*time.Second, "two ready replicas", func(s backend.Service) bool { return s.ReadyReplicas == 2 })
	url := st.URL
	resp, err := http.Get(url + "/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello from the volume\n" {
		t.Fatalf("GET through the service: %d %q", resp.StatusCode, body)
	}

	// Applying the same spec changes nothing; scale to one replica.
	if out, err := e.Apply(context.Background(), docsOf(specDir, vol, svc)); err != nil || out[1].Action != "unchanged" {
		t.Fatalf("re-apply: %v %v", out, err)
	}
	if err := e.Scale(context.Background(), "web", 1); err != nil {
		t.Fatal(err)
	}
	waitService(t, e, "web", 30*time.Second, "scaled to one", func(s backend.Service) bool {
		return s.DesiredReplicas == 1 && len(s.Replicas) == 1 && s.ReadyReplicas == 1
	})
	var logs bytes.Buffer
	if err := e.Logs(context.Background(), backend.Ref{Kind: "service", Name: "web"}, backend.LogOptions{Replica: -1}, &logs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "GET /hello.txt") && !strings.Contains(logs.String(), "GET / HTTP") {
		t.Errorf("service logs lack the server's request lines:\n%s", logs.String())
	}

	// A restarted server brings the service back on the same URL, with the
	// scaled count, adopting the replica that kept running meanwhile.
	before := replicaPids(t, e, "web")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if e, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	st = waitService(t, e, "web", 60*time.Second, "service back after restart", func(s backend.Service) bool { return s.ReadyReplicas == 1 })
	if st.URL != url || st.DesiredReplicas != 1 {
		t.Errorf("after restart: URL %s (was %s), desired %d (want 1)", st.URL, url, st.DesiredReplicas)
	}
	if resp, err := http.Get(url + "/hello.txt"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET after the restart: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	pids := replicaPids(t, e, "web")
	if len(pids) != 1 || len(before) != 1 || pids[0] != before[0] {
		t.Fatalf("replica processes %v after the restart, %v before: want the same one, adopted", pids, before)
	}
	if st.Replicas[0].Restarts != 0 {
		t.Errorf("the adopted replica shows %d restarts", st.Replicas[0].Restarts)
	}

	// Applying the unchanged spec ends the manual scale: spec.replicas
	// (2) applies again, as re-applying a Deployment does.
	if out, err := e.Apply(context.Background(), docsOf(specDir, vol, svc)); err != nil || out[1].Action != "configured" {
		t.Fatalf("re-apply after scale: %v %v", out, err)
	}
	waitService(t, e, "web", 60*time.Second, "back to the spec's two replicas", func(s backend.Service) bool {
		return s.DesiredReplicas == 2 && s.ReadyReplicas == 2
	})
	pids = replicaPids(t, e, "web")
	if err := e.Delete(context.Background(), backend.Ref{Kind: "service", Name: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.GetService(context.Background(), "web"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("after delete: %v, want not found", err)
	}
	for _, p := range pids {
		if node.StartTicks(p) != 0 { // running and not a zombie
			t.Errorf("replica process group %d survived delete", p)
		}
	}
}

// inferenceService is the InferenceService name with spec s.
func inferenceService(name string, s v1alpha1.InferenceServiceSpec) *v1alpha1.InferenceService {
	return &v1alpha1.InferenceService{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindInferenceService},
		Metadata: v1alpha1.ObjectMeta{Name: name}, Spec: s}
}

// restarted closes e1, as a stopping server does (its workloads keep
// running), and starts the next engine on cfg, which deletes service and
// closes when the test ends.
func restarted(t *testing.T, e1 *Engine, cfg Config, service string) *Engine {
	t.Helper()
	e1.Close()
	e2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e2.Delete(context.Background(), backend.Ref{Kind: "service", Name: service})
		e2.Close()
	})
	return e2
}

func docsOf(dir string, objs ...v1alpha1.Object) []*spec.Document {
	var docs []*spec.Document
	for _, o := range objs {
		docs = append(docs, &spec.Document{File: "test.yaml", Object: o, Dir: dir})
	}
	return docs
}

// A volume a service mounts cannot be deleted while the service exists.
func TestVolumeMountedByAServiceCannotBeDeleted(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed")
	}
	e := newEngine(t, 0)
	vol := &v1alpha1.Volume{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindVolume},
		Metadata: v1alpha1.ObjectMeta{Name: "models"}}
	svc := inferenceService("model-server", v1alpha1.InferenceServiceSpec{
		PodTemplate: v1alpha1.PodTemplate{
			Command:                       []string{"python3", "-m", "http.server", "$(PORT)", "--bind", "127.0.0.1", "--directory", "$(MODELS)"},
			Volumes:                       []v1alpha1.VolumeMount{{Name: "models", MountPath: "/models", PathEnv: "MODELS"}},
			TerminationGracePeriodSeconds: ptr(int64(1)),
		},
		Port: 8080, Replicas: ptr(int32(1)),
	})
	if _, err := e.Apply(context.Background(), docsOf(t.TempDir(), vol, svc)); err != nil {
		t.Fatal(err)
	}
	err := e.Delete(context.Background(), backend.Ref{Kind: "volume", Name: "models"})
	if err == nil || !strings.Contains(err.Error(), `service "model-server"`) {
		t.Fatalf("delete volume: %v, want a refusal naming the service", err)
	}
	if vs, _ := e.ListVolumes(context.Background()); len(vs) != 1 {
		t.Fatalf("volumes after the refused delete: %+v", vs)
	}
	if err := e.Delete(context.Background(), backend.Ref{Kind: "service", Name: "model-server"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(context.Background(), backend.Ref{Kind: "volume", Name: "models"}); err != nil {
		t.Fatalf("delete volume after the service: %v", err)
	}
}

// A replica's restart count, last reason and the service's events survive
// a server restart, and the service is found at once by the new server.
func TestServiceHistorySurvivesAServerRestart(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed")
	}
	home := t.TempDir()
	cfg := Config{Home: home, GPUs: FakeGPUs(0), ShimArgv: []string{os.Args[0], "-shim"}, Logf: t.Logf}
	e1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	flag := filepath.Join(t.TempDir(), "ran-once")
	svc := inferenceService("flaky", v1alpha1.InferenceServiceSpec{
		PodTemplate: v1alpha1.PodTemplate{
			Command:                       []string{"sh", "-c", "if [ ! -f $(FLAG) ]; then touch $(FLAG); exit 3; fi; exec python3 -m http.server $(PORT) --bind 127.0.0.1"},
			Env:                           []v1alpha1.EnvVar{{Name: "FLAG", Value: flag}},
			TerminationGracePeriodSeconds: ptr(int64(1)),
		},
		Port: 8080, Replicas: ptr(int32(1)),
		ReadinessProbe: &v1alpha1.Probe{HTTPGet: v1alpha1.HTTPGetAction{Path: "/"}, PeriodSeconds: 1},
	})
	if _, err := e1.Apply(context.Background(), docsOf(t.TempDir(), svc)); err != nil {
		t.Fatal(err)
	}
	before := waitService(t, e1, "flaky", 60*time.Second, "ready after one crash", func(s backend.Service) bool {
		return s.ReadyReplicas == 1 && len(s.Replicas) == 1 && s.Replicas[0].Restarts == 1
	})
	e2 := restarted(t, e1, cfg, "flaky") // replicas keep running under their shims
	after, err := e2.GetService(context.Background(), "flaky")
	if err != nil {
		t.Fatalf("right after the restart: %v", err)
	}
	if len(after.Replicas) != 1 || after.Replicas[0].Restarts != 1 || after.Replicas[0].LastReason != backend.ReasonError {
		t.Fatalf("replicas after restart %+v, want restarts 1 and last reason Error as before (%+v)", after.Replicas, before.Replicas)
	}
	if len(after.Events) < len(before.Events) || after.Events[0].Message != before.Events[0].Message {
		t.Fatalf("events after restart %+v, want the earlier ones kept (%+v)", after.Events, before.Events)
	}
}

// No secret value is at rest in clear text anywhere under PETREL_HOME —
// state.db (and its WAL), shim.json of job attempts and service replicas —
// neither while the workloads run nor after they are deleted, and
// state.db is its owner's only.
func TestNoSecretValueIsStoredInClearText(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed")
	}
	const secret = "tok-7f3a9c21e5b84d"
	e := newEngine(t, 0)
	home := e.cfg.Home
	// The workloads check hashes, so the spec itself holds no secret.
	const tokenSHA, urlSHA = "e3498e1921b707371b5d48b9b050c527ecca994474a31e76e1f15da66559356d", "a6fdbd567491649c86b66ecd2c699710e714fae082d1690f9f5aa10d6af64119"
	check := `test "$(printf %s "$TOKEN" | sha256sum | cut -c1-64)" = ` + tokenSHA
	j := job("secret-job", "sh", "-c", check+` && test "$(printf %s "$URL" | sha256sum | cut -c1-64)" = `+urlSHA+` && echo token-ok`)
	j.Spec.Env = []v1alpha1.EnvVar{{Name: "TOKEN", Value: secret, Secret: true}, {Name: "URL", Value: "https://u:$(TOKEN)@host"}}
	svc := inferenceService("secret-svc", v1alpha1.InferenceServiceSpec{
		PodTemplate: v1alpha1.PodTemplate{
			Command:                       []string{"sh", "-c", check + ` && exec python3 -m http.server $(PORT) --bind 127.0.0.1`},
			Env:                           []v1alpha1.EnvVar{{Name: "TOKEN", Value: secret, Secret: true}},
			TerminationGracePeriodSeconds: ptr(int64(1)),
		},
		Port: 8080, Replicas: ptr(int32(1)),
		ReadinessProbe: &v1alpha1.Probe{HTTPGet: v1alpha1.HTTPGetAction{Path: "/"}, PeriodSeconds: 1},
	})
	if _, err := e.Apply(context.Background(), docsOf(t.TempDir(), j, svc)); err != nil {
		t.Fatal(err)
	}
	got := waitJob(t, e, "secret-job", 20*time.Second, finished)
	if got.Phase != backend.JobComplete {
		t.Fatalf("the job did not see its secret: %s %+v", got.Phase, got.Attempts)
	}
	waitService(t, e, "secret-svc", 30*time.Second, "the replica, which checks its secret, is ready", func(s backend.Service) bool { return s.ReadyReplicas == 1 })
	grep := func(when string) {
		t.Helper()
		_ = filepath.Walk(home, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() || info.Mode()&os.ModeType != 0 {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s: %s holds the secret in clear text", when, p)
			}
			return nil
		})
	}
	grep("while running")
	if st, err := os.Stat(filepath.Join(home, "state.db")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("state.db mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if err := e.Delete(context.Background(), backend.Ref{Kind: "service", Name: "secret-svc"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(context.Background(), backend.Ref{Kind: "job", Name: "secret-job"}); err != nil {
		t.Fatal(err)
	}
	grep("after delete")
}

// A service may not ask for (or be scaled to) more replicas than the
// server's limit; the refusal names the flag and changes nothing.
func TestReplicaCountsOverTheLimitAreRefused(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed")
	}
	e, err := New(Config{Home: t.TempDir(), GPUs: FakeGPUs(0), ShimArgv: []string{os.Args[0], "-shim"}, Logf: t.Logf, MaxReplicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = e.Delete(context.Background(), backend.Ref{Kind: "service", Name: "many"})
		e.Close()
	}()
	svc := func(replicas int32) *v1alpha1.InferenceService {
		return inferenceService("many", v1alpha1.InferenceServiceSpec{
			PodTemplate: v1alpha1.PodTemplate{Command: []string{"python3", "-m", "http.server", "$(PORT)", "--bind", "127.0.0.1"}, TerminationGracePeriodSeconds: ptr(int64(1))},
			Port:        8080, Replicas: ptr(replicas),
		})
	}
	_, err = e.Apply(context.Background(), docsOf(t.TempDir(), svc(100000)))
	if err == nil || !strings.Contains(err.Error(), "--max-replicas") {
		t.Fatalf("apply of 100000 replicas: %v, want a refusal naming --max-replicas", err)
	}
	if ss, _ := e.ListServices(context.Background()); len(ss) != 0 {
		t.Fatalf("a refused service was created: %+v", ss)
	}
	if _, err := e.Apply(context.Background(), docsOf(t.TempDir(), svc(1))); err != nil {
		t.Fatal(err)
	}
	if err := e.Scale(context.Background(), "many", 4); err == nil || !strings.Contains(err.Error(), "limit of 3") {
		t.Fatalf("scale to 4: %v, want a refusal", err)
	}
	if s, _ := e.GetService(context.Background(), "many"); s.DesiredReplicas != 1 {
		t.Fatalf("desired replicas after the refused scale: %d, want 1", s.DesiredReplicas)
	}
}

// An autoscaled service keeps the replica count its replicas show across
// a server restart (as a Deployment's spec.replicas outlives the HPA
// controller): the adopted replicas are not scaled down at once.
func TestAutoscaledReplicasSurviveAServerRestart(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed")
	}
	home := t.TempDir()
	cfg := Config{Home: home, GPUs: FakeGPUs(0), ShimArgv: []string{os.Args[0], "-shim"}, Logf: t.Logf}
	e1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc := inferenceService("auto", v1alpha1.InferenceServiceSpec{
		PodTemplate:    v1alpha1.PodTemplate{Command: []string{"python3", "-m", "http.server", "$(PORT)", "--bind", "127.0.0.1"}, TerminationGracePeriodSeconds: ptr(int64(1))},
		Port:           8080,
		Autoscaling:    &v1alpha1.Autoscaling{MinReplicas: ptr(int32(1)), MaxReplicas: 4, Target: v1alpha1.AutoscalingTarget{Concurrency: ptr(int32(4))}},
		ReadinessProbe: &v1alpha1.Probe{HTTPGet: v1alpha1.HTTPGetAction{Path: "/"}, PeriodSeconds: 1},
	})
	dir := t.TempDir()
	if _, err := e1.Apply(context.Background(), docsOf(dir, svc)); err != nil {
		t.Fatal(err)
	}
	if err := e1.Scale(context.Background(), "auto", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := e1.Apply(context.Background(), docsOf(dir, svc)); err != nil { // autoscaling resumes at 3
		t.Fatal(err)
	}
	waitService(t, e1, "auto", 60*time.Second, "three ready replicas", func(s backend.Service) bool { return s.ReadyReplicas == 3 })
	e2 := restarted(t, e1, cfg, "auto") // replicas keep running under their shims
	s, err := e2.GetService(context.Background(), "auto")
	if err != nil {
		t.Fatal(err)
	}
	if s.DesiredReplicas != 3 {
		t.Fatalf("after the restart: desired %d, want the 3 the replicas show", s.DesiredReplicas)
	}
	for _, ev := range s.Events {
		if strings.Contains(ev.Message, "scale-down") {
			t.Fatalf("a replica was scaled down at the restart: %s", ev.Message)
		}
	}
}

// A service's replicas run with the submitting shell's PATH, as a job's
// attempts do: a server only an activated virtualenv provides is found.
func TestServiceReplicasRunWithTheSubmittingShellsPath(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed")
	}
	e := newEngine(t, 0)
	t.Cleanup(func() { _ = e.Delete(context.Background(), backend.Ref{Kind: "service", Name: "venv-svc"}) })
	venv := t.TempDir()
	if err := os.WriteFile(filepath.Join(venv, "venv-server"), []byte("#!/bin/sh\nexec python3 -m http.server \"$PORT\" --bind 127.0.0.1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	svc := inferenceService("venv-svc", v1alpha1.InferenceServiceSpec{
		PodTemplate: v1alpha1.PodTemplate{Command: []string{"venv-server"}, TerminationGracePeriodSeconds: ptr(int64(1))},
		Port:        8080, Replicas: ptr(int32(1)),
		ReadinessProbe: &v1alpha1.Probe{HTTPGet: v1alpha1.HTTPGetAction{Path: "/"}, PeriodSeconds: 1},
	})
	shell := map[string]string{"PATH": venv + ":" + os.Getenv("PATH"), "VIRTUAL_ENV": venv}
	if _, err := e.Apply(context.Background(), []*spec.Document{{File: "s.yaml", Object: svc, Dir: t.TempDir(), ShellEnv: shell}}); err != nil {
		t.Fatal(err)
	}
	waitService(t, e, "venv-svc", 30*time.Second, "the replica started from the virtualenv's PATH is ready", func(s backend.Service) bool { return s.ReadyReplicas == 1 })
}

// A replica that dies while no server runs is found by the next one as a
// replica that exited: the same name, RESTARTS 1, a BackOff event, its log
// kept, started again — not dropped and replaced by a new name. A replica
// scaled away before the restart is not brought back.
func TestReplicaThatDiedWhileTheServerWasDownIsRestartedUnderItsName(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed")
	}
	home := t.TempDir()
	cfg := Config{Home: home, GPUs: FakeGPUs(0), ShimArgv: []string{os.Args[0], "-shim"}, Logf: t.Logf}
	e1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc := inferenceService("web", v1alpha1.InferenceServiceSpec{
		PodTemplate: v1alpha1.PodTemplate{
			Command:                       []string{"sh", "-c", "echo serving; exec python3 -m http.server $(PORT) --bind 127.0.0.1"},
			TerminationGracePeriodSeconds: ptr(int64(1)),
		},
		Port: 8080, Replicas: ptr(int32(3)),
		ReadinessProbe: &v1alpha1.Probe{HTTPGet: v1alpha1.HTTPGetAction{Path: "/"}, PeriodSeconds: 1},
	})
	if _, err := e1.Apply(context.Background(), docsOf(t.TempDir(), svc)); err != nil {
		t.Fatal(err)
	}
	waitService(t, e1, "web", 60*time.Second, "3 ready", func(s backend.Service) bool { return s.ReadyReplicas == 3 })
	if err := e1.Scale(context.Background(), "web", 2); err != nil {
		t.Fatal(err)
	}
	waitService(t, e1, "web", 60*time.Second, "scaled to 2", func(s backend.Service) bool { return len(s.Replicas) == 2 && s.ReadyReplicas == 2 })
	e1.Close()
	// web-0 dies while no server runs.
	var p ShimPids
	if err := node.ReadJSON(filepath.Join(e1.serviceDir("web"), "replicas", "web-0", node.PidsFile), &p); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for node.Alive(p.Pid, p.StartTicks) {
		time.Sleep(20 * time.Millisecond)
	}
	e2 := restarted(t, e1, cfg, "web")
	s := waitService(t, e2, "web", 60*time.Second, "web-0 restarted and ready", func(s backend.Service) bool {
		for _, r := range s.Replicas {
			if r.Name == "web-0" && r.Restarts == 1 && r.Ready {
				return s.ReadyReplicas == 2
			}
		}
		return false
	})
	names := []string{}
	for _, r := range s.Replicas {
		names = append(names, r.Name)
	}
	if len(names) != 2 || names[0] != "web-0" || names[1] != "web-1" {
		t.Errorf("replicas %v after the restart, want web-0 and web-1 (web-2 was scaled away)", names)
	}
	found := false
	for _, ev := range s.Events {
		found = found || ev.Reason == "BackOff" && strings.Contains(ev.Message, "web-0 exited")
	}
	if !found {
		t.Errorf("no BackOff event for web-0 in %+v", s.Events)
	}
	log, err := os.ReadFile(filepath.Join(e2.serviceDir("web"), "replicas", "web-0", "output.log"))
	if err != nil || strings.Count(string(log), "serving") < 2 {
		t.Errorf("web-0's log %q (%v), want the first run's line kept and the restart's added", log, err)
	}
}
