package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/petrel-dev/petrel/internal/backend"
)

// browser starts headless Chromium (Debian's chromium package, which
// hack/test.sh installs) and returns a chromedp context. A missing
// browser fails the test: these tests are the dashboard's only check that
// the pages draw what they should.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: these browser tests need it (hack/test.sh installs it; by hand: apt-get install -y chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1100, 850), chromedp.Flag("headless", "new"))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil { // start the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// open visits the dashboard's URL with the token (which sets the cookie)
// and then path.
func open(t *testing.T, ctx context.Context, dash, path string) {
	t.Helper()
	u, _ := url.Parse(dash)
	if err := chromedp.Do(ctx, chromedp.Navigate(dash), chromedp.WaitReady("body"),
		chromedp.Navigate(u.Scheme+"://"+u.Host+path), chromedp.WaitReady("main")); err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
}

// eval evaluates a JavaScript expression on the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// poll waits until expr is truthy on the page.
func poll(t *testing.T, ctx context.Context, timeout time.Duration, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[any](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// screenshot saves the viewport as PNG under $PETREL_UI_SCREENSHOTS
// (the README's pictures: PETREL_UI_SCREENSHOTS=$PWD/docs go test …).
func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("PETREL_UI_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDashboardRefusesRequestsWithoutTheToken(t *testing.T) {
	e := newEnv(t)
	dash := e.dashboard()
	u, _ := url.Parse(dash)
	base := u.Scheme + "://" + u.Host
	st, err := os.Stat(filepath.Join(e.home, "ui-token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	for _, tc := range []struct {
		name, path string
		header     http.Header
		want       int
	}{
		{"no token", "/jobs", nil, http.StatusUnauthorized},
		{"no token on /metrics", "/metrics", nil, http.StatusUnauthorized},
		{"no token on a log stream", "/jobs/x/logs", nil, http.StatusUnauthorized},
		{"wrong token", "/jobs?token=" + strings.Repeat("0", 64), nil, http.StatusUnauthorized},
		{"wrong cookie", "/jobs", http.Header{"Cookie": {"petrel_ui_token=" + strings.Repeat("1", 64)}}, http.StatusUnauthorized},
		{"token, but another host name (DNS rebinding)", "/jobs", http.Header{"Authorization": {"Bearer " + u.Query().Get("token")}, "Host": {"evil.example:80"}}, http.StatusForbidden},
		{"bearer token", "/jobs", http.Header{"Authorization": {"Bearer " + u.Query().Get("token")}}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, base+tc.path, nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			if h := tc.header.Get("Host"); h != "" {
				req.Host = h
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.want)
			}
		})
	}
	// Nothing changes state through the dashboard.
	req, _ := http.NewRequest(http.MethodPost, base+"/jobs", nil)
	req.Header.Set("Authorization", "Bearer "+u.Query().Get("token"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /jobs: %v %v, want 405", resp.StatusCode, err)
	}

	// A browser without the token sees the refusal, not the page.
	ctx := browser(t)
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(base+"/jobs"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusUnauthorized {
		t.Errorf("browser without token got %d, want 401", resp.Status)
	}
	if body := eval[string](t, ctx, "document.body.innerText"); !strings.Contains(body, "petrel ui") || strings.Contains(body, "Jobs") {
		t.Errorf("browser without token sees %q", body)
	}
}

func TestFinishedJobChartHasOnePointPerEpoch(t *testing.T) {
	e := newEnv(t)
	const epochs = 7
	e.write("train.yaml", fmt.Sprintf(`apiVersion: petrel.dev/v1alpha1
kind: Volume
metadata:
  name: checkpoints
spec:
  size: 64Mi
---
apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata:
  name: curves
spec:
  volumes: [{name: checkpoints, mountPath: /ckpt, pathEnv: CKPT}]
  command: ["sh", "-c", "i=1; while [ $i -le %d ]; do echo epoch=$i loss=0.$((90-i*10)) accuracy=0.$((40+i*7)); i=$((i+1)); done"]
`, epochs))
	e.petrel("apply", "-f", filepath.Join(e.dir, "train.yaml"))
	waitFor(t, 60*time.Second, "job curves finishes", func() bool { j := e.job("curves"); return j.Finished() })
	if j := e.job("curves"); j.Phase != backend.JobComplete {
		t.Fatalf("job curves: %s, want Complete", j.Phase)
	}
	ctx := browser(t)
	open(t, ctx, e.dashboard(), "/jobs/curves")
	for _, m := range []string{"loss", "accuracy"} {
		sel := fmt.Sprintf(`document.querySelector('.chart[data-metric=%q]')`, m)
		poll(t, ctx, 30*time.Second, "chart "+m+" drawn", sel+" && "+sel+".dataset.points")
		// What uPlot holds is what it draws: one x per epoch, one y each.
		xs := eval[[]float64](t, ctx, fmt.Sprintf("petrelCharts[%q].data[0]", m))
		pts := eval[string](t, ctx, sel+".dataset.points")
		if len(xs) != epochs || pts != fmt.Sprint(epochs) {
			t.Errorf("chart %s: x values %v, %s points drawn; want epochs 1..%d", m, xs, pts, epochs)
		}
		if len(xs) > 0 && (xs[0] != 1 || xs[len(xs)-1] != epochs) {
			t.Errorf("chart %s: x axis %v, want epochs 1..%d", m, xs, epochs)
		}
	}
	if got := eval[string](t, ctx, "document.querySelector('table.attempts tbody').innerText"); !strings.Contains(got, "Completed") || !strings.Contains(got, "0") {
		t.Errorf("attempts table: %q", got)
	}
	screenshot(t, ctx, "dashboard-job.png")

	// A second run's curves overlay the first on the compare page.
	e.write("train-b.yaml", strings.ReplaceAll(strings.ReplaceAll(readFile(t, filepath.Join(e.dir, "train.yaml")), "name: curves", "name: curves-b"), "90-i*10", "95-i*12"))
	e.petrel("apply", "-f", filepath.Join(e.dir, "train-b.yaml"))
	waitFor(t, 60*time.Second, "job curves-b finishes", func() bool { j := e.job("curves-b"); return j.Finished() })

	// The volumes page says who mounts each volume.
	open(t, ctx, e.dashboard(), "/volumes")
	if got := eval[string](t, ctx, "document.querySelector('main table tbody').innerText"); !strings.Contains(got, "checkpoints") ||
		!strings.Contains(got, "64Mi") || !strings.Contains(got, "job/curves") || !strings.Contains(got, "job/curves-b") {
		t.Errorf("volumes page: %q, want checkpoints, 64Mi, mounted by job/curves and job/curves-b", got)
	}
	open(t, ctx, e.dashboard(), "/compare?job=curves&job=curves-b")
	poll(t, ctx, 30*time.Second, "compare chart drawn", `document.querySelector('.chart[data-metric=loss]') && document.querySelector('.chart[data-metric=loss]').dataset.points`)
	labels := eval[[]string](t, ctx, "petrelCharts.loss.series.slice(1).map(s => s.label)")
	pts := eval[string](t, ctx, `document.querySelector('.chart[data-metric=loss]').dataset.points`)
	if strings.Join(labels, ",") != "curves,curves-b" || pts != fmt.Sprint(2*epochs) {
		t.Errorf("compare: lines %v with %s points, want curves and curves-b with %d", labels, pts, 2*epochs)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRunningJobPageShowsNewLogLinesAndTheEndLive(t *testing.T) {
	e := newEnv(t)
	gate := filepath.Join(e.dir, "go")
	e.write("tail.yaml", fmt.Sprintf(`apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata:
  name: tail
spec:
  backoffLimit: 0
  terminationGracePeriodSeconds: 1
  command: ["sh", "-c", "echo started; while [ ! -e %[1]s ]; do sleep 0.02; done; echo the-new-line; while [ ! -e %[1]s.end ]; do sleep 0.02; done; exit 3"]
`, gate))
	e.petrel("apply", "-f", filepath.Join(e.dir, "tail.yaml"))
	ctx := browser(t)
	open(t, ctx, e.dashboard(), "/jobs/tail")
	poll(t, ctx, 60*time.Second, "first log line shown", `document.getElementById('logs').textContent.includes('started')`)
	poll(t, ctx, 30*time.Second, "the charts say no metrics were reported yet", `document.getElementById('charts').textContent.includes('No metrics reported yet')`)
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	poll(t, ctx, 30*time.Second, "the new log line shown", `document.getElementById('logs').textContent.includes('the-new-line')`)
	lat := time.Since(start)
	t.Logf("a new log line reached the page %v after the workload could print it (goal: under 2 s)", lat.Round(time.Millisecond))
	if lat > 2*time.Second {
		// Reported, not failed: on a loaded machine the scheduler decides.
		t.Logf("WARNING: slower than the 2 s goal")
	}
	if st := eval[string](t, ctx, "document.getElementById('logstate').textContent"); st != "live" {
		t.Errorf("log state %q, want live", st)
	}

	// The job's end reaches the open page too: status, exit code, reason.
	if err := os.WriteFile(gate+".end", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, 60*time.Second, "the page shows the job failed", `document.getElementById('phase').textContent === 'Failed'`)
	row := eval[string](t, ctx, "document.querySelector('table.attempts tbody tr').innerText")
	if !strings.Contains(row, "3") || !strings.Contains(row, "Error") {
		t.Errorf("attempt row %q, want exit code 3 and reason Error", row)
	}
	poll(t, ctx, 30*time.Second, "the log stream ends", `document.getElementById('logstate').textContent === 'end of log'`)
}

// slowServer answers /slow after 300 ms, /missing with 404, anything else
// at once; PORT is set by petrel.
const slowServer = `import http.server, os, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(0.3)
        code = 404 if self.path == "/missing" else 200
        self.send_response(code)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`

func TestServicePageShowsTrafficAndScalingDecisions(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is needed for the test service")
	}
	e := newEnv(t)
	e.write("slow.py", slowServer)
	e.write("svc.yaml", `apiVersion: petrel.dev/v1alpha1
kind: InferenceService
metadata:
  name: slow
spec:
  command: ["python3", "slow.py"]
  port: 8080
  readinessProbe:
    httpGet: {path: /ready}
    periodSeconds: 1
  terminationGracePeriodSeconds: 1
  autoscaling:
    minReplicas: 1
    maxReplicas: 3
    target: {concurrency: 1}
`)
	e.petrel("apply", "-f", filepath.Join(e.dir, "svc.yaml"))
	waitFor(t, 60*time.Second, "service slow ready", func() bool { return e.service("slow").ReadyReplicas == 1 })
	svcURL := e.service("slow").URL
	dash := e.dashboard()

	t.Run("metrics count the requests sent", func(t *testing.T) {
		const ok, missing = 23, 4
		for i := 0; i < ok+missing; i++ {
			path := "/fast"
			if i < missing {
				path = "/missing"
			}
			resp, err := http.Get(svcURL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		fams := scrape(t, dash)
		if got := value(fams, "petrel_lb_requests_total", map[string]string{"service": "slow", "code": "200"}); got != ok {
			t.Errorf("petrel_lb_requests_total{code=200} = %v, want %d", got, ok)
		}
		if got := value(fams, "petrel_lb_requests_total", map[string]string{"service": "slow", "code": "404"}); got != missing {
			t.Errorf("petrel_lb_requests_total{code=404} = %v, want %d", got, missing)
		}
		if got := value(fams, "petrel_lb_request_duration_seconds", map[string]string{"service": "slow"}); got != ok+missing {
			t.Errorf("petrel_lb_request_duration_seconds count = %v, want %d", got, ok+missing)
		}
		if got := value(fams, "petrel_service_replicas", map[string]string{"service": "slow", "state": "ready"}); got != 1 {
			t.Errorf("petrel_service_replicas{state=ready} = %v, want 1", got)
		}
		if got := value(fams, "petrel_job_sync_duration_seconds", nil); got < 0 {
			t.Errorf("the engine's reconcile durations (petrel_job_sync_duration_seconds) are missing from /metrics")
		}
	})

	// Four clients that each keep one slow request in flight: concurrency
	// 4 against a target of 1 per replica scales to maxReplicas at the
	// next autoscaler sync (every 15 s).
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, svcURL+"/slow", nil)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	t.Cleanup(func() { stop(); wg.Wait() })

	bctx := browser(t)
	open(t, bctx, dash, "/services/slow")
	poll(t, bctx, 90*time.Second, "a scaling decision marked on the autoscaling chart",
		`(document.querySelector('.chart[data-chart=scaling]')||{dataset:{}}).dataset.scalings >= 1`)
	poll(t, bctx, 30*time.Second, "request rate and latency charts drawn",
		`document.querySelector('.chart[data-chart=rate]') && document.querySelector('.chart[data-chart=latency]')`)
	if got := eval[string](t, bctx, "document.querySelector('ul.scalings').innerText"); !strings.Contains(got, "New size: ") {
		t.Errorf("scaling decisions listed: %q", got)
	}
	poll(t, bctx, 60*time.Second, "three ready replicas on the chart", `document.querySelector('.chart[data-chart=scaling]') && petrelCharts.scaling.data[4].at(-1) === 3`)
	poll(t, bctx, 30*time.Second, "three replicas in the live replicas table", `document.querySelectorAll('#status table')[0].tBodies[0].rows.length === 3`)
	screenshot(t, bctx, "dashboard-service.png")
}
