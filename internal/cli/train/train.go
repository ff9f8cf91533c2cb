// Package train is `petrel train -f FILE`: create the training job, stream
// its attempts' output with a visible state line, and exit 0 when it
// completes or 1 with the reason when it fails.
package train

import (
	"bytes"
	"context"
	"errors"

	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	clidiagnose "github.com/petrel-dev/petrel/internal/cli/diagnose"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/printers"
	"github.com/petrel-dev/petrel/internal/cli/specfiles"
	"github.com/petrel-dev/petrel/internal/spec"
)

// Options holds everything train needs.
type Options struct {
	IO      *factory.IOStreams
	Backend func(context.Context) (backend.Backend, error)
	Files   []string
	Detach  bool
}

// NewCmd returns `petrel train`. runF replaces the run function in tests.
func NewCmd(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	cmd := &cobra.Command{
		Use:   "train -f FILE",
		Short: "Run a training job and follow it to the end",
		Long: `Create the TrainingJob (and the Volumes) in FILE, stream every attempt's
output prefixed with its attempt number, and exit 0 when the job completes,
1 with the reason when it fails, or as soon as the diagnosis says it cannot
start by waiting (the job is left for describe and delete). A job that
finished earlier is run again;
Ctrl-C detaches with exit code 130 (the job keeps running).`,
		Example: `  petrel train -f examples/digits/train.yaml
  petrel train -f train.yaml --detach`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringSliceVarP(&opts.Files, "filename", "f", nil, "spec file, directory or - for standard input")
	cmd.Flags().BoolVar(&opts.Detach, "detach", false, "return once the job is created")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

type replacer interface {
	ApplyReplace(ctx context.Context, docs []*spec.Document) ([]backend.Applied, error)
}

// Run creates the job and follows it.
func Run(ctx context.Context, opts *Options) error {
	docs, err := specfiles.Read(opts.Files, opts.IO.In)
	if err != nil {
		return err
	}
	doc, err := specfiles.Single(docs, v1alpha1.KindTrainingJob, strings.Join(opts.Files, ", "), "train follows one",
		"train runs a kind: TrainingJob (use petrel apply or petrel serve for other kinds)")
	if err != nil {
		return err
	}
	job := doc.Object.(*v1alpha1.TrainingJob)
	b, err := specfiles.Connect(ctx, docs, opts.Backend)
	if err != nil {
		return err
	}
	var applied []backend.Applied
	if prev, err := b.GetJob(ctx, job.Metadata.Name); err == nil && prev.Finished() {
		// The re-run replaces the record: say so before it is gone.
		fmt.Fprintf(opts.IO.ErrOut, "petrel: job %s ran before (%s, %d attempt(s)); this run replaces it, with its logs and metrics\n",
			prev.Name, prev.Phase, len(prev.Attempts))
	}
	if r, ok := b.(replacer); ok {
		applied, err = r.ApplyReplace(ctx, docs)
	} else {
		applied, err = b.Apply(ctx, docs)
	}
	if err != nil {
		return err
	}
	for _, a := range applied {
		fmt.Fprintf(opts.IO.ErrOut, "%s/%s %s\n", strings.ToLower(a.Kind), a.Name, a.Action)
	}
	if opts.Detach {
		fmt.Fprintf(opts.IO.ErrOut, "follow it with: petrel logs %s -f\n", job.Metadata.Name)
		return nil
	}
	return Follow(ctx, opts.IO, b, job.Metadata.Name)
}

// Follow streams a job's logs to out and its state changes to errOut until
// it finishes. It returns nil when the job completes and an *ExitError
// (code 1) with the reason when it fails; on ctx cancel (Ctrl-C) it
// detaches and returns an *ExitError of code 130 saying the job runs on.
// While the job waits for an attempt to start, it diagnoses it every
// clidiagnose.CheckEvery; when the diagnosis names a permanent error (a
// claim whose StorageClass does not exist, an image that cannot be pulled,
// more GPUs than any node has) it prints the findings and returns an
// *ExitError of code 1 instead of waiting for ever; the job is left. When
// the server goes away meanwhile (a crash, server stop) it reconnects —
// the client starts a new server, which re-adopts the job — and resumes
// without repeating output lines.
func Follow(ctx context.Context, io *factory.IOStreams, b backend.Backend, name string) error {
	out := &dedupWriter{w: io.Out, seen: map[string]int{}, skip: map[string]int{}}
	var last backend.Job
	lastLine := ""
	stuck := &clidiagnose.StuckCheck{Ref: backend.Ref{Kind: "job", Name: name}}
	reported := map[int]bool{} // failed attempts already printed
	for try := 0; ; try++ {
		watchCtx, stopWatch := context.WithCancel(ctx)
		watch, err := b.WatchJob(watchCtx, name)
		if err != nil {
			stopWatch()
			if try > 0 && ctx.Err() == nil && !errors.Is(err, backend.ErrNotFound) && try < 40 {
				time.Sleep(250 * time.Millisecond)
				continue
			}
			return err
		}
		if try > 0 {
			out.replay()
			fmt.Fprintf(io.ErrOut, "petrel: reconnected to the server\n")
		}
		logCtx, stopLogs := context.WithCancel(ctx)
		logsDone := make(chan struct{})
		go func() {
			defer close(logsDone)
			_ = b.Logs(logCtx, backend.Ref{Kind: "job", Name: name}, backend.LogOptions{Attempt: -1, Replica: -1, Follow: true}, out)
		}()
		tick := time.NewTicker(clidiagnose.CheckEvery)
		var hopeless error
	events:
		for {
			select {
			case j, ok := <-watch:
				if !ok {
					break events
				}
				last = j
				if settling(&j) {
					continue
				}
				for _, a := range j.Attempts {
					if a.Phase == backend.PodFailed && !reported[a.Index] {
						reported[a.Index] = true
						out.mu.Lock()
						fmt.Fprintf(io.ErrOut, "petrel: %s\n", failureLine(&a))
						out.mu.Unlock()
					}
				}
				if line := stateLine(&j); line != lastLine {
					out.mu.Lock()
					fmt.Fprintf(io.ErrOut, "petrel: %s\n", line)
					out.mu.Unlock()
					lastLine = line
				}
			case <-tick.C:
				if !waitingToStart(&last) {
					continue
				}
				findings, block := stuck.Check(ctx, b)
				if block == nil {
					continue
				}
				out.mu.Lock()
				clidiagnose.Explain(io.ErrOut, stuck.Ref, findings)
				out.mu.Unlock()
				hopeless = &printers.ExitError{Code: 1, Msg: fmt.Sprintf("job %s will not start by waiting: %s (rule %s); it is left as it is: petrel describe job %s, petrel delete job %s",
					name, strings.TrimSuffix(block.Message, "."), block.RuleID, name, name)}
				break events
			}
		}
		tick.Stop()
		stopWatch()
		if hopeless != nil {
			stopLogs()
			<-logsDone
			return hopeless
		}
		if ctx.Err() != nil {
			stopLogs()
			// Exit 130 (128 + SIGINT), so `petrel train … && petrel serve …`
			// does not go on with a model that is not written yet.
			return &printers.ExitError{Code: 130, Msg: fmt.Sprintf("interrupted: job %s keeps running; follow it with petrel logs %s -f, stop it with petrel delete job %s", name, name, name)}
		}
		if last.Finished() && last.Active == 0 {
			// Let the log stream drain what the last attempt wrote.
			select {
			case <-logsDone:
			case <-time.After(5 * time.Second):
			}
			stopLogs()
			<-logsDone
			break
		}
		stopLogs()
		<-logsDone
		if try >= 40 {
			return fmt.Errorf("lost the connection to the server while following job %s; check it with petrel describe job %s", name, name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c := last.FinalCondition()
	dur := ""
	if last.StartTime != nil && last.CompletionTime != nil {
		dur = " in " + printers.Age(last.CompletionTime.Sub(*last.StartTime))
	}
	if last.Phase == backend.JobComplete {
		fmt.Fprintf(io.ErrOut, "petrel: job %s completed%s after %d attempt(s)\n", name, dur, len(last.Attempts))
		return nil
	}
	msg := fmt.Sprintf("job %s failed%s: %s", name, dur, c.Reason)
	if c.Message != "" {
		msg += ": " + c.Message
	}
	if findings, err := b.Diagnose(ctx, backend.Ref{Kind: "job", Name: name}); err == nil && len(findings) > 0 {
		fmt.Fprintln(io.ErrOut, "petrel: diagnosis:")
		for _, f := range findings {
			fmt.Fprintf(io.ErrOut, "  - %s\n", f.Message)
			if f.Fix != "" {
				fmt.Fprintf(io.ErrOut, "    fix: %s\n", f.Fix)
			}
		}
	}
	return &printers.ExitError{Code: 1, Msg: msg}
}

// dedupWriter passes "[attempt N] …" log lines through, counting them per
// attempt; after replay() it drops as many lines of each attempt as were
// already written, so a log stream restarted from the beginning resumes
// where the last one stopped.
type dedupWriter struct {
	mu      sync.Mutex
	w       io.Writer
	partial []byte
	seen    map[string]int
	skip    map[string]int
}

func (d *dedupWriter) replay() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.partial = nil
	for k, v := range d.seen {
		d.skip[k] = v
	}
}

func (d *dedupWriter) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.partial = append(d.partial, p...)
	for {
		i := bytes.IndexByte(d.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := d.partial[:i+1]
		key := ""
		if strings.HasPrefix(string(line), "[attempt ") {
			key = string(line[:bytes.IndexByte(line, ']')+1])
		}
		if d.skip[key] > 0 {
			d.skip[key]--
		} else {
			d.seen[key]++
			if _, err := d.w.Write(line); err != nil {
				return 0, err
			}
		}
		d.partial = d.partial[i+1:]
	}
}

// waitingToStart reports whether j waits for an attempt to start (its pod
// unschedulable, its container waiting, or not yet placed) — the state in
// which a diagnosis may say that waiting will not help. A job backing off
// between failed attempts is not waiting to start: it ends by itself, and
// its failure is diagnosed then. The local engine's GPU wait is diagnosed
// as passing, so it never stops a wait.
func waitingToStart(j *backend.Job) bool {
	return j.Name != "" && !j.Finished() && j.Waiting != nil && j.Waiting.Reason != backend.WaitingBackOff
}

// settling reports whether j is between an attempt that succeeded and the
// job's Complete condition: the local engine reports that moment as
// Pending, which is not news to print (batch/v1 goes from one to the other
// in one sync).
func settling(j *backend.Job) bool {
	n := len(j.Attempts)
	return j.Phase == backend.JobPending && j.Active == 0 && n > 0 && j.Attempts[n-1].Phase == "Succeeded"
}

// stateLine summarises a job's state for the live status line.
// failureLine says how a failed attempt ended: its exit code and reason,
// and the message (for a distributed attempt, the worker that failed
// first and the ones stopped because of it).
func failureLine(a *backend.Attempt) string {
	code := "no exit code"
	if a.ExitCode != nil {
		code = fmt.Sprintf("exit code %d", *a.ExitCode)
	}
	line := fmt.Sprintf("attempt %d failed (%s, %s)", a.Index, code, a.Reason)
	if a.Message != "" {
		line += ": " + a.Message
	}
	if a.Ignored {
		line += " — ignored by podFailurePolicy, not counted against backoffLimit"
	}
	return line
}

func stateLine(j *backend.Job) string {
	total := int(j.Spec.EffectiveBackoffLimit()) + 1
	switch {
	case j.Finished():
		c := j.FinalCondition()
		if c != nil && c.Reason != "" {
			return fmt.Sprintf("job %s %s (%s)", j.Name, j.Phase, c.Reason)
		}
		return fmt.Sprintf("job %s %s", j.Name, j.Phase)
	case j.Waiting != nil:
		return fmt.Sprintf("job %s %s: %s", j.Name, j.Phase, j.Waiting)
	case len(j.Attempts) > 0:
		a := j.Attempts[len(j.Attempts)-1]
		gpus := ""
		if len(a.GPUs) > 0 {
			gpus = ", GPUs " + strings.Join(a.GPUs, ",")
		}
		return fmt.Sprintf("job %s %s: attempt %d (%s, %d failed of backoffLimit %d)%s", j.Name, j.Phase, a.Index, a.Name, j.Failed, total-1, gpus)
	}
	return fmt.Sprintf("job %s %s", j.Name, j.Phase)
}
