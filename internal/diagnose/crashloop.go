package diagnose

import (
	"fmt"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	register(Analyzer{
		Name: "crash-loop",
		Description: "Reports containers that exit with an error by themselves (not OOM-killed, not killed by a " +
			"probe, no known log signature): the last exit code and what it means, the restart count and " +
			"the last log lines; and containers that cannot be created or started at all.",
		Rules: []Rule{
			{"crash-loop", "A container keeps exiting with an error and the kubelet restarts it (CrashLoopBackOff)."},
			{"container-failed", "A container exited with an error and was not restarted (restartPolicy Never)."},
			{"container-start-error", "A container cannot be created or started (missing Secret/ConfigMap, bad command)."},
		},
		Run: runCrashLoop,
	})
}

func runCrashLoop(c *Context) []backend.Finding {
	var out []backend.Finding
	for _, k := range c.crashes() {
		if k.Cause != causeCrash {
			continue
		}
		f := backend.Finding{RuleID: "crash-loop", Severity: backend.SeverityError, Object: podObject(k.Pod), Evidence: k.evidence(5)}
		exit := ""
		if k.Term != nil {
			exit = fmt.Sprintf(" with code %d (%s)", k.Term.ExitCode, exitMeaning(k.Term.ExitCode))
			if k.Term.Reason == "StartError" || k.Term.Reason == "ContainerCannotRun" || k.Term.ExitCode == 126 || k.Term.ExitCode == 127 {
				f.RuleID, f.Permanent = "container-start-error", true
			}
		}
		switch {
		case f.RuleID == "container-start-error":
			f.Message = fmt.Sprintf("Container %s of pod %s cannot run its command: it exited%s.", k.Status.Name, k.Pod.Name, exit)
			f.Fix = "Check command and args against the image (the program must exist on its PATH and be executable)."
		case k.Looping():
			f.Message = fmt.Sprintf("Container %s of pod %s keeps crashing: it exited%s and has been restarted %d times.", k.Status.Name, k.Pod.Name, exit, k.Status.RestartCount)
			f.Fix = fmt.Sprintf("Read why it exits (kubectl logs %s -c %s --previous) and fix that; restarts will not help a deterministic error.", k.Pod.Name, k.Status.Name)
		default:
			f.RuleID = "container-failed"
			f.Message = fmt.Sprintf("Container %s of pod %s failed: it exited%s.", k.Status.Name, k.Pod.Name, exit)
			f.Fix = fmt.Sprintf("Read its output (kubectl logs %s -c %s) and fix the error.", k.Pod.Name, k.Status.Name)
		}
		out = append(out, f)
	}
	// Containers that never started.
	c.eachContainer(func(r containerRef) {
		w := r.Status.State.Waiting
		if w == nil {
			return
		}
		switch w.Reason {
		case "CreateContainerConfigError", "CreateContainerError", "RunContainerError", "ContainerCannotRun":
		default:
			return
		}
		out = append(out, backend.Finding{
			RuleID: "container-start-error", Severity: backend.SeverityError, Object: podObject(r.Pod), Permanent: true,
			Message:  fmt.Sprintf("Container %s of pod %s cannot be started: %s.", r.Status.Name, r.Pod.Name, w.Message),
			Evidence: []string{fmt.Sprintf("%s.state.waiting: reason %s, message %q", r.path(), w.Reason, w.Message)},
			Fix:      "Create the Secret or ConfigMap it references (or mark the reference optional), or correct the command.",
		})
	})
	return out
}
