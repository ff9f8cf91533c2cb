package rules

import (
	batchv1 "k8s.io/api/batch/v1"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/lint"
)

// petrelResources returns a TrainingJob's or InferenceService's resources
// and their path.
func petrelResources(o *lint.Object) (v1alpha1.Resources, lint.Path) {
	switch t := o.Typed.(type) {
	case *v1alpha1.TrainingJob:
		return t.Spec.Resources, lint.Path{"spec", "resources"}
	case *v1alpha1.InferenceService:
		return t.Spec.Resources, lint.Path{"spec", "resources"}
	}
	return v1alpha1.Resources{}, lint.Path{"spec"}
}

// petrelJob returns the TrainingJob behind o.
func petrelJob(o *lint.Object) *v1alpha1.TrainingJob { return o.Typed.(*v1alpha1.TrainingJob) }

// petrelSvc returns the InferenceService behind o.
func petrelSvc(o *lint.Object) *v1alpha1.InferenceService {
	return o.Typed.(*v1alpha1.InferenceService)
}

// cronJob returns the CronJob behind a workload.
func cronJob(w *lint.Workload) (*batchv1.CronJob, bool) {
	cj, ok := w.Typed.(*batchv1.CronJob)
	return cj, ok
}

// petrelVolume returns the Volume behind o.
func petrelVolume(o *lint.Object) *v1alpha1.Volume { return o.Typed.(*v1alpha1.Volume) }
