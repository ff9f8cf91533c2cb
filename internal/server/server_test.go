package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/engine"
	"github.com/petrel-dev/petrel/internal/spec"
)

// fakeEngine answers the calls the API tests make; any other call panics
// on the nil embedded Backend.
type fakeEngine struct {
	backend.Backend
	scaled  []int32
	applied []*spec.Document
}

func (f *fakeEngine) Apply(_ context.Context, docs []*spec.Document) ([]backend.Applied, error) {
	f.applied = docs
	return nil, nil
}
func (f *fakeEngine) ListVolumes(context.Context) ([]backend.VolumeStatus, error) { return nil, nil }

func (f *fakeEngine) ApplyReplace(context.Context, []*spec.Document) ([]backend.Applied, error) {
	return nil, nil
}
func (f *fakeEngine) GPUs() []engine.GPU { return nil }
func (f *fakeEngine) LimitsError() error { return nil }
func (f *fakeEngine) Scale(_ context.Context, _ string, n int32) error {
	f.scaled = append(f.scaled, n)
	return nil
}
func (f *fakeEngine) GetService(_ context.Context, name string) (*backend.Service, error) {
	return &backend.Service{Name: name, Replicas: []backend.Replica{{Index: 0}, {Index: 1}}}, nil
}
func (f *fakeEngine) Logs(_ context.Context, _ backend.Ref, _ backend.LogOptions, w io.Writer) error {
	_, err := io.WriteString(w, "a log line\n")
	return err
}

func request(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String()
}

func TestScaleRefusesReplicaCountsOutsideInt32(t *testing.T) {
	eng := &fakeEngine{}
	h := (&Server{eng: eng}).routes()
	for _, bad := range []string{"4294967298", "2147483648", "-1", "two", ""} {
		if code, body := request(t, h, http.MethodPost, "/v1/services/web/scale?replicas="+bad); code != http.StatusBadRequest {
			t.Errorf("replicas=%s: %d %s, want 400", bad, code, body)
		}
	}
	if len(eng.scaled) != 0 {
		t.Fatalf("engine scaled to %v", eng.scaled)
	}
	if code, body := request(t, h, http.MethodPost, "/v1/services/web/scale?replicas=2147483647"); code != http.StatusOK {
		t.Fatalf("replicas=MaxInt32: %d %s", code, body)
	}
	if eng.scaled[0] != 2147483647 {
		t.Fatalf("scaled to %d", eng.scaled[0])
	}
}

func TestLogsOfAReplicaTheServiceDoesNotHaveIsNotFound(t *testing.T) {
	h := (&Server{eng: &fakeEngine{}}).routes()
	for _, r := range []string{"9", "999", "2"} {
		code, body := request(t, h, http.MethodGet, "/v1/objects/service/web/logs?replica="+r)
		if code != http.StatusNotFound || !strings.Contains(body, "replicas 0, 1") {
			t.Errorf("replica %s: %d %s, want 404 naming replicas 0, 1", r, code, body)
		}
	}
	if code, body := request(t, h, http.MethodGet, "/v1/objects/service/web/logs?replica=1"); code != http.StatusOK || body != "a log line\n" {
		t.Errorf("replica 1: %d %q", code, body)
	}
	if code, _ := request(t, h, http.MethodGet, "/v1/objects/service/web/logs?replica=-1"); code != http.StatusOK {
		t.Errorf("every replica: %d", code)
	}
}

func TestApplyHandsTheShellEnvironmentToTheEngineAndMergesSharedVolumes(t *testing.T) {
	eng := &fakeEngine{}
	h := (&Server{eng: eng}).routes()
	vol := "apiVersion: petrel.dev/v1alpha1\nkind: Volume\nmetadata: {name: shared}\nspec: {size: 1Gi}\n"
	job := vol + "---\napiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: j}\nspec: {command: [python3, t.py], volumes: [{name: shared, mountPath: /m}]}\n"
	body, _ := json.Marshal(ApplyRequest{
		Files:    []SpecFile{{Path: "/x/train.yaml", Dir: "/x", Data: []byte(job)}, {Path: "/x/serve.yaml", Dir: "/x", Data: []byte(vol)}},
		ShellEnv: map[string]string{"PATH": "/venv/bin:/usr/bin", "VIRTUAL_ENV": "/venv"},
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/apply", bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if len(eng.applied) != 2 {
		t.Fatalf("engine got %d documents, want the volume once and the job", len(eng.applied))
	}
	for _, d := range eng.applied {
		if d.ShellEnv["VIRTUAL_ENV"] != "/venv" || d.ShellEnv["PATH"] != "/venv/bin:/usr/bin" {
			t.Errorf("%s/%s: ShellEnv %v", d.Object.GetKind(), d.Object.GetName(), d.ShellEnv)
		}
	}
}

// An apply body over MaxApplyBytes is answered 413 without reaching the
// engine (and without being read whole).
func TestOversizedApplyIsRefusedWith413(t *testing.T) {
	eng := &fakeEngine{}
	h := (&Server{eng: eng}).routes()
	body := `{"files":[{"path":"big.yaml","dir":"/tmp","data":"` + strings.Repeat("A", MaxApplyBytes) + `"}]}`
	for _, withLength := range []bool{true, false} {
		req := httptest.NewRequest(http.MethodPost, "/v1/apply", strings.NewReader(body))
		if !withLength {
			req.ContentLength = -1 // chunked: found while reading
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "larger than 16 MiB") {
			t.Errorf("content length known %v: %d %s, want 413", withLength, rec.Code, rec.Body.String())
		}
	}
	if eng.applied != nil {
		t.Fatal("the engine received an oversized apply")
	}
}
