// Package serve is `petrel serve -f FILE`: create or update the
// InferenceService (and its Volumes), wait until every replica of the
// current spec is ready, and print the service's URL.
package serve

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
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
the service's URL on standard output.`,
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
// line through progress; after timeout it fails with what holds the
// replicas back.
func Wait(ctx context.Context, b backend.Backend, name string, timeout, every time.Duration, progress func(string)) (*backend.Service, error) {
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := ""
	var s *backend.Service
	for {
		var err error
		s, err = b.GetService(ctx, name)
		if err != nil && ctx.Err() == nil {
			return nil, err
		}
		if s != nil {
			if line := stateLine(s); line != last {
				progress(line)
				last = line
			}
			if RolledOut(s) {
				return s, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, notReady(name, timeout, s)
		case <-tick.C:
		}
	}
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
