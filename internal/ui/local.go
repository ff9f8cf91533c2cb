package ui

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/serving"
)

// StateFile records the running dashboard's URL under $PETREL_HOME
// (mode 0600); the token is in TokenFile.
const StateFile = "ui.json"

// State is the content of StateFile.
type State struct {
	// URL is the dashboard's base URL, without the token.
	URL string `json:"url"`
	// PID is the process serving it.
	PID int `json:"pid"`
}

// ServeLocal starts the local engine's dashboard on 127.0.0.1 (an
// assigned port) with home's token and a registry holding the engine's
// collector, the load balancers' metrics and the Go and process
// collectors, and records its URL in home's StateFile. It serves until
// ctx ends and returns the base URL.
func ServeLocal(ctx context.Context, home string, src backend.Backend, gpus func() int) (string, error) {
	tok, err := LoadToken(home)
	if err != nil {
		return "", err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src, gpus), serving.LBCollector(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The engine's reconcile durations, when the source has them.
	if c, ok := src.(interface{ Collectors() []prometheus.Collector }); ok {
		reg.MustRegister(c.Collectors()...)
	}
	// Load balancers run as processes of their own (serving.RunLB): their
	// series are gathered from them at each scrape.
	s, err := New(Options{Source: src, Token: tok, Target: "local", Gatherer: prometheus.Gatherers{reg, serving.RemoteLBGatherer()}})
	if err != nil {
		return "", err
	}
	url, err := s.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(State{URL: url, PID: os.Getpid()})
	path := filepath.Join(home, StateFile)
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return url, err
	}
	return url, os.Rename(path+".tmp", path)
}

// URLWithToken returns base with home's token as its query, the URL a
// browser opens first.
func URLWithToken(base, token string) string { return base + "?token=" + token }
