package rules

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-STO-001",
		Severity: backend.SeverityWarning,
		Summary:  "ReadWriteOnce claim (or petrel Volume) used by several long-running workloads, or by one with more than one pod",
		Why: "A ReadWriteOnce volume attaches to one node at a time. A second pod on another node (another replica, a Job " +
			"with parallelism > 1, the helper pod that copied the model in) hangs in ContainerCreating/Init with " +
			"\"Multi-Attach error ... Volume is already used by pod(s)\". ReadWriteOncePod allows a single pod, on any node.",
		Fix:   "use ReadOnlyMany or ReadWriteMany storage for models and datasets read by several pods, delete helper pods once done, or keep to one pod",
		Kinds: append(podKinds, "PersistentVolumeClaim", "Volume", "TrainingJob", "InferenceService"),
		Check: func(p *lint.Pass) {
			seen := map[string]bool{} // a claim declared twice (in two files) is checked once
			once := func(o *lint.Object) bool {
				key := o.Kind + "/" + o.Namespace + "/" + o.Name
				first := !seen[key]
				seen[key] = true
				return first
			}
			for _, claim := range p.Set.Claims {
				if !once(claim) {
					continue
				}
				pvc := claim.Typed.(*corev1.PersistentVolumeClaim)
				var users []mounter
				for _, w := range p.Set.Workloads {
					for i, v := range w.PodSpec.Volumes {
						if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim.Name && lint.SameNamespace(w.Object, claim) {
							users = append(users, mounter{w.Object, w.SpecPath.Key("volumes", i), w.Pods, w.Batch})
						}
					}
				}
				checkShared(p, claim, accessModes(pvc.Spec.AccessModes), users)
			}
			for _, vo := range p.Set.Volumes {
				if !once(vo) {
					continue
				}
				modes := []string{"ReadWriteOnce"}
				if v := petrelVolume(vo); len(v.Spec.AccessModes) > 0 {
					modes = v.Spec.AccessModes
				}
				var users []mounter
				for _, o := range p.Set.TrainingJobs {
					for i, m := range petrelJob(o).Spec.Volumes {
						if m.Name == vo.Name && lint.SameNamespace(o, vo) {
							users = append(users, mounter{o, lint.Path{"spec", "volumes", i}, 1, true})
						}
					}
				}
				for _, o := range p.Set.InferenceServices {
					s := petrelSvc(o).Spec
					pods := int32(1)
					if s.Replicas != nil {
						pods = *s.Replicas
					}
					if s.Autoscaling != nil {
						pods = max(s.Autoscaling.MaxReplicas, pods)
					}
					for i, m := range s.Volumes {
						if m.Name == vo.Name && lint.SameNamespace(o, vo) {
							users = append(users, mounter{o, lint.Path{"spec", "volumes", i}, pods, false})
						}
					}
				}
				checkShared(p, vo, modes, users)
			}
		},
	})
}

// mounter is one workload using a claim.
type mounter struct {
	o     *lint.Object
	path  lint.Path
	pods  int32
	batch bool
}

func accessModes(modes []corev1.PersistentVolumeAccessMode) []string {
	out := make([]string, len(modes))
	for i, m := range modes {
		out[i] = string(m)
	}
	if len(out) == 0 {
		out = []string{string(corev1.ReadWriteOnce)} // the usual StorageClass default
	}
	return out
}

// checkShared reports users of a single-node claim that need it on more
// than one node (or, for ReadWriteOncePod, in more than one pod).
func checkShared(p *lint.Pass, claim *lint.Object, modes []string, users []mounter) {
	if slices.Contains(modes, "ReadWriteMany") || slices.Contains(modes, "ReadOnlyMany") {
		return
	}
	oncePod := slices.Contains(modes, "ReadWriteOncePod")
	if !oncePod && !slices.Contains(modes, "ReadWriteOnce") {
		return
	}
	mode, sev := "ReadWriteOnce", p.Rule().Severity
	if oncePod {
		mode, sev = "ReadWriteOncePod", backend.SeverityError
	}
	fix := fmt.Sprintf("give %s %s accessModes [ReadWriteMany] (or ReadOnlyMany for read-only models and data), or run a single pod", claim.Kind, claim.Name)
	var first *mounter
	for i := range users {
		u := &users[i]
		switch {
		case u.pods == lint.PodsPerNode:
			p.ReportSeverity(sev, u.o, u.path, fix,
				"%s %s is %s but this DaemonSet mounts it on every node; all pods but one hang with a Multi-Attach error", claim.Kind, claim.Name, mode)
		case u.pods > 1:
			p.ReportSeverity(sev, u.o, u.path, fix,
				"%s %s is %s but this %s runs %d pods that mount it; pods on other nodes hang with a Multi-Attach error", claim.Kind, claim.Name, mode, u.o.Kind, u.pods)
		}
		if u.batch && !oncePod {
			continue // a Job's pod ends; it shares the claim only with itself
		}
		if first == nil {
			first = u
			continue
		}
		l, _, _ := first.o.Pos(first.path)
		p.ReportSeverity(sev, u.o, u.path, fix,
			"%s %s is %s and is also mounted by %s (%s:%d); whichever pod lands on a second node hangs with a Multi-Attach error",
			claim.Kind, claim.Name, mode, first.o.Ref(), first.o.File, l)
	}
}
