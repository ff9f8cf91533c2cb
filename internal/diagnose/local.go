package diagnose

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/petrel-dev/petrel/internal/backend"
)

// This file analyses the local engine's status vocabulary (backend.Job with
// its attempts, backend.Service with its replicas and events). It makes the
// same findings, with the same rule IDs and builders, as the Kubernetes
// analysis of the matching pod and Job fields.

// AnalyzeJob explains what is wrong with a local training job: a failed
// final condition (BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy),
// attempts that were OOM-killed, could not start (StartError) or left a
// known error signature in their message, attempts that keep failing, and a
// job waiting for GPUs ("waiting for N GPUs, M free": passing, unlike a
// request larger than the machine, which the engine rejects at apply).
// A job that completed, even after failed attempts, has no findings.
func AnalyzeJob(job backend.Job) []backend.Finding {
	obj := "Job/" + job.Name
	if job.Phase == backend.JobComplete {
		return nil
	}
	var out []backend.Finding
	var failed []backend.Attempt
	for _, a := range job.Attempts {
		if a.Phase == "Failed" || (a.ExitCode != nil && *a.ExitCode != 0) || a.Reason == backend.ReasonOOMKilled || a.Reason == backend.ReasonStartError {
			failed = append(failed, a)
		}
	}
	memLimit := ""
	if job.Spec.Resources.Memory != nil {
		memLimit = job.Spec.Resources.Memory.String()
	}

	// Group failed attempts by cause, as crashes() does for pods.
	var ooms, starts, crashes []backend.Attempt
	patterns := map[*logPattern][]backend.Attempt{}
	quotes := map[*logPattern][]string{}
	for _, a := range failed {
		switch {
		case a.Reason == backend.ReasonOOMKilled:
			ooms = append(ooms, a)
		case a.Reason == backend.ReasonStartError:
			starts = append(starts, a)
		case a.Reason == backend.ReasonDeadlineExceeded:
		default:
			if p, quote := matchLogs(append([]string{a.Message}, a.LogTail...)); p != nil {
				patterns[p] = append(patterns[p], a)
				quotes[p] = quote
			} else {
				crashes = append(crashes, a)
			}
		}
	}
	if len(ooms) > 0 {
		ev := attemptEvidence(ooms)
		if memLimit != "" {
			ev = append(ev, "spec.resources.memory: "+memLimit)
		}
		out = append(out, oomFinding(obj, "Job "+job.Name, memLimit, fmt.Sprintf("%d of %d attempts", len(ooms), len(job.Attempts)), ev))
	}
	if len(starts) > 0 {
		out = append(out, backend.Finding{
			RuleID: "container-start-error", Severity: backend.SeverityError, Object: obj, Permanent: true, Evidence: attemptEvidence(starts),
			Message: fmt.Sprintf("Job %s cannot start its command: %s.", job.Name, strings.TrimSuffix(starts[len(starts)-1].Message, ".")),
			Fix:     "Check spec.command and spec.workingDir: the program must exist on PATH (or be given by path) and be executable.",
		})
	}
	for _, p := range logPatterns {
		if as := patterns[p]; len(as) > 0 {
			last := as[len(as)-1]
			out = append(out, backend.Finding{
				RuleID: p.ID, Severity: backend.SeverityError, Object: obj, Permanent: p.Permanent,
				Evidence: append(quoteEvidence(attemptLabel(last), quotes[p]), attemptEvidence(as)...),
				Message:  p.message(attemptSubject(last, job.Name), quoteLine(quotes[p])),
				Fix:      p.Fix,
			})
		}
	}

	backoff := job.Spec.EffectiveBackoffLimit()
	if c := job.FinalCondition(); c != nil && c.Type == backend.ConditionFailed {
		f := backend.Finding{Severity: backend.SeverityError, Object: obj, Permanent: true,
			Evidence: append([]string{fmt.Sprintf("conditions[Failed]: True, reason %s, message %q", c.Reason, c.Message),
				fmt.Sprintf("failed %d, spec.backoffLimit %d", job.Failed, backoff)}, attemptEvidence(lastN(failed, 3))...)}
		switch c.Reason {
		case backend.ReasonBackoffLimitExceeded:
			f.RuleID = "job-backoff-limit-exceeded"
			last := ""
			if n := len(failed); n > 0 && failed[n-1].ExitCode != nil {
				code := *failed[n-1].ExitCode
				last = fmt.Sprintf(", the last with exit code %d (%s)", code, exitMeaning(code))
			}
			if n := len(failed); n > 0 {
				last += gangNote(failed[n-1])
			}
			f.Message = fmt.Sprintf("Job %s failed: %d attempts failed%s, more than backoffLimit %d allows.", job.Name, len(failed), last, backoff)
			f.Fix = fmt.Sprintf("Read why the attempts fail (petrel logs job/%s), fix it and run the job again.", job.Name)
		case backend.ReasonDeadlineExceeded:
			why := ""
			if n := len(failed) - countReason(failed, backend.ReasonDeadlineExceeded); n > 0 {
				why = fmt.Sprintf("%d of its attempts failed before it", n)
			}
			deadlineExceeded(&f, job.Name, job.Spec.ActiveDeadlineSeconds, "its attempt was", why)
		default:
			f.RuleID = "job-failed"
			f.Message = fmt.Sprintf("Job %s failed (%s): %s", job.Name, c.Reason, c.Message)
			f.Fix = "Read the failed attempts' exit codes and logs; a podFailurePolicy FailJob rule ends the job at the first matching exit code by design."
		}
		out = append(out, f)
	} else if len(crashes) > 0 {
		last := crashes[len(crashes)-1]
		code := int32(-1)
		if last.ExitCode != nil {
			code = *last.ExitCode
		}
		out = append(out, backend.Finding{
			RuleID: "crash-loop", Severity: backend.SeverityError, Object: obj,
			Evidence: append(attemptEvidence(lastN(crashes, 3)), logEvidence(attemptLabel(last), last.LogTail, 5)...),
			Message:  fmt.Sprintf("Job %s's attempts keep failing: %d of backoffLimit %d so far, the last with exit code %d (%s)%s.", job.Name, len(failed), backoff, code, exitMeaning(code), gangNote(last)),
			Fix:      fmt.Sprintf("Read why it exits (petrel logs job/%s --attempt %d) and fix that; retries will not help a deterministic error.", job.Name, last.Index),
		})
	}

	if w := job.Waiting; w != nil && w.Reason == backend.WaitingForGPUs && !job.Finished() {
		need, free := w.GPUsRequested, w.GPUsFree
		out = append(out, backend.Finding{
			RuleID: "gpu-busy", Severity: backend.SeverityWarning, Object: obj,
			Evidence: []string{"waiting: " + job.Waiting.Message},
			Message:  fmt.Sprintf("Job %s waits for %d GPUs and only %d are free right now: it starts when other jobs or services release theirs.", job.Name, need, free),
			Fix:      "Wait, stop another GPU workload (petrel get jobs -o wide and petrel get services show who holds them), or lower spec.resources.gpu.",
		})
	}
	sortFindings(out)
	return out
}

// gangNote names the worker whose failure failed a distributed attempt
// (the first to fail; the engine stopped the others because of it), or "".
func gangNote(a backend.Attempt) string {
	if a.FailedWorker == nil {
		return ""
	}
	w := a.Workers[*a.FailedWorker]
	at := ""
	if w.EndTime != nil {
		at = " at " + w.EndTime.Format("15:04:05")
	}
	return fmt.Sprintf(": worker %d of %d failed first%s and the others were stopped because of it", *a.FailedWorker, len(a.Workers), at)
}

// attemptLabel names where a failed attempt's last log lines come from:
// the attempt, or the worker of it that failed first.
func attemptLabel(a backend.Attempt) string {
	if a.FailedWorker != nil {
		return fmt.Sprintf("attempt %d worker %d", a.Index, *a.FailedWorker)
	}
	return fmt.Sprintf("attempt %d", a.Index)
}

// attemptSubject is the subject of a finding about one failed attempt:
// "Attempt 0 of job train", or for a gang "Worker 2 of attempt 0 of job
// train (the first to fail; the others were stopped because of it)".
func attemptSubject(a backend.Attempt, job string) string {
	if a.FailedWorker != nil {
		return fmt.Sprintf("Worker %d of attempt %d of job %s (the first of %d to fail; the others were stopped because of it)", *a.FailedWorker, a.Index, job, len(a.Workers))
	}
	return fmt.Sprintf("Attempt %d of job %s", a.Index, job)
}

func countReason(as []backend.Attempt, reason string) int {
	n := 0
	for _, a := range as {
		if a.Reason == reason {
			n++
		}
	}
	return n
}

func lastN(as []backend.Attempt, n int) []backend.Attempt {
	if len(as) > n {
		return as[len(as)-n:]
	}
	return as
}

func attemptEvidence(as []backend.Attempt) []string {
	var ev []string
	for _, a := range as {
		s := fmt.Sprintf("attempt %d (%s): phase %s", a.Index, a.Name, orNone(string(a.Phase)))
		if a.ExitCode != nil {
			s += fmt.Sprintf(", exit code %d", *a.ExitCode)
		}
		if a.Reason != "" {
			s += ", reason " + a.Reason
		}
		if a.Message != "" {
			s += fmt.Sprintf(", message %q", a.Message)
		}
		ev = append(ev, s)
	}
	return ev
}

// AnalyzeService explains what is wrong with a local inference service:
// replicas restarted after an OOM kill, a liveness/startup probe kill or a
// crash (Replica.LastReason), replicas kept out of rotation by a failing
// readiness probe, an autoscaling metric it cannot compute, replica counts
// that flap, and replicas that cannot be created.
func AnalyzeService(svc backend.Service) []backend.Finding {
	obj := "Service/" + svc.Name
	var out []backend.Finding
	byReason := map[string][]backend.Replica{}
	for _, r := range svc.Replicas {
		if r.Restarts > 0 && r.LastReason != "" && r.LastReason != backend.ReasonCompleted {
			byReason[r.LastReason] = append(byReason[r.LastReason], r)
		}
	}
	reasons := make([]string, 0, len(byReason))
	for r := range byReason {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	eventsMatching := func(words ...string) []string {
		var ev []string
		for _, e := range svc.Events {
			for _, w := range words {
				if strings.Contains(e.Message, w) || e.Reason == w {
					ev = append(ev, fmt.Sprintf("event %s %s: %q", e.Type, e.Reason, e.Message))
					break
				}
			}
		}
		return lastStrings(ev, 4)
	}
	for _, reason := range reasons {
		rs := byReason[reason]
		var names []string
		var restarts int32
		for _, r := range rs {
			names = append(names, r.Name)
			restarts += r.Restarts
		}
		ev := []string{fmt.Sprintf("replica %s: restarts %d, lastReason %s", strings.Join(names, ", "), restarts, reason)}
		who := fmt.Sprintf("replica %s of service %s", strings.Join(names, ", "), svc.Name)
		// A cause the server states in its last lines beats the way it
		// ended (a probe kill, an exit code): the probe only saw it not
		// come up. A host OOM kill is its own cause.
		if reason != backend.ReasonOOMKilled {
			if f := replicaLogFinding(svc, rs, ev); f != nil {
				out = append(out, *f)
				continue
			}
		}
		switch reason {
		case backend.ReasonOOMKilled:
			limit := ""
			if svc.Spec.Resources.Memory != nil {
				limit = svc.Spec.Resources.Memory.String()
				ev = append(ev, "spec.resources.memory: "+limit)
			}
			out = append(out, oomFinding(obj, "Replica "+strings.Join(names, ", ")+" of service "+svc.Name, limit, fmt.Sprintf("restarted %d times", restarts), ev))
		case "LivenessProbeFailed", "StartupProbeFailed":
			ev = append(ev, eventsMatching("Liveness probe failed", "Startup probe failed", "failed liveness probe", "failed startup probe")...)
			out = append(out, livenessFinding(obj, who, svc.Spec.StartupProbe != nil, strings.Contains(strings.Join(ev, " "), "connection refused"), "petrel logs service/"+svc.Name, ev))
		case backend.ReasonStartError:
			out = append(out, backend.Finding{RuleID: "container-start-error", Severity: backend.SeverityError, Object: obj, Permanent: true,
				Evidence: append(ev, eventsMatching("Failed")...),
				Message:  fmt.Sprintf("Service %s cannot start its command on %s.", svc.Name, who),
				Fix:      "Check spec.command and spec.workingDir: the program must exist on PATH (or be given by path) and be executable."})
		default:
			last := rs[len(rs)-1]
			ev = append(ev, eventsMatching("BackOff")...)
			out = append(out, backend.Finding{RuleID: "crash-loop", Severity: backend.SeverityError, Object: obj,
				Evidence: append(ev, logEvidence("replica "+last.Name, last.LogTail, 5)...),
				Message:  fmt.Sprintf("Service %s keeps crashing: %s exited with %s and was restarted %d times.", svc.Name, who, reason, restarts),
				Fix:      fmt.Sprintf("Read why it exits (petrel logs service/%s) and fix that; restarts will not help a deterministic error.", svc.Name)})
		}
	}
	if svc.ReadyReplicas < svc.DesiredReplicas && len(byReason) == 0 {
		if ev := eventsMatching("Readiness probe failed"); len(ev) > 0 {
			out = append(out, backend.Finding{RuleID: "readiness-probe-failing", Severity: backend.SeverityWarning, Object: obj, Evidence: ev,
				Message: fmt.Sprintf("Service %s has %d of %d replicas ready: the readiness probe fails on the others, so they get no traffic.", svc.Name, svc.ReadyReplicas, svc.DesiredReplicas),
				Fix:     "If the server is still loading its model this passes; otherwise check that the probe's path and port match what the server serves once ready."})
		}
	}
	if ev := eventsMatching("FailedGetResourceMetric"); len(ev) > 0 {
		out = append(out, backend.Finding{RuleID: "hpa-metrics-unavailable", Severity: backend.SeverityError, Object: obj, Evidence: append(ev, "metric: "+svc.Metric),
			Message: fmt.Sprintf("Service %s cannot compute its autoscaling metric, so it does not scale.", svc.Name),
			Fix:     "Set spec.resources.cpu (CPU utilization is measured against it) or switch the autoscaling target to concurrency."})
	}
	var sizes []int
	var rescale []string
	for _, e := range svc.Events {
		if e.Reason == "SuccessfulRescale" {
			if m := reNewSize.FindStringSubmatch(e.Message); m != nil {
				n, _ := strconv.Atoi(m[1])
				sizes = append(sizes, n)
				rescale = append(rescale, fmt.Sprintf("event %s %s: %q", e.Type, e.Reason, e.Message))
			}
		}
	}
	window := "spec.autoscaling.behavior.scaleUp.stabilizationWindowSeconds: not set"
	if a := svc.Spec.Autoscaling; a != nil && a.Behavior != nil && a.Behavior.ScaleUp != nil && a.Behavior.ScaleUp.StabilizationWindowSeconds != nil {
		window = fmt.Sprintf("spec.autoscaling.behavior.scaleUp.stabilizationWindowSeconds: %d", *a.Behavior.ScaleUp.StabilizationWindowSeconds)
	}
	if f := flappingFinding("Service "+svc.Name, obj, sizes, lastStrings(rescale, 6), window); f != nil {
		out = append(out, *f)
	}
	if ev := eventsMatching("FailedCreate"); len(ev) > 0 && svc.ReadyReplicas < svc.DesiredReplicas {
		out = append(out, backend.Finding{RuleID: "pod-create-failed", Severity: backend.SeverityError, Object: obj, Evidence: ev,
			Message: fmt.Sprintf("Service %s cannot create its replicas.", svc.Name),
			Fix:     "Fix what the event names (a port in use, a missing volume, no GPU free)."})
	}
	sortFindings(out)
	return out
}

// replicaLogFinding returns the log-signature finding for replicas whose
// last lines (Replica.LogTail, kept at their last exit) carry a known
// cause, quoting those lines, or nil.
func replicaLogFinding(svc backend.Service, rs []backend.Replica, ev []string) *backend.Finding {
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		p, quote := matchLogs(r.LogTail)
		if p == nil {
			continue
		}
		ev = append(quoteEvidence("replica "+r.Name, quote), ev...)
		quoted := map[string]bool{}
		for _, q := range quote {
			quoted[q] = true
		}
		var context []string
		for _, l := range lastStrings(r.LogTail, 4) {
			if !quoted[strings.TrimSpace(l)] {
				context = append(context, l)
			}
		}
		ev = append(ev, logEvidence("replica "+r.Name, context, 4)...)
		return &backend.Finding{
			RuleID: p.ID, Severity: backend.SeverityError, Object: "Service/" + svc.Name, Permanent: p.Permanent, Evidence: ev,
			Message: p.message(fmt.Sprintf("Replica %s of service %s", r.Name, svc.Name), quoteLine(quote)),
			Fix:     p.Fix + fmt.Sprintf(" (petrel logs service/%s --replica %d shows the whole log.)", svc.Name, r.Index),
		}
	}
	return nil
}

func lastStrings(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
