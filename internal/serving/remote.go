package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// RemoteConfig says where a service's load-balancer process lives and how
// to start it.
type RemoteConfig struct {
	// Service is the service's name.
	Service string
	// Dir is the process's directory (created 0700): LBConfigFile,
	// LBSocket and LBLogFile live there.
	Dir string
	// Addr is the address a new process listens on (127.0.0.1:0 for an
	// assigned port); an adopted process keeps its own.
	Addr string
	// Argv is the argv prefix that runs a load-balancer process, e.g.
	// [/proc/self/exe lb]; Dir is appended.
	Argv []string
	// Logf receives what goes wrong with the process.
	Logf func(format string, args ...any)
}

// RemoteBalancer drives a load-balancer process (RunLB) over its control
// socket. Every change is pushed to the process at once as the full
// endpoint set; once a second the balancer reads the in-flight counts
// back, which also tells the process its controller is alive. A process
// that stops answering is started again on the same address and given
// the set. Detach leaves the process serving for the next controller.
type RemoteBalancer struct {
	cfg    RemoteConfig
	client *http.Client

	mu       sync.Mutex
	addr     string
	eps      []lbEndpoint
	inFlight map[string]int64
	dirty    bool // the last push failed
	stop     chan struct{}
	done     chan struct{}
	ended    bool
	// record receives the process's outages as events of the service
	// (typ, reason, message); nil: only Logf hears of them.
	record func(typ, reason, msg string)
}

// SetEventRecorder makes the balancer report its process's outages (a
// process that stopped answering and was started again, or could not be
// started) as events of the service, so `petrel describe service` shows
// them. The Service that owns the balancer sets it; record is called
// without the balancer's lock held.
func (rb *RemoteBalancer) SetEventRecorder(record func(typ, reason, msg string)) {
	rb.mu.Lock()
	rb.record = record
	rb.mu.Unlock()
}

var (
	_ Balancer    = (*RemoteBalancer)(nil)
	_ EventSource = (*RemoteBalancer)(nil)
)

// remotes are the attached RemoteBalancers, for RemoteLBGatherer.
var remotes sync.Map // *RemoteBalancer → struct{}

// OpenRemoteBalancer adopts the load-balancer process in cfg.Dir when its
// control socket answers, with the endpoints and readiness it holds;
// otherwise it starts one on cfg.Addr and waits until it serves.
func OpenRemoteBalancer(cfg RemoteConfig) (*RemoteBalancer, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	sock := filepath.Join(cfg.Dir, LBSocket)
	if len(sock) >= 104 { // sun_path is 108 bytes on Linux, 104 elsewhere
		return nil, fmt.Errorf("load balancer socket path %s is too long for a unix socket (%d bytes); use a shorter PETREL_HOME", sock, len(sock))
	}
	rb := &RemoteBalancer{cfg: cfg, inFlight: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	rb.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
		MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second,
	}}
	rep, err := rb.state(2 * time.Second)
	if err == nil {
		rb.addr, rb.eps = rep.Addr, rep.Endpoints
		for _, e := range rep.Endpoints {
			rb.inFlight[e.Name] = e.InFlight
		}
		for i := range rb.eps {
			rb.eps[i].InFlight = 0
		}
	} else if rb.addr, err = rb.launch(cfg.Addr); err != nil {
		return nil, err
	}
	remotes.Store(rb, struct{}{})
	go rb.loop()
	return rb, nil
}

// lbSchedtrace keeps the Go runtime's sysmon thread from sleeping while
// the load balancer's one P is idle. In an idle process sysmon parks
// (sysmonwait, runtime/proc.go sysmon: "debug.schedtrace <= 0 &&
// npidle == gomaxprocs") and the first system call after each wake-up
// must wake it with a futex; a forwarder goes idle between bursts of
// requests thousands of times a second, and those wake-ups were 35% of
// its CPU per request (bench/serving: 68 µs/request at 32 in flight,
// 43 µs with this). A schedtrace period above zero disables the parking;
// at 2^31-1 ms (24.8 days) the trace it would print is never due in
// practice (at most one line in lb.log per 24.8 days). The cost: sysmon
// polls every 10 ms while the service is idle.
const lbSchedtrace = "schedtrace=2147483647"

// lbEnv is the load-balancer process's environment: the server's, with
// lbSchedtrace added to GODEBUG unless GODEBUG already sets schedtrace.
func lbEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			found = true
			if !strings.Contains(v, "schedtrace=") {
				kv = "GODEBUG=" + strings.TrimPrefix(v+","+lbSchedtrace, ",")
			}
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG="+lbSchedtrace)
	}
	return out
}

// launch starts a load-balancer process on addr and waits until its
// control socket answers (or it exits, whose log then says why).
func (rb *RemoteBalancer) launch(addr string) (string, error) {
	cfg := LBConfig{Service: rb.cfg.Service, Addr: addr}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(rb.cfg.Dir, LBConfigFile), b, 0o600); err != nil {
		return "", err
	}
	logf, err := os.OpenFile(filepath.Join(rb.cfg.Dir, LBLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, io.SeekEnd)
	argv := append(slices.Clone(rb.cfg.Argv), rb.cfg.Dir)
	cmd := exec.Command(argv[0], argv[1:]...)
	if argv[0] == "/proc/self/exe" {
		cmd.Args[0] = "petrel" // ps shows `petrel lb DIR`
	}
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, "/"
	cmd.Env = lbEnv(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives the server
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start load balancer for service %q: %w", rb.cfg.Service, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() //nolint:errcheck // its log says why
	deadline := time.Now().Add(10 * time.Second)
	for {
		if rep, err := rb.state(time.Second); err == nil {
			return rep.Addr, nil
		}
		select {
		case <-exited:
			msg, _ := os.ReadFile(filepath.Join(rb.cfg.Dir, LBLogFile))
			if int64(len(msg)) >= logStart {
				msg = msg[logStart:]
			}
			return "", fmt.Errorf("load balancer for service %q exited: %s", rb.cfg.Service, strings.TrimSpace(string(msg)))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return "", fmt.Errorf("load balancer for service %q did not answer on %s within 10 s", rb.cfg.Service, filepath.Join(rb.cfg.Dir, LBSocket))
		}
	}
}

func (rb *RemoteBalancer) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://lb"+path, rd)
	if err != nil {
		return err
	}
	resp, err := rb.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", errLBGone, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("load balancer for service %q: %s: %s", rb.cfg.Service, resp.Status, strings.TrimSpace(string(msg)))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func (rb *RemoteBalancer) state(timeout time.Duration) (lbReport, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rep lbReport
	err := rb.do(ctx, http.MethodGet, "/v1/state", nil, &rep)
	return rep, err
}

// pushLocked sends the full endpoint set; a failure is retried by loop.
func (rb *RemoteBalancer) pushLocked() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rb.do(ctx, http.MethodPut, "/v1/endpoints", rb.eps, nil); err != nil {
		rb.dirty = true
		rb.cfg.Logf("service %s: push endpoints to its load balancer: %v", rb.cfg.Service, err)
		return
	}
	rb.dirty = false
}

// loop reads in-flight counts every second (the process's sign that its
// controller lives), re-pushes a set whose push failed, and starts the
// process again on the same address if it stopped answering.
func (rb *RemoteBalancer) loop() {
	defer close(rb.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	failures := 0
	// A process that cannot start (its port taken by another program) is
	// tried again after 1 s, doubling to 30 s, and said once per try.
	var nextLaunch time.Time
	delay := time.Second
	for {
		select {
		case <-rb.stop:
			return
		case <-t.C:
		}
		rep, err := rb.state(2 * time.Second)
		rb.mu.Lock()
		if rb.ended {
			rb.mu.Unlock()
			return
		}
		if err != nil {
			failures++
			var reason, msg string // an outage worth an event (always a Warning)
			if failures >= 2 && !time.Now().Before(nextLaunch) {
				rb.cfg.Logf("service %s: load balancer does not answer (%v); starting it again on %s", rb.cfg.Service, err, rb.addr)
				if _, lerr := rb.launch(rb.addr); lerr != nil {
					rb.cfg.Logf("service %s: %v; trying again in %s", rb.cfg.Service, lerr, delay)
					reason, msg = "LoadBalancerFailed", fmt.Sprintf("%v; trying again in %s", lerr, delay)
					nextLaunch = time.Now().Add(delay)
					delay = min(2*delay, 30*time.Second)
				} else {
					failures, delay = 0, time.Second
					rb.pushLocked()
					reason, msg = "LoadBalancerRestarted", fmt.Sprintf("the load balancer process did not answer (%v); started again on %s", err, rb.addr)
				}
			}
			record := rb.record
			rb.mu.Unlock()
			if record != nil && reason != "" {
				record("Warning", reason, msg)
			}
			continue
		}
		failures = 0
		for _, e := range rep.Endpoints {
			rb.inFlight[e.Name] = e.InFlight
		}
		if rb.dirty {
			rb.pushLocked()
		}
		rb.mu.Unlock()
	}
}

func (rb *RemoteBalancer) indexLocked(name string) int {
	return slices.IndexFunc(rb.eps, func(e lbEndpoint) bool { return e.Name == name })
}

// URL implements Balancer.
func (rb *RemoteBalancer) URL() string {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return "http://" + rb.addr
}

// AddEndpoint implements Balancer.
func (rb *RemoteBalancer) AddEndpoint(name string, u *url.URL, probe *ProbeSpec) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if i := rb.indexLocked(name); i >= 0 {
		if rb.eps[i].Probe == nil && probe != nil {
			rb.eps[i].Probe = probe
			rb.pushLocked()
		}
		return
	}
	rb.eps = append(rb.eps, lbEndpoint{Name: name, URL: u.String(), Probe: probe})
	rb.pushLocked()
}

// Remove implements Balancer.
func (rb *RemoteBalancer) Remove(name string) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if i := rb.indexLocked(name); i >= 0 {
		rb.eps = slices.Delete(rb.eps, i, i+1)
		delete(rb.inFlight, name)
		rb.pushLocked()
	}
}

// Retain implements Balancer.
func (rb *RemoteBalancer) Retain(keep []string) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	n := len(rb.eps)
	rb.eps = slices.DeleteFunc(rb.eps, func(e lbEndpoint) bool { return !slices.Contains(keep, e.Name) })
	if len(rb.eps) != n {
		rb.pushLocked()
	}
}

// SetReady implements Balancer.
func (rb *RemoteBalancer) SetReady(name string, ready bool) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if i := rb.indexLocked(name); i >= 0 && rb.eps[i].Ready != ready {
		rb.eps[i].Ready = ready
		rb.pushLocked()
	}
}

// IsReady implements Balancer.
func (rb *RemoteBalancer) IsReady(name string) bool {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	i := rb.indexLocked(name)
	return i >= 0 && rb.eps[i].Ready
}

// Drain implements Balancer.
func (rb *RemoteBalancer) Drain(ctx context.Context, name string) error {
	rb.mu.Lock()
	i := rb.indexLocked(name)
	if i < 0 {
		rb.mu.Unlock()
		return nil
	}
	rb.eps[i].Draining = true
	rb.pushLocked()
	rb.mu.Unlock()
	return rb.do(ctx, http.MethodPost, "/v1/drain?name="+url.QueryEscape(name), nil, nil)
}

// InFlight implements Balancer.
func (rb *RemoteBalancer) InFlight(name string) int64 {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.inFlight[name]
}

// SampleInFlight implements Balancer; the process samples itself.
func (rb *RemoteBalancer) SampleInFlight() {}

// TakeConcurrency implements Balancer.
func (rb *RemoteBalancer) TakeConcurrency(name string) (float64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out struct {
		Value float64 `json:"value"`
		OK    bool    `json:"ok"`
	}
	if err := rb.do(ctx, http.MethodGet, "/v1/concurrency?name="+url.QueryEscape(name), nil, &out); err != nil {
		return 0, false
	}
	return out.Value, out.OK
}

// end stops the report loop.
func (rb *RemoteBalancer) end() {
	rb.mu.Lock()
	if rb.ended {
		rb.mu.Unlock()
		return
	}
	rb.ended = true
	rb.mu.Unlock()
	close(rb.stop)
	<-rb.done
	remotes.Delete(rb)
}

// Close implements Balancer: the process stops serving and exits; Close
// waits (up to 5 s) until its socket is gone, so the port is free.
func (rb *RemoteBalancer) Close() error {
	rb.end()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := rb.do(ctx, http.MethodPost, "/v1/shutdown", nil, nil)
	for err == nil && ctx.Err() == nil {
		if _, serr := rb.state(time.Second); serr != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rb.client.CloseIdleConnections()
	return err
}

// Detach implements Balancer: the process goes on serving with the last
// endpoint set and starts probing the replicas itself after
// DefaultAwayAfter.
func (rb *RemoteBalancer) Detach() {
	rb.end()
	rb.client.CloseIdleConnections()
}

// metrics returns the process's Prometheus metric families.
func (rb *RemoteBalancer) metrics() ([]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://lb/metrics", nil)
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	resp, err := rb.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, mf)
	}
}

// RemoteLBGatherer gathers the metrics of every attached load-balancer
// process (the same series LBCollector reports for in-process ones), for
// the dashboard's and /metrics' registry: prometheus.Gatherers{reg,
// RemoteLBGatherer()}. A process that does not answer is skipped.
func RemoteLBGatherer() prometheus.GathererFunc {
	return func() ([]*dto.MetricFamily, error) {
		byName := map[string]*dto.MetricFamily{}
		var names []string
		remotes.Range(func(k, _ any) bool {
			mfs, err := k.(*RemoteBalancer).metrics()
			if err != nil {
				return true
			}
			for _, mf := range mfs {
				if have, ok := byName[mf.GetName()]; ok {
					have.Metric = append(have.Metric, mf.Metric...)
					continue
				}
				byName[mf.GetName()] = mf
				names = append(names, mf.GetName())
			}
			return true
		})
		slices.Sort(names)
		out := make([]*dto.MetricFamily, 0, len(names))
		for _, n := range names {
			out = append(out, byName[n])
		}
		return out, nil
	}
}
