package diagnose

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
)

// This file holds the shared walker over crashed containers: it decides
// once, for every container that terminated with an error, what caused it
// (OOM kill, liveness probe, a known log signature, or a plain crash), so
// each analyser reports only its own cause and none re-walks the pods.

// crashCause is why a container terminated with an error.
type crashCause int

const (
	causeNone     crashCause = iota
	causeOOM                 // lastState.terminated.reason OOMKilled
	causeLiveness            // the kubelet killed it after liveness/startup probe failures
	causeLog                 // a known error signature in its last log lines
	causeCrash               // the program exited with an error by itself
)

// crash is one container that terminated with an error, grouped with the
// other pods of the same workload that failed the same way.
type crash struct {
	containerRef
	Term    *corev1.ContainerStateTerminated // nil when only CrashLoopBackOff is known
	Field   string
	Cause   crashCause
	Pattern *logPattern
	// Quote is the log lines that carry the pattern's cause.
	Quote []string
	Logs  []string
	// Others names the other pods of the same owner that failed alike.
	Others []string
}

// Looping reports whether the kubelet restarts the container in place.
func (k *crash) Looping() bool {
	w := k.Status.State.Waiting
	return (w != nil && w.Reason == "CrashLoopBackOff") || k.Status.RestartCount > 0
}

// crashes returns every crashed container in scope with its cause. Pods of
// the same owner whose container failed alike (same cause and exit code)
// are folded into one, newest first.
func (c *Context) crashes() []*crash {
	if c.crashed == nil {
		c.crashed = c.findCrashes()
	}
	return c.crashed
}

func (c *Context) findCrashes() []*crash {
	out := []*crash{}
	index := map[string]*crash{}
	c.eachContainer(func(r containerRef) {
		t, field := lastTermination(r.Status)
		w := r.Status.State.Waiting
		looping := w != nil && w.Reason == "CrashLoopBackOff"
		failed := looping || (t != nil && (t.ExitCode != 0 || t.Reason == backend.ReasonOOMKilled))
		// A container that restarted once but runs and is ready now has
		// recovered: not a finding.
		if !failed || (r.Status.State.Running != nil && r.Status.Ready) {
			return
		}
		k := &crash{containerRef: r, Term: t, Field: field, Logs: c.Logs(r.Pod, r.Status.Name)}
		// A cause the program states in its log beats a probe kill: the
		// probe only saw the server not come up, the log says why.
		p, quote := matchLogs(k.Logs)
		switch {
		case t != nil && t.Reason == backend.ReasonOOMKilled:
			k.Cause = causeOOM
		case p != nil:
			k.Cause, k.Pattern, k.Quote = causeLog, p, quote
		case len(c.probeKills(r.Pod, r.Status.Name)) > 0 || c.probeKilledByObjects(r, t):
			k.Cause = causeLiveness
		default:
			k.Cause = causeCrash
		}
		exit := int32(-1)
		if t != nil {
			exit = t.ExitCode
		}
		owner := ""
		for _, o := range r.Pod.OwnerReferences {
			owner = o.Kind + "/" + o.Name
		}
		if owner != "" {
			g := fmt.Sprintf("%s|%s|%d|%d", owner, r.Status.Name, k.Cause, exit)
			if prev, ok := index[g]; ok {
				if r.Pod.CreationTimestamp.After(prev.Pod.CreationTimestamp.Time) {
					k.Others = append(prev.Others, prev.Pod.Name)
					*prev = *k
				} else {
					prev.Others = append(prev.Others, r.Pod.Name)
				}
				return
			}
			index[g] = k
		}
		out = append(out, k)
	})
	return out
}

// evidence quotes the facts every crash finding shares: the waiting state,
// restart count, last termination, the memory limit and the last log lines.
func (k *crash) evidence(logLines int) []string {
	var ev []string
	if w := k.Status.State.Waiting; w != nil {
		s := fmt.Sprintf("%s.state.waiting.reason: %s", k.path(), w.Reason)
		if w.Message != "" {
			s += fmt.Sprintf(" (%q)", w.Message)
		}
		ev = append(ev, s)
	}
	if k.Status.RestartCount > 0 {
		ev = append(ev, fmt.Sprintf("%s.restartCount: %d", k.path(), k.Status.RestartCount))
	}
	if s := terminationEvidence(k.containerRef); s != "" {
		ev = append(ev, s)
	}
	if len(k.Others) > 0 {
		ev = append(ev, fmt.Sprintf("also failed alike: pod %s", strings.Join(k.Others, ", ")))
	}
	if len(k.Logs) > 0 {
		ev = append(ev, logEvidence(k.Status.Name, k.Logs, logLines)...)
	}
	return ev
}

// exitMeaning explains an exit code the way shells and the kubelet use them.
func exitMeaning(code int32) string {
	switch {
	case code == 1:
		return "a general error"
	case code == 2:
		return "a usage error"
	case code == 126:
		return "the command is not executable"
	case code == 127:
		return "the command was not found in the image"
	case code == 137:
		return "SIGKILL"
	case code == 139:
		return "a segmentation fault"
	case code == 134:
		return "an abort (SIGABRT)"
	case code == 143:
		return "SIGTERM"
	case code > 128 && code < 160:
		return fmt.Sprintf("signal %d", code-128)
	}
	return "an error"
}

// probeKilledByObjects tells a kubelet probe kill from the objects, without
// the events' wording: the container has a liveness or startup probe, it
// last ended by a signal the kubelet sends (SIGKILL 137 after the grace
// period, SIGTERM 143 when the program exits on it) and was not
// OOM-killed, and the kubelet recorded Unhealthy or Killing events for
// the pod (by reason; their messages may be gone or reworded).
func (c *Context) probeKilledByObjects(r containerRef, t *corev1.ContainerStateTerminated) bool {
	if r.Spec == nil || (r.Spec.LivenessProbe == nil && r.Spec.StartupProbe == nil) || t == nil ||
		(t.ExitCode != 137 && t.ExitCode != 143) || t.Reason == backend.ReasonOOMKilled {
		return false
	}
	for _, e := range c.Events("Pod", r.Pod.Namespace, r.Pod.Name) {
		if e.Reason == "Unhealthy" || e.Reason == "Killing" {
			return true
		}
	}
	return false
}

// probeKills returns the events saying the kubelet killed or will restart
// the container because a liveness or startup probe failed, with the
// Unhealthy events before them.
func (c *Context) probeKills(p *corev1.Pod, container string) []*corev1.Event {
	var kills, unhealthy []*corev1.Event
	for _, e := range c.Events("Pod", p.Namespace, p.Name) {
		m := e.Message
		switch {
		case e.Reason == "Killing" && (strings.Contains(m, "failed liveness probe") || strings.Contains(m, "failed startup probe")) &&
			(container == "" || strings.Contains(m, "Container "+container+" ") || !strings.Contains(m, "Container ")):
			kills = append(kills, e)
		case e.Reason == "Unhealthy" && (strings.HasPrefix(m, "Liveness probe failed") || strings.HasPrefix(m, "Startup probe failed")):
			unhealthy = append(unhealthy, e)
		}
	}
	if len(kills) == 0 {
		return nil
	}
	return append(unhealthy, kills...)
}
