package diagnose

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	register(Analyzer{
		Name:        "deployments",
		Description: "Reads a Deployment's conditions: a rollout that passed progressDeadlineSeconds without progress, and ReplicaFailure (the ReplicaSet cannot create pods).",
		Rules: []Rule{
			{"rollout-stuck", "The Deployment's rollout made no progress within progressDeadlineSeconds."},
			{"replica-failure", "The Deployment's ReplicaSet cannot create pods (ReplicaFailure)."},
		},
		Run: runDeployments,
	})
}

// startupBudget is the longest time in seconds a container of spec may
// take to start before the kubelet gives up on it: its startupProbe's
// initialDelaySeconds + failureThreshold × periodSeconds (defaults 3 and
// 10, as core/v1 defaults them); 0 without a startupProbe.
func startupBudget(spec *corev1.PodSpec) int32 {
	var most int32
	for _, ct := range spec.Containers {
		p := ct.StartupProbe
		if p == nil {
			continue
		}
		period, failures := p.PeriodSeconds, p.FailureThreshold
		if period == 0 {
			period = 10
		}
		if failures == 0 {
			failures = 3
		}
		most = max(most, p.InitialDelaySeconds+failures*period)
	}
	return most
}

// deploymentPodsBroken reports whether a pod of the Deployment named name
// crashed by itself (not a probe kill, which a slow load explains) or
// cannot be scheduled.
func deploymentPodsBroken(c *Context, name string) bool {
	ours := func(p *corev1.Pod) bool {
		for _, o := range p.OwnerReferences {
			if o.Kind == "ReplicaSet" && strings.HasPrefix(o.Name, name+"-") {
				return true
			}
		}
		return false
	}
	for _, k := range c.crashes() {
		if ours(k.Pod) && k.Cause != causeLiveness {
			return true
		}
	}
	for _, p := range c.Pods() {
		if !ours(p) || !pendingUnscheduled(p) {
			continue
		}
		if f := filterNodes(c, p, c.State.Nodes); f.noAffinity || len(f.taints)+len(f.insufficient) > 0 {
			return true
		}
	}
	return false
}

func runDeployments(c *Context) []backend.Finding {
	var out []backend.Finding
	for _, d := range c.Deployments() {
		obj := "Deployment/" + d.Name
		for _, cond := range d.Status.Conditions {
			q := fmt.Sprintf("status.conditions[%s]: %s, reason %s, message %q", cond.Type, cond.Status, cond.Reason, cond.Message)
			switch {
			case cond.Type == appsv1.DeploymentProgressing && cond.Status == corev1.ConditionFalse && cond.Reason == "ProgressDeadlineExceeded":
				fix := "See the findings about its pods for why they are not Ready; roll back with kubectl rollout undo if the new version is broken, or raise progressDeadlineSeconds for slow model loads."
				msg := fmt.Sprintf("Deployment %s's rollout is stuck: its new pods did not become available within progressDeadlineSeconds.", d.Name)
				deadline := int32(600)
				if d.Spec.ProgressDeadlineSeconds != nil {
					deadline = *d.Spec.ProgressDeadlineSeconds
				}
				budget := startupBudget(&d.Spec.Template.Spec)
				switch {
				case deploymentPodsBroken(c, d.Name):
					// A slow load is not what stops it: a longer deadline
					// would only wait longer for pods that will not come up.
					fix = "Fix what the findings about its pods name, or roll back with kubectl rollout undo; a longer progressDeadlineSeconds would not help."
				case budget > deadline:
					// The Deployment controller gives up before the
					// kubelet does: a healthy slow start exceeds it.
					msg = fmt.Sprintf("Deployment %s's rollout passed its progress deadline while its pods were still starting: its startupProbe allows %ds for a start, more than progressDeadlineSeconds %d.", d.Name, budget, deadline)
					fix = fmt.Sprintf("Raise spec.progressDeadlineSeconds above the startupProbe's budget (at least %d); the pods are not failing, only slow to start.", budget+60)
				}
				out = append(out, backend.Finding{
					RuleID: "rollout-stuck", Severity: backend.SeverityError, Object: obj,
					Evidence: []string{q, fmt.Sprintf("status: replicas %d, updatedReplicas %d, readyReplicas %d, unavailableReplicas %d", d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.UnavailableReplicas)},
					Message:  msg,
					Fix:      fix,
				})
			case cond.Type == appsv1.DeploymentReplicaFailure && cond.Status == corev1.ConditionTrue:
				out = append(out, backend.Finding{
					RuleID: "replica-failure", Severity: backend.SeverityError, Object: obj, Evidence: []string{q},
					Message: fmt.Sprintf("Deployment %s cannot create its pods: %s", d.Name, cond.Message),
					Fix:     "Fix what the message names (quota, admission policy, service account).",
				})
			}
		}
	}
	return out
}
