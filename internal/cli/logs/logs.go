// Package logs is `petrel logs NAME|job/NAME|service/NAME`, with kubectl's
// -f, --tail, --since, --timestamps and --previous.
package logs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/get"
	"github.com/petrel-dev/petrel/internal/cli/printers"
)

// Options holds everything logs needs.
type Options struct {
	IO      *factory.IOStreams
	Backend func(context.Context) (backend.Backend, error)
	Ref     backend.Ref
	Opts    backend.LogOptions
	// Tail is how many of the last lines to print (-1: all). It is applied
	// here, over the backend's stream: with -f the existing lines are read
	// once, the last Tail printed, and the stream then resumes after them.
	Tail int
	// Since keeps lines of the last duration (backends that record times).
	Since time.Duration
	// Previous picks a job's last failed attempt, or a service replica's
	// previous container.
	Previous bool
}

// NewCmd returns `petrel logs`.
func NewCmd(f *factory.Factory) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	cmd := &cobra.Command{
		Use:   "logs NAME | job/NAME | service/NAME",
		Short: "Print a workload's output (every attempt, or one with --attempt)",
		Example: `  petrel logs digits-train -f
  petrel logs job/digits-train --attempt 0
  petrel logs digits-train --previous --tail 20
  petrel logs service/digits --replica 1
  petrel --target kubernetes logs service/digits --since 10m --timestamps`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: get.CompleteRef(f, "job"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = backend.Ref{Kind: "job", Name: args[0]}
			if k, n, ok := strings.Cut(args[0], "/"); ok {
				kind, err := get.NormalizeKind(k)
				if err != nil {
					return err
				}
				opts.Ref = backend.Ref{Kind: kind, Name: n}
			}
			return opts.run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&opts.Opts.Follow, "follow", "f", false, "stream until the workload ends (Ctrl-C stops, exit 130)")
	fl.IntVar(&opts.Opts.Attempt, "attempt", -1, "only this attempt (0-based); default every attempt, prefixed")
	fl.IntVar(&opts.Opts.Replica, "replica", -1, "only this replica of a service")
	fl.IntVar(&opts.Tail, "tail", -1, "print only the last N lines (then follow, with -f)")
	fl.DurationVar(&opts.Since, "since", 0, "only lines written in the last duration, e.g. 10m")
	fl.BoolVar(&opts.Opts.Timestamps, "timestamps", false, "prefix each line with the time it was written (RFC 3339, UTC)")
	fl.BoolVarP(&opts.Previous, "previous", "p", false, "a job's last failed attempt, or a service replica's previous container")
	return cmd
}

func (o *Options) run(ctx context.Context) error {
	b, err := o.Backend(ctx)
	if err != nil {
		return err
	}
	lo := o.Opts
	if o.Since > 0 {
		lo.SinceSeconds = int64((o.Since + time.Second - 1) / time.Second)
	}
	if o.Previous {
		if err := o.previous(ctx, b, &lo); err != nil {
			return err
		}
	}
	err = o.stream(ctx, b, lo)
	if ctx.Err() != nil {
		// Ctrl-C on logs -f is how one stops following: no error message,
		// and the status a shell gives a command ended by SIGINT.
		return &printers.ExitError{Code: 130}
	}
	return err
}

// previous turns --previous into the attempt (jobs) or container
// (services) to read.
func (o *Options) previous(ctx context.Context, b backend.Backend, lo *backend.LogOptions) error {
	if o.Ref.Kind != "job" {
		lo.Previous = true
		return nil
	}
	j, err := b.GetJob(ctx, o.Ref.Name)
	if err != nil {
		return err
	}
	for i := len(j.Attempts) - 1; i >= 0; i-- {
		if j.Attempts[i].Phase == "Failed" {
			lo.Attempt = j.Attempts[i].Index
			return nil
		}
	}
	return fmt.Errorf("job %s has no failed attempt (%d attempts): --previous reads the last failed one", o.Ref.Name, len(j.Attempts))
}

// stream writes the logs, keeping the last Tail lines when Tail is set.
func (o *Options) stream(ctx context.Context, b backend.Backend, lo backend.LogOptions) error {
	if o.Tail < 0 {
		return b.Logs(ctx, o.Ref, lo, o.IO.Out)
	}
	once := lo
	once.Follow = false
	var buf bytes.Buffer
	if err := b.Logs(ctx, o.Ref, once, &buf); err != nil {
		return err
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	start := max(0, len(lines)-o.Tail)
	if _, err := io.WriteString(o.IO.Out, strings.Join(lines[start:], "")); err != nil {
		return err
	}
	if !lo.Follow {
		return nil
	}
	// The followed stream starts from the beginning: skip what was read.
	return b.Logs(ctx, o.Ref, lo, &skipLines{w: o.IO.Out, skip: len(lines)})
}

// skipLines drops the first skip lines written to it.
type skipLines struct {
	w    io.Writer
	skip int
}

func (s *skipLines) Write(p []byte) (int, error) {
	n := len(p)
	for s.skip > 0 && len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return n, nil // the rest of a skipped line
		}
		p = p[i+1:]
		s.skip--
	}
	if len(p) == 0 {
		return n, nil
	}
	if _, err := s.w.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}
