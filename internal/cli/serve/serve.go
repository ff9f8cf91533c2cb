// Package serve is `petrel serve -f FILE`: create or update the
// InferenceService (and its Volumes), wait until every replica of the
// current spec is ready, and print the service's URL.
package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	clidiagnose "github.com/petrel-dev/petrel/internal/cli/diagnose"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/printers"
	"github.com/petrel-dev/petrel/internal/cli/specfiles"
)

// Options holds everything serve needs.
type Options struct {
	IO      *factory.IOStreams
	Backend func(context.Context) (backend.Backend, error)
	Files   []string
	// Timeout bounds the wait for readiness (0 = no wait, as --detach).
	Timeout time.Duration
	Detach  bool
	// PollInterval is how often the status is read while waiting (backend
	// has no watch for services); default 500 ms.
	PollInterval time.Duration
}

// NewCmd returns `petrel serve`. runF replaces the run function in tests.
func NewCmd(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	cmd := &cobra.Command{
		Use:   "serve -f FILE",
		Short: "Create or update an inference service and wait until it is ready",
		Long: `Create the InferenceService (and the Volumes) in FILE, or update it: a changed
spec is a rolling update honouring strategy.maxSurge/maxUnavailable. Waits
until every replica of the new spec passes its readiness probe, then prints
the service's URL on standard output. Stops early, with exit code 1 and the
diagnosis, when every replica crash-loops or when a replica cannot start and
the diagnosis says waiting will not help (an image that does not exist, a
claim whose StorageClass does not exist).`,
		Example: `  petrel serve -f examples/digits/serve.yaml
  curl -s $(petrel serve -f serve.yaml)/v2/health/ready`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringSliceVarP(&opts.Files, "filename", "f", nil, "spec file, directory or - for standard input")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "how long to wait for the replicas to become ready")
	cmd.Flags().BoolVar(&opts.Detach, "detach", false, "return once the service is created or updated")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

// Run applies the file and waits for the service.
func Run(ctx context.Context, opts *Options) error {
	docs, err := specfiles.Read(opts.Files, opts.IO.In)
	if err != nil {
		return err
	}
	b, err := specfiles.Connect(ctx, docs, opts.Backend)
	if err != nil {
		return err
	}
	doc, err := specfiles.Single(docs, v1alpha1.KindInferenceService, strings.Join(opts.Files, ", "), "serve waits for one",
		"serve runs a kind: InferenceService (use petrel train for a TrainingJob)")
	if err != nil {
		return err
	}
	svc := doc.Object.(*v1alpha1.InferenceService)
	applied, err := b.Apply(ctx, docs)
	if err != nil {
		return err
	}
	for _, a := range applied {
		fmt.Fprintf(opts.IO.ErrOut, "%s/%s %s\n", strings.ToLower(a.Kind), a.Name, a.Action)
	}
	name := svc.Metadata.Name
	if opts.Detach || opts.Timeout == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "follow it with: petrel describe service %s\n", name)
		return nil
	}
	st, err := Wait(ctx, b, name, opts.Timeout, opts.PollInterval, func(line string) {
		fmt.Fprintf(opts.IO.ErrOut, "petrel: %s\n", line)
	})
	var loop *CrashLoopError
	if errors.As(err, &loop) {
		explainCrashLoop(ctx, b, loop, opts.IO.ErrOut)
	}
	var stuck *StuckError
	if errors.As(err, &stuck) {
		clidiagnose.Explain(opts.IO.ErrOut, backend.Ref{Kind: "service", Name: name}, stuck.Findings)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(opts.IO.Out, st.URL)
	return nil
}

// RolledOut reports whether the rollout is complete, as `kubectl rollout
// status` decides: as many replicas as desired, all of the service's
// current generation and ready. Replicas still terminating (draining) are
// not counted.
func RolledOut(s *backend.Service) bool {
	n := int32(0)
	for _, r := range s.Replicas {
		if r.Phase == "Terminating" {
			continue
		}
		if r.Generation != s.Generation || !r.Ready {
			return false
		}
		n++
	}
	return s.DesiredReplicas > 0 && n == s.DesiredReplicas
}

// Wait polls the service until it is rolled out, reporting each new state
// line through progress. It fails early with a *CrashLoopError when every
// replica of the current generation is crash-looping (the rollout cannot
// finish by waiting), with a *StuckError when replicas wait to start and
// the diagnosis (every clidiagnose.CheckEvery) names a permanent error, with an *printers.ExitError of code 130 when ctx is
// cancelled (Ctrl-C, SIGTERM), and after timeout with what holds the
// replicas back.
func Wait(ctx context.Context, b backend.Backend, name string, timeout, every time.Duration, progress func(string)) (*backend.Service, error) {
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := ""
	var s *backend.Service
	stuck := &clidiagnose.StuckCheck{Ref: backend.Ref{Kind: "service", Name: name}}
	nextCheck := time.Now().Add(clidiagnose.CheckEvery)
	for {
		// A read cut short by the timeout keeps the last status seen, so
		// the timeout can still say which replicas are not ready.
		cur, err := b.GetService(ctx, name)
		if err != nil && ctx.Err() == nil {
			return nil, err
		}
		if cur != nil {
			s = cur
		}
		if cur != nil {
			if line := stateLine(s); line != last {
				progress(line)
				last = line
			}
			if RolledOut(s) {
				return s, nil
			}
			if looping := CrashLooping(s); looping != nil {
				return s, &CrashLoopError{Service: s, Replicas: looping}
			}
			if WaitingToStart(s) && !time.Now().Before(nextCheck) {
				nextCheck = time.Now().Add(clidiagnose.CheckEvery)
				if findings, block := stuck.Check(ctx, b); block != nil {
					return s, &StuckError{Service: s, Findings: findings, Blocking: *block}
				}
			}
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return nil, Interrupted(name)
			}
			return nil, notReady(name, timeout, s)
		case <-tick.C:
		}
	}
}

// WaitingToStart reports whether a replica of s's current generation has
// not started (Pending: unschedulable, its image or volumes not ready) or
// fewer replicas exist than desired (the ReplicaSet cannot create them):
// the states in which a diagnosis may say that waiting will not help.
func WaitingToStart(s *backend.Service) bool {
	n := int32(0)
	for _, r := range s.Replicas {
		if r.Phase == "Terminating" || r.Generation != s.Generation {
			continue
		}
		n++
		if !r.Ready && r.Phase == "Pending" {
			return true
		}
	}
	return n < s.DesiredReplicas
}

// StuckError says that a service cannot become ready by waiting: its
// diagnosis names a permanent error (Blocking) on an object its replicas
// need, such as a claim whose StorageClass does not exist or an image that
// cannot be pulled.
type StuckError struct {
	Service *backend.Service
	// Findings is the whole diagnosis, printed as petrel diagnose does.
	Findings []backend.Finding
	Blocking backend.Finding
}

func (e *StuckError) Error() string {
	name := e.Service.Name
	return fmt.Sprintf("service %s will not become ready by waiting: %s (rule %s); it is left as it is: petrel describe service %s, petrel delete service %s",
		name, strings.TrimSuffix(e.Blocking.Message, "."), e.Blocking.RuleID, name, name)
}

// ExitCode implements the exit-code interface cmd/petrel checks.
func (e *StuckError) ExitCode() int { return 1 }

// Interrupted is the error of a wait ended by Ctrl-C or SIGTERM: exit code
// 130 (128 + SIGINT, as a shell reports it) and what became of the service.
func Interrupted(name string) error {
	return &printers.ExitError{Code: 130, Msg: fmt.Sprintf("interrupted: service %s keeps running; watch it with petrel get services %s -w, stop it with petrel delete service %s", name, name, name)}
}

// CrashLoopRestarts is how many times every replica of the current
// generation must have exited without ever being ready before serve stops
// waiting: the kubelet's CrashLoopBackOff starts after the second exit.
const CrashLoopRestarts = 2

// CrashLooping returns the replicas of s's current generation when every
// one of them (at least one) is crash-looping: not ready, not terminating,
// and restarted at least CrashLoopRestarts times; otherwise nil. Waiting
// longer cannot roll such a service out: the next restart fails as the
// last ones did, with ever longer back-offs.
func CrashLooping(s *backend.Service) []backend.Replica {
	var current []backend.Replica
	for _, r := range s.Replicas {
		if r.Phase == "Terminating" || r.Generation != s.Generation {
			continue
		}
		if r.Ready || r.Restarts < CrashLoopRestarts {
			return nil
		}
		current = append(current, r)
	}
	return current
}

// CrashLoopError says that a service cannot become ready because every
// replica of its current generation is crash-looping.
type CrashLoopError struct {
	Service  *backend.Service
	Replicas []backend.Replica
}

func (e *CrashLoopError) Error() string {
	var why []string
	for _, r := range e.Replicas {
		why = append(why, fmt.Sprintf("replica %d restarted %d times (last: %s)", r.Index, r.Restarts, r.LastReason))
	}
	return fmt.Sprintf("service %s cannot become ready: every replica is crash-looping: %s", e.Service.Name, strings.Join(why, "; "))
}

// ExitCode implements the exit-code interface cmd/petrel checks.
func (e *CrashLoopError) ExitCode() int { return 1 }

// explainCrashLoop writes each crash-looping replica's last log lines and
// the backend's diagnosis of the service to w.
func explainCrashLoop(ctx context.Context, b backend.Backend, e *CrashLoopError, w io.Writer) {
	name := e.Service.Name
	seen := map[string]bool{}
	for _, r := range e.Replicas {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var buf bytes.Buffer
		_ = b.Logs(lctx, backend.Ref{Kind: "service", Name: name}, backend.LogOptions{Attempt: -1, Replica: r.Index}, &buf)
		cancel()
		tail := lastLines(buf.String(), 10)
		if tail == "" || seen[tail] {
			continue // the same lines as another replica's are not repeated
		}
		seen[tail] = true
		fmt.Fprintf(w, "petrel: last lines of replica %d:\n", r.Index)
		for _, l := range strings.Split(tail, "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	findings, err := b.Diagnose(ctx, backend.Ref{Kind: "service", Name: name})
	if err == nil && len(findings) > 0 {
		fmt.Fprintln(w, "petrel: diagnosis:")
		for _, f := range findings {
			fmt.Fprintf(w, "  - %s\n", f.Message)
			if f.Fix != "" {
				fmt.Fprintf(w, "    fix: %s\n", f.Fix)
			}
		}
	}
	fmt.Fprintf(w, "petrel: the service is left as it is: petrel describe service %s, petrel delete service %s\n", name, name)
}

// lastLines returns the last n distinct non-empty lines of s, in order,
// joined by newlines: a replica restarted three times printed the same
// error three times.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	seen := map[string]bool{}
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		l := strings.TrimRight(lines[i], "\r")
		if strings.TrimSpace(l) == "" || seen[l] {
			continue
		}
		seen[l] = true
		out = append(out, l)
	}
	slices.Reverse(out)
	return strings.Join(out, "\n")
}
func stateLine(s *backend.Service) string {
	var phases []string
	count := map[string]int{}
	for _, r := range s.Replicas {
		p := r.Phase
		if r.Ready {
			p = "Ready"
		}
		if count[p] == 0 {
			phases = append(phases, p)
		}
		count[p]++
	}
	sort.Strings(phases)
	parts := make([]string, len(phases))
	for i, p := range phases {
		parts[i] = fmt.Sprintf("%d %s", count[p], p)
	}
	return fmt.Sprintf("service %s generation %d: %d/%d ready (%s)", s.Name, s.Generation, s.ReadyReplicas, s.DesiredReplicas, strings.Join(parts, ", "))
}

// notReady explains a timeout with each replica that is not ready.
func notReady(name string, timeout time.Duration, s *backend.Service) error {
	msg := fmt.Sprintf("service %s is not ready after %s", name, timeout)
	if s != nil {
		var why []string
		for _, r := range s.Replicas {
			if r.Ready {
				continue
			}
			w := fmt.Sprintf("replica %d is %s", r.Index, r.Phase)
			if r.Restarts > 0 {
				w += fmt.Sprintf(" after %d restarts (last: %s)", r.Restarts, r.LastReason)
			}
			why = append(why, w)
		}
		if len(why) > 0 {
			msg += ": " + strings.Join(why, "; ")
		}
		if len(s.Events) > 0 {
			e := s.Events[len(s.Events)-1]
			msg += fmt.Sprintf("; last event %s: %s", e.Reason, e.Message)
		}
	}
	msg += fmt.Sprintf("; see petrel describe service %s and petrel logs service/%s", name, name)
	return &printers.ExitError{Code: 1, Msg: msg}
}
