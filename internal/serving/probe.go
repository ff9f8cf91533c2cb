package serving

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// Probe defaults, as the kubelet applies them to core/v1 Probe.
const (
	DefaultProbePeriod           = 10 * time.Second
	DefaultProbeTimeout          = 1 * time.Second
	DefaultProbeFailureThreshold = 3
	DefaultProbeSuccessThreshold = 1
)

// ProbeSpec is one httpGet probe with kubelet defaults applied.
type ProbeSpec struct {
	// URL is the full URL probed, e.g. http://127.0.0.1:41235/v2/health/ready.
	URL              string
	InitialDelay     time.Duration
	Period           time.Duration
	Timeout          time.Duration
	FailureThreshold int
	SuccessThreshold int
}

// NewProbeSpec applies the kubelet's defaults (period 10 s, timeout 1 s,
// failureThreshold 3, successThreshold 1) to p and points it at the
// replica's port on 127.0.0.1. It returns nil for a nil probe.
func NewProbeSpec(p *v1alpha1.Probe, port int) *ProbeSpec {
	if p == nil {
		return nil
	}
	s := &ProbeSpec{
		URL:              "http://127.0.0.1:" + strconv.Itoa(port) + p.HTTPGet.Path,
		InitialDelay:     time.Duration(p.InitialDelaySeconds) * time.Second,
		Period:           DefaultProbePeriod,
		Timeout:          DefaultProbeTimeout,
		FailureThreshold: DefaultProbeFailureThreshold,
		SuccessThreshold: DefaultProbeSuccessThreshold,
	}
	if p.PeriodSeconds > 0 {
		s.Period = time.Duration(p.PeriodSeconds) * time.Second
	}
	if p.TimeoutSeconds > 0 {
		s.Timeout = time.Duration(p.TimeoutSeconds) * time.Second
	}
	if p.FailureThreshold > 0 {
		s.FailureThreshold = int(p.FailureThreshold)
	}
	if p.SuccessThreshold > 0 {
		s.SuccessThreshold = int(p.SuccessThreshold)
	}
	return s
}

// probeClient mirrors the kubelet's HTTP prober: no keep-alive, no proxy.
var probeClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return http.ErrUseLastResponse
		}
		return nil
	},
}

// ProbeHTTP runs one httpGet probe: success is a status in [200, 400)
// within the timeout, as the kubelet's HTTP prober decides. The message
// says why it failed.
func ProbeHTTP(ctx context.Context, url string, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "petrel-probe/1.0")
	resp, err := probeClient.Do(req)
	if err != nil {
		return false, fmt.Sprintf("Get %q: %v", url, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10)) //nolint:errcheck
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return true, ""
	}
	return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
}

// ProbeHooks receive a Prober's results. Each is called from the prober's
// goroutines; they must not block for long.
type ProbeHooks struct {
	// Ready is called when the replica's readiness changes (true once the
	// startup probe and successThreshold readiness successes have passed;
	// false after failureThreshold readiness failures).
	Ready func(ready bool)
	// Kill is called once when the startup or liveness probe has failed
	// failureThreshold times: the replica must be killed and restarted.
	Kill func(reason, message string)
	// Event reports a probe result change, e.g. ("Unhealthy", "Readiness
	// probe failed: HTTP probe failed with statuscode: 503").
	Event func(eventType, reason, message string)
}

// Prober runs one replica's startup, readiness and liveness probes as the
// kubelet's prober workers do: nothing but the startup probe runs until it
// succeeds; readiness starts as not ready and liveness as healthy; a result
// changes only after failureThreshold consecutive failures or
// successThreshold consecutive successes; after a startup or liveness
// failure probing stops until the replica is restarted.
type Prober struct {
	Startup, Readiness, Liveness *ProbeSpec
	Hooks                        ProbeHooks
}

// Run probes until ctx ends or a kill is requested. started is when the
// replica's process started (initialDelaySeconds counts from it).
func (p *Prober) Run(ctx context.Context, started time.Time) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if p.Startup != nil {
		ok := p.worker(ctx, "Startup", p.Startup, started, false, func(success bool, msg string) bool {
			if !success {
				p.event("Warning", "Unhealthy", "Startup probe failed: "+msg)
				p.kill("StartupProbeFailed", "Container failed startup probe, will be restarted")
			}
			return true // a startup result ends the startup worker
		})
		if !ok {
			return
		}
	}
	var wg sync.WaitGroup
	if p.Readiness == nil {
		p.Hooks.Ready(true)
	} else {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.worker(ctx, "Readiness", p.Readiness, started, false, func(success bool, msg string) bool {
				if success {
					p.event("Normal", "Ready", "Readiness probe succeeded")
				} else {
					p.event("Warning", "Unhealthy", "Readiness probe failed: "+msg)
				}
				p.Hooks.Ready(success)
				return false
			})
		}()
	}
	if p.Liveness != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.worker(ctx, "Liveness", p.Liveness, started, true, func(success bool, msg string) bool {
				if success {
					return false
				}
				p.event("Warning", "Unhealthy", "Liveness probe failed: "+msg)
				p.kill("LivenessProbeFailed", "Container failed liveness probe, will be restarted")
				cancel()
				return true
			})
		}()
	}
	wg.Wait()
}

func (p *Prober) event(typ, reason, msg string) {
	if p.Hooks.Event != nil {
		p.Hooks.Event(typ, reason, msg)
	}
}

func (p *Prober) kill(reason, msg string) {
	if p.Hooks.Kill != nil {
		p.Hooks.Kill(reason, msg)
	}
}

// worker is the kubelet's probe worker loop for one probe. initial is the
// cached result before any probe (readiness false, liveness true); change
// is called whenever the cached result flips and returns true to stop. It
// returns whether the last cached result was a success.
func (p *Prober) worker(ctx context.Context, _ string, s *ProbeSpec, started time.Time, initial bool, change func(success bool, msg string) bool) bool {
	if d := time.Until(started.Add(s.InitialDelay)); d > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
		}
	}
	cached, haveResult := initial, false
	var last bool
	run := 0
	ticker := time.NewTicker(s.Period)
	defer ticker.Stop()
	for {
		ok, msg := ProbeHTTP(ctx, s.URL, s.Timeout)
		if ctx.Err() != nil {
			return cached
		}
		if run > 0 && ok == last {
			run++
		} else {
			last, run = ok, 1
		}
		threshold := s.FailureThreshold
		if ok {
			threshold = s.SuccessThreshold
		}
		if run >= threshold && (!haveResult || ok != cached) {
			cached, haveResult = ok, true
			if change(ok, msg) {
				return cached
			}
		}
		select {
		case <-ctx.Done():
			return cached
		case <-ticker.C:
		}
	}
}
