package kube

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/katib"
)

// Logs writes pod logs of the workload's main container. For a job,
// attempt N is the Nth pod by creation time; -1 writes every attempt with
// "[attempt N] " prefixes and, with Follow, streams each attempt in turn as
// the Job controller creates it until the job finishes. For a service,
// replica N is the Nth pod by creation time; -1 writes (or follows) all
// replicas with "[replica N] " prefixes.
func (b *Backend) Logs(ctx context.Context, ref backend.Ref, opts backend.LogOptions, w io.Writer) error {
	switch ref.Kind {
	case KindJob:
		return b.jobLogs(ctx, ref.Name, opts, w)
	case KindService:
		return b.serviceLogs(ctx, ref.Name, opts, w)
	}
	return fmt.Errorf("no logs for a %q: give a job or a service", ref.Kind)
}

func (b *Backend) jobLogs(ctx context.Context, name string, opts backend.LogOptions, w io.Writer) error {
	ns := b.nsFor(KindJob, name)
	if !opts.Follow {
		j, err := b.GetJob(ctx, name)
		if err != nil {
			return err
		}
		if opts.Attempt >= 0 {
			if opts.Attempt >= len(j.Attempts) {
				return fmt.Errorf("job %s has %d attempts (0–%d); pick one of them with --attempt", name, len(j.Attempts), len(j.Attempts)-1)
			}
			return b.podLogs(ctx, ns, j.Attempts[opts.Attempt].Name, false, "", w, opts)
		}
		for _, a := range j.Attempts {
			if err := b.podLogs(ctx, ns, a.Name, false, fmt.Sprintf("[attempt %d] ", a.Index), w, opts); err != nil {
				fmt.Fprintf(w, "[attempt %d] logs unavailable: %v\n", a.Index, err)
			}
		}
		return nil
	}
	ch, err := b.WatchJob(ctx, name)
	if err != nil {
		return err
	}
	next := 0
	if opts.Attempt >= 0 {
		next = opts.Attempt
	}
	for j := range ch {
		for next < len(j.Attempts) && (j.Attempts[next].Phase != backend.PodPending || j.Finished()) {
			a := j.Attempts[next]
			prefix := ""
			if opts.Attempt < 0 {
				prefix = fmt.Sprintf("[attempt %d] ", a.Index)
			}
			if err := b.podLogs(ctx, ns, a.Name, true, prefix, w, opts); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if opts.Attempt >= 0 {
					return err
				}
				fmt.Fprintf(w, "%slogs unavailable: %v\n", prefix, err)
			}
			if opts.Attempt >= 0 {
				return nil
			}
			next++
		}
	}
	return ctx.Err()
}

func (b *Backend) serviceLogs(ctx context.Context, name string, opts backend.LogOptions, w io.Writer) error {
	s, err := b.GetService(ctx, name)
	if err != nil {
		return err
	}
	ns := b.nsFor(KindService, name)
	if opts.Replica >= 0 {
		if opts.Replica >= len(s.Replicas) {
			return fmt.Errorf("service %s has %d replicas (0–%d); pick one of them with --replica", name, len(s.Replicas), len(s.Replicas)-1)
		}
		return b.podLogs(ctx, ns, s.Replicas[opts.Replica].Name, opts.Follow, "", w, opts)
	}
	sw := &syncWriter{w: w}
	var wg sync.WaitGroup
	errs := make([]error, len(s.Replicas))
	for i, r := range s.Replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.podLogs(ctx, ns, r.Name, opts.Follow, fmt.Sprintf("[replica %d] ", r.Index), sw, opts)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// syncWriter serialises whole-line writes of concurrent streams.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// podLogs copies one pod's main-container log to w, each line prefixed.
// With follow it returns when the container ends or ctx is cancelled.
// extra's Timestamps, SinceSeconds and Previous are passed to the kubelet.
func (b *Backend) podLogs(ctx context.Context, ns, pod string, follow bool, prefix string, w io.Writer, extra ...backend.LogOptions) error {
	plo := &corev1.PodLogOptions{Container: ContainerName, Follow: follow}
	for _, o := range extra {
		plo.Timestamps, plo.Previous = o.Timestamps, o.Previous
		if o.SinceSeconds > 0 {
			plo.SinceSeconds = &o.SinceSeconds
		}
	}
	rc, err := b.cs.CoreV1().Pods(ns).GetLogs(pod, plo).Stream(ctx)
	if err != nil {
		return b.explain(err, "get", "pods/log", ns, pod)
	}
	defer rc.Close()
	r := bufio.NewReader(rc)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			if _, werr := io.WriteString(w, prefix+line); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log of pod %s: %w", pod, err)
		}
	}
}

// Metrics parses Katib-format metric lines from every attempt's pod log
// (requested with timestamps, which give each point its time). An attempt
// whose log cannot be read (a pod never started, or a node that serves no
// logs) contributes nothing.
func (b *Backend) Metrics(ctx context.Context, name string) ([]backend.MetricPoint, error) {
	j, err := b.GetJob(ctx, name)
	if err != nil {
		return nil, err
	}
	ns := b.nsFor(KindJob, name)
	var out []backend.MetricPoint
	for _, a := range j.Attempts {
		raw, err := b.cs.CoreV1().Pods(ns).GetLogs(a.Name, &corev1.PodLogOptions{Container: ContainerName, Timestamps: true}).DoRaw(ctx)
		if err != nil {
			continue
		}
		out = append(out, parseMetrics(a.Index, string(raw))...)
	}
	return out, nil
}

// parseMetrics turns "RFC3339NANO-TIMESTAMP line" log lines into points.
func parseMetrics(attempt int, log string) []backend.MetricPoint {
	var out []backend.MetricPoint
	for _, line := range strings.Split(log, "\n") {
		ts, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t, rest = time.Time{}, line
		}
		for _, m := range katib.ParseLine(rest) {
			out = append(out, backend.MetricPoint{Attempt: attempt, Time: t, Name: m.Name, Value: m.Value})
		}
	}
	return out
}
