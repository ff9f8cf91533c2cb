package diagnose

import (
	"fmt"
	"regexp"
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
	Logs    []string
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
		switch {
		case t != nil && t.Reason == backend.ReasonOOMKilled:
			k.Cause = causeOOM
		case len(c.probeKills(r.Pod, r.Status.Name)) > 0:
			k.Cause = causeLiveness
		default:
			if p := matchLogs(k.Logs); p != nil {
				k.Cause, k.Pattern = causeLog, p
			} else {
				k.Cause = causeCrash
			}
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

// logPattern is a known error signature in a container's last log lines,
// with what it means and how to fix it.
type logPattern struct {
	ID        string
	re        *regexp.Regexp
	Permanent bool
	// Message is formatted with who failed: "Container C of pod P" or
	// "Attempt N of job J".
	Message string
	Fix     string
}

// logPatterns is the catalogue of log signatures, most specific first.
var logPatterns = []*logPattern{
	{
		ID:        "shm-too-small",
		re:        regexp.MustCompile(`(?i)insufficient shared memory|bus error|/dev/shm.*no space left`),
		Permanent: true,
		Message:   "%s died of a Bus error in DataLoader workers: /dev/shm is too small (64Mi in a container by default) for the batches they pass through shared memory.",
		Fix:       "Mount an in-memory emptyDir at /dev/shm: volumes: [{name: dshm, emptyDir: {medium: Memory, sizeLimit: 8Gi}}] with volumeMounts: [{name: dshm, mountPath: /dev/shm}] (it counts against the memory limit), or use num_workers=0.",
	},
	{
		ID:        "gpu-out-of-memory",
		re:        regexp.MustCompile(`(?i)CUDA out of memory|torch\.(cuda\.)?OutOfMemoryError|CUDA error: out of memory|CUBLAS_STATUS_ALLOC_FAILED`),
		Permanent: true,
		Message:   "%s ran out of GPU memory (CUDA out of memory); more host memory will not help.",
		Fix:       "Lower the batch size or sequence length, use mixed precision or gradient checkpointing, or ask for a GPU with more memory.",
	},
	{
		ID:        "gpu-not-visible",
		re:        regexp.MustCompile(`(?i)no CUDA-capable device is detected|Found no NVIDIA driver|NVIDIA-SMI has failed|CUDA driver version is insufficient|torch\.cuda\.is_available\(\) is False`),
		Permanent: true,
		Message:   "%s sees no usable GPU: it got none, or the node's driver/runtime does not expose it.",
		Fix:       "Ask for the GPU under resources.limits (nvidia.com/gpu: 1), and check that the node runs the NVIDIA container runtime and a driver recent enough for the image's CUDA.",
	},
	{
		ID:      "rendezvous-peer-not-ready",
		re:      regexp.MustCompile(`(?i)name or service not known|host not found|temporary failure in name resolution|nodename nor servname|(TCPStore|rendezvous|init_process_group|c10d).*(connection refused|timed out)`),
		Message: "%s fails in distributed rendezvous: it cannot resolve or reach the master (MASTER_ADDR) yet — a start-order race that burns restarts and can exhaust backoffLimit.",
		Fix:     "Add an init container that waits until the master's DNS name resolves and its port accepts connections (e.g. until nc -z $MASTER_ADDR $MASTER_PORT; do sleep 2; done), or use elastic (c10d) rendezvous with a timeout.",
	},
}

// matchLogs returns the first catalogue pattern found in lines, or nil.
func matchLogs(lines []string) *logPattern {
	for _, p := range logPatterns {
		for _, l := range lines {
			if p.re.MatchString(l) {
				return p
			}
		}
	}
	return nil
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
