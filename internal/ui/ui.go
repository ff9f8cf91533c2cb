// Package ui is petrel's web dashboard: server-rendered pages (html/template)
// of jobs, services and volumes over any backend.Backend, with charts drawn
// by uPlot (v1.6.32, MIT licence, vendored from npm into static/ and
// embedded; nothing is loaded from elsewhere), live logs over server-sent
// events, and Prometheus metrics on /metrics. It listens on loopback only,
// needs the owner's token on every request (see guard) and is read-only.
package ui

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/petrel-dev/petrel/internal/backend"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configures a dashboard.
type Options struct {
	// Source is where the dashboard reads everything it shows.
	Source backend.Backend
	// Token is the secret every request must carry (see LoadToken).
	Token string
	// Target names the target in page headers: "local" or "kubernetes".
	Target string
	// Gatherer, when set, is served on /metrics and its load balancer
	// metrics (serving.LBCollector) feed the services' traffic charts.
	Gatherer prometheus.Gatherer
	// SamplePeriod is how often services are sampled for their charts
	// (default 1 s); History is how many samples each keeps (default 3600).
	SamplePeriod time.Duration
	History      int
}

// Server is one dashboard. Its handler is safe for concurrent use.
type Server struct {
	opts    Options
	src     backend.Backend
	token   string
	pages   map[string]*template.Template
	history *history
	mux     *http.ServeMux
}

// New returns a dashboard over opts.Source; Run samples the services.
func New(opts Options) (*Server, error) {
	if opts.Source == nil || len(opts.Token) < 16 {
		return nil, errors.New("dashboard: a source and a token of at least 16 characters are required")
	}
	if opts.SamplePeriod <= 0 {
		opts.SamplePeriod = time.Second
	}
	if opts.History <= 0 {
		opts.History = 3600
	}
	if opts.Target == "" {
		opts.Target = "local"
	}
	s := &Server{opts: opts, src: opts.Source, token: opts.Token, history: newHistory(opts.History)}
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	s.mux = s.routes()
	return s, nil
}

// Handler returns the dashboard's handler, token check included.
func (s *Server) Handler() http.Handler { return s.guard(s.mux) }

// Run samples every service each SamplePeriod (replica counts, the
// autoscaling metric, the load balancer's traffic) until ctx ends.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.SamplePeriod)
	defer t.Stop()
	for {
		s.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Listen binds addr (a loopback address; "127.0.0.1:0" picks a port),
// then serves the dashboard and samples services until ctx ends. It
// returns the base URL (without the token) once listening.
func (s *Server) Listen(ctx context.Context, addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("dashboard address %s is not a loopback address; it must not be reachable from other machines", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen for the dashboard on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = srv.Serve(ln) }()
	go func() { defer wg.Done(); s.Run(ctx) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close() // ends open log streams
		wg.Wait()
	}()
	return "http://" + ln.Addr().String() + "/", nil
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	fileServer := http.FileServerFS(static)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, max-age=3600")
		fileServer.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/jobs", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /jobs", s.jobsPage)
	mux.HandleFunc("GET /jobs/{name}", s.jobPage)
	mux.HandleFunc("GET /jobs/{name}/logs", s.jobLogs)
	mux.HandleFunc("GET /compare", s.comparePage)
	mux.HandleFunc("GET /services", s.servicesPage)
	mux.HandleFunc("GET /services/{name}", s.servicePage)
	mux.HandleFunc("GET /services/{name}/logs", s.serviceLogs)
	mux.HandleFunc("GET /volumes", s.volumesPage)
	mux.HandleFunc("GET /api/jobs/{name}/series", s.jobSeries)
	mux.HandleFunc("GET /api/compare", s.compareSeries)
	mux.HandleFunc("GET /api/services/{name}/history", s.serviceHistory)
	if s.opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers an error from the source: 404 for a missing object.
func fail(w http.ResponseWriter, err error) {
	if errors.Is(err, backend.ErrNotFound) {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	http.Error(w, err.Error(), http.StatusBadGateway)
}
