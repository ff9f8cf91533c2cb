package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
)

// echoReplica is an HTTP/1.1 keep-alive server that answers its pid.
const echoReplica = `import http.server, os, socketserver
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        b = ("%d\n" % os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
S(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`

const echoService = `apiVersion: petrel.dev/v1alpha1
kind: InferenceService
metadata: {name: echo}
spec:
  command: [python3, echo.py]
  port: 8080
  replicas: 2
  readinessProbe: {httpGet: {path: /}, periodSeconds: 1}
  terminationGracePeriodSeconds: 1
`

func (e *env) service(name string) backend.Service {
	e.t.Helper()
	r := e.petrel("get", "services", name, "-o", "json")
	var obj struct {
		Status backend.Service `json:"status"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &obj) != nil {
		e.t.Fatalf("get service %s: %d %s %s", name, r.code, r.stdout, r.stderr)
	}
	return obj.Status
}

// lbPid finds the load-balancer process of service name under home.
func lbPid(home, name string) int {
	want := "lb\x00" + filepath.Join(home, "services", name, "lb") + "\x00"
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline")); err == nil && strings.HasSuffix(string(b), want) {
			return pid
		}
	}
	return 0
}

// Issue 9's data plane: 8 clients keep requests in flight through the
// service URL for 20 s while the server is killed with SIGKILL and
// started again. The load balancer is a process of its own, so no request
// fails; the restarted server adopts it (same port, same process) and the
// replicas (same start times, no restarts). A load balancer killed while
// the server runs is started again on the same port.
func TestServiceURLAnswersWhileTheServerIsKilled(t *testing.T) {
	e := newEnv(t)
	t.Cleanup(func() { e.petrel("delete", "service", "echo") })
	e.write("echo.py", echoReplica)
	r := e.petrel("serve", "-f", e.write("echo.yaml", echoService))
	if r.code != 0 {
		t.Fatalf("serve: %d %s", r.code, r.stderr)
	}
	url := strings.TrimSpace(r.stdout)
	before := e.service("echo")
	lb := lbPid(e.home, "echo")
	if lb == 0 {
		t.Fatal("no `petrel lb` process for service echo")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	pids := map[string]int{} // replica pid (the answer) → requests
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := client.Get(url + "/")
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("HTTP %s", resp.Status)
					}
				}
				if err != nil {
					if ctx.Err() != nil {
						return // the load's own deadline, not a failure
					}
					failed.Add(1)
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				ok.Add(1)
				mu.Lock()
				pids[strings.TrimSpace(string(body))]++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(4 * time.Second) // load before the kill
	if err := syscall.Kill(e.serverPID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	atKill := ok.Load()
	time.Sleep(4 * time.Second) // the server stays down: the data plane is on its own
	whileDown := ok.Load() - atKill
	after := e.service("echo") // starts the server again
	wg.Wait()
	t.Logf("%d requests answered (%d while the server was down), %d failed", ok.Load(), whileDown, failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d requests failed, want 0; first: %v", failed.Load(), failures[:min(3, len(failures))])
	}
	if whileDown == 0 {
		t.Error("no request was answered while the server was down")
	}
	if after.URL != url {
		t.Errorf("URL after the restart %s, want %s", after.URL, url)
	}
	if got := lbPid(e.home, "echo"); got != lb {
		t.Errorf("load balancer pid %d after the restart, want %d (adopted, not started again)", got, lb)
	}
	if len(after.Replicas) != 2 {
		t.Fatalf("%d replicas after the restart, want 2", len(after.Replicas))
	}
	for i, rep := range after.Replicas {
		if old := before.Replicas[i]; rep.Name != old.Name || rep.Restarts != 0 {
			t.Errorf("replica %s with %d restarts after the kill, %s before: want it adopted", rep.Name, rep.Restarts, old.Name)
		}
	}
	// Every answer came from the two processes that served before the
	// kill: the replicas were adopted, not started again.
	if len(pids) != 2 {
		t.Errorf("answers came from replica pids %v, want the same 2 processes throughout", pids)
	}

	// The server runs; the load balancer dies: it is started again.
	if err := syscall.Kill(lb, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("service URL %s did not answer again after its load balancer was killed: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := lbPid(e.home, "echo"); got == 0 || got == lb {
		t.Errorf("load balancer pid %d, want a new process", got)
	}
	// The outage is an event of the service, not only a line in server.log.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r := e.petrel("describe", "service", "echo")
		if strings.Contains(r.stdout, "LoadBalancerRestarted") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("describe service echo does not show the load balancer's restart:\n%s%s", r.stdout, r.stderr)
		}
	}
}
