package rules

import (
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-DST-003",
		Severity: backend.SeverityWarning,
		Summary:  "multi-pod Job whose workers rendezvous, without fail-fast (no podFailurePolicy FailJob rule, backoffLimit above 0)",
		Why: "When one worker of a gang fails, the Job controller re-creates only that pod (pkg/controller/job manageJob), " +
			"while the others wait in the collective until the NCCL or rendezvous timeout (10–30 minutes) — for every " +
			"retry of the backoffLimit. The replacement joins a rendezvous the others have left, so the run rarely " +
			"recovers: the GPU hours go to waiting. The operators' issue trackers (Kubeflow Trainer, JobSet) list it " +
			"among the most painful failures of distributed training.",
		Fix: "add podFailurePolicy: {rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget}]}, " +
			"{action: FailJob, onExitCodes: {operator: NotIn, values: [0]}}]} so the first failed worker ends the Job " +
			"(the controller deletes the others at once) and preemptions do not count; or backoffLimit: 0; or a JobSet, " +
			"whose failurePolicy restarts the whole gang",
		Kinds: []string{"Job"},
		Check: func(p *lint.Pass) {
			for _, w := range p.Set.Workloads {
				if w.Kind != "Job" || w.Job == nil || w.Pods < 2 || failsFast(w.Job) || !rendezvous(w.PodSpec) {
					continue
				}
				limit := int32(6)
				if w.Job.BackoffLimit != nil {
					limit = *w.Job.BackoffLimit
				}
				p.Report(w.Object, w.JobPath, "",
					"%d workers rendezvous, but a failed worker is re-created alone (backoffLimit %d, no podFailurePolicy FailJob rule for non-zero exits): the others wait in the collective until its timeout, up to %d times",
					w.Pods, limit, limit)
			}
		},
	})
}

// failsFast reports whether the first failed pod of j fails the whole Job:
// backoffLimit 0, or a podFailurePolicy FailJob rule matching every
// non-zero exit code (operator NotIn without non-zero values).
func failsFast(j *batchv1.JobSpec) bool {
	if j.BackoffLimit != nil && *j.BackoffLimit == 0 {
		return true
	}
	if j.PodFailurePolicy == nil {
		return false
	}
	for _, r := range j.PodFailurePolicy.Rules {
		if r.Action != batchv1.PodFailurePolicyActionFailJob || r.OnExitCodes == nil || r.OnExitCodes.Operator != batchv1.PodFailurePolicyOnExitCodesOpNotIn {
			continue
		}
		all := true
		for _, v := range r.OnExitCodes.Values {
			if v != 0 {
				all = false
			}
		}
		if all {
			return true
		}
	}
	return false
}

// rendezvous reports whether a pod's containers join a collective: they
// are told where worker 0 is (MASTER_ADDR, torchrun's PET_* variables) or
// start torchrun / torch.distributed.run.
func rendezvous(ps *corev1.PodSpec) bool {
	for _, c := range ps.Containers {
		for _, e := range c.Env {
			if isRendezvousVar(e.Name) || e.Name == "PET_NNODES" {
				return true
			}
		}
		cmd := cmdline(c.Command, c.Args)
		if strings.Contains(cmd, "torchrun") || strings.Contains(cmd, "torch.distributed.run") || strings.Contains(cmd, "torch.distributed.launch") {
			return true
		}
	}
	return false
}
