// Package factory holds what every petrel command needs: IO streams, the
// global flags (target, kubeconfig, context, namespace, output) and the
// function that returns the Backend for the chosen target. Commands take a
// *Factory and never build a backend themselves, so tests can inject one.
package factory

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/petrel-dev/petrel/internal/backend"
)

// IOStreams is where a command reads and writes: data to Out, progress and
// status lines to ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// IsTerminal is true when Out is a terminal (colour and live status
	// lines are allowed unless NO_COLOR is set).
	IsTerminal bool
}

// ColorEnabled reports whether coloured output is allowed (a terminal and
// NO_COLOR unset, per no-color.org).
func (s *IOStreams) ColorEnabled() bool {
	return s.IsTerminal && os.Getenv("NO_COLOR") == ""
}

// System returns the process's own streams.
func System() *IOStreams {
	isTerm := false
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		isTerm = true
	}
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, IsTerminal: isTerm}
}

// Factory carries global options and builds backends.
type Factory struct {
	IO *IOStreams
	// Target is "local" (default) or "kubernetes".
	Target string
	// Kubeconfig, Context and Namespace follow kubectl's flags; empty means
	// KUBECONFIG / the current context / the context's namespace.
	Kubeconfig string
	Context    string
	Namespace  string
	// Home is $PETREL_HOME (default ~/.petrel), where the local engine
	// keeps its socket, database, logs and volumes.
	Home string

	// BackendOverride, when set, is returned by Backend (tests).
	BackendOverride backend.Backend
}

// TargetFunc builds the backend of one target.
type TargetFunc func(ctx context.Context, f *Factory) (backend.Backend, error)

var targets = map[string]TargetFunc{}

// RegisterTarget makes a target selectable with --target NAME. Called from
// init functions of target packages.
func RegisterTarget(name string, fn TargetFunc) { targets[name] = fn }

// Backend returns the backend of the chosen target.
func (f *Factory) Backend(ctx context.Context) (backend.Backend, error) {
	if f.BackendOverride != nil {
		return f.BackendOverride, nil
	}
	t := f.Target
	if t == "" {
		t = "local"
	}
	fn, ok := targets[t]
	if !ok {
		names := make([]string, 0, len(targets))
		for n := range targets {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown target %q: valid targets are %s", t, strings.Join(names, ", "))
	}
	return fn(ctx, f)
}

// DefaultHome returns $PETREL_HOME or ~/.petrel.
func DefaultHome() string {
	if h := os.Getenv("PETREL_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".petrel"
	}
	return home + "/.petrel"
}
