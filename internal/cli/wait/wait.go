// Package wait is `petrel wait --for=condition=Complete job/NAME`: block
// until a job or service reaches a condition, as kubectl wait does.
package wait

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/get"
	"github.com/petrel-dev/petrel/internal/cli/printers"
	"github.com/petrel-dev/petrel/internal/cli/serve"
)

// Options holds everything wait needs.
type Options struct {
	IO      *factory.IOStreams
	Backend func(context.Context) (backend.Backend, error)
	Refs    []backend.Ref
	// Condition is the condition type waited for: Complete or Failed for
	// jobs, Ready (every replica of the current spec ready) for services.
	Condition string
	Timeout   time.Duration
}

// NewCmd returns `petrel wait`.
func NewCmd(f *factory.Factory) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	var forFlag string
	cmd := &cobra.Command{
		Use:   "wait --for=condition=COND KIND/NAME…",
		Short: "Wait until jobs are Complete (or Failed) or services are Ready",
		Long: `wait blocks until every named object reaches the condition, as kubectl wait:
condition=Complete or condition=Failed for jobs, condition=Ready (every replica
of the current spec ready) for services. It exits 0 when they do, and 1 when
the timeout passes or a job finishes the other way (a Failed job will never
be Complete).`,
		Example: `  petrel wait --for=condition=Complete job/digits-train --timeout=10m
  petrel wait --for=condition=Ready service/digits`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: get.CompleteKindAndNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			cond, ok := strings.CutPrefix(forFlag, "condition=")
			if !ok || cond == "" {
				return fmt.Errorf("--for=%s: use --for=condition=Complete, Failed (jobs) or Ready (services)", forFlag)
			}
			opts.Condition = cond
			kind, names, err := get.ParseArgs(args)
			if err != nil {
				return err
			}
			opts.Refs = nil
			for _, n := range names {
				opts.Refs = append(opts.Refs, backend.Ref{Kind: kind, Name: n})
			}
			if len(opts.Refs) == 0 {
				return fmt.Errorf("name what to wait for: petrel wait --for=condition=Complete job/NAME")
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&forFlag, "for", "", "the condition: condition=Complete, condition=Failed or condition=Ready")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 30*time.Second, "how long to wait (kubectl's default is 30s too)")
	_ = cmd.MarkFlagRequired("for")
	return cmd
}

// Run waits for each object in turn, within one timeout for all.
func Run(ctx context.Context, opts *Options) error {
	cond := strings.ToLower(opts.Condition)
	for _, r := range opts.Refs {
		valid := map[string][]string{"job": {"complete", "failed"}, "service": {"ready", "available"}}[r.Kind]
		if !contains(valid, cond) {
			return fmt.Errorf("%s/%s: a %s has no condition %q; use %s", r.Kind, r.Name, r.Kind, opts.Condition, strings.Join(valid, " or "))
		}
	}
	b, err := opts.Backend(ctx)
	if err != nil {
		return err
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	for _, r := range opts.Refs {
		var err error
		if r.Kind == "job" {
			err = waitJob(ctx, b, r.Name, cond)
		} else {
			_, err = serve.Wait(ctx, b, r.Name, opts.Timeout, time.Second, func(string) {})
			var loop *serve.CrashLoopError
			if errors.As(err, &loop) {
				err = &printers.ExitError{Code: 1, Msg: loop.Error()}
			}
		}
		if err != nil {
			if parent.Err() != nil {
				return &printers.ExitError{Code: 130}
			}
			if ctx.Err() != nil {
				return &printers.ExitError{Code: 1, Msg: fmt.Sprintf("timed out after %s waiting for the condition on %s/%s", opts.Timeout, r.Kind, r.Name)}
			}
			return err
		}
		fmt.Fprintf(opts.IO.Out, "%s/%s condition met\n", r.Kind, r.Name)
	}
	return nil
}

// waitJob follows the job's watch until it finishes; nil when it finished
// with the wanted condition.
func waitJob(ctx context.Context, b backend.Backend, name, cond string) error {
	ch, err := b.WatchJob(ctx, name)
	if err != nil {
		return err
	}
	for j := range ch {
		c := j.FinalCondition()
		if c == nil {
			continue
		}
		if strings.EqualFold(c.Type, cond) {
			return nil
		}
		msg := fmt.Sprintf("job %s is %s (%s), so it will never be %s", name, c.Type, c.Reason, cond)
		return &printers.ExitError{Code: 1, Msg: msg}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("lost the watch of job %s", name)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
