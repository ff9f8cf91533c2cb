package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
)

const webService = `apiVersion: petrel.dev/v1alpha1
kind: InferenceService
metadata: {name: web}
spec:
  command: [python3, -m, http.server, "$(PORT)", --bind, "127.0.0.1"]
  port: 8080
  replicas: 1
  readinessProbe: {httpGet: {path: /}, periodSeconds: 1}
  terminationGracePeriodSeconds: 1
`

// Ten commands that each find no server and start one at once: exactly one
// engine runs (the others lose the lock before touching state or binding a
// port), and the service keeps its URL.
func TestParallelAutoStartsRunOneEngine(t *testing.T) {
	e := newEnv(t)
	t.Cleanup(func() { e.petrel("delete", "service", "web") })
	spec := e.write("web.yaml", webService)
	r := e.petrel("serve", "-f", spec)
	if r.code != 0 {
		t.Fatalf("serve: %d %s", r.code, r.stderr)
	}
	url := strings.TrimSpace(r.stdout)
	if r := e.petrel("server", "stop"); r.code != 0 {
		t.Fatalf("server stop: %s", r.stderr)
	}
	var wg sync.WaitGroup
	results := make([]result, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.petrel("get", "services", "web", "-o", "json")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("command %d: exit %d: %s", i, r.code, r.stderr)
			continue
		}
		var obj struct { // get -o json prints the object Kubernetes-shaped
			Status backend.Service `json:"status"`
		}
		err := json.Unmarshal([]byte(r.stdout), &obj)
		if s := obj.Status; err != nil || s.URL != url {
			t.Errorf("command %d: service URL %q (err %v), want %q as before the restart", i, s.URL, err, url)
		}
	}
	log, err := os.ReadFile(filepath.Join(e.home, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "serving on"); n != 2 {
		t.Errorf("%d engines started (want 2: the first server and one of the ten); server.log:\n%s", n, log)
	}
}
