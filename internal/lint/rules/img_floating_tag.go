package rules

import (
	"strings"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-IMG-001",
		Severity: backend.SeverityWarning,
		Summary:  "image with the :latest tag or no tag",
		Why: "A floating tag means the code that runs changes under you: a retried attempt or a new replica may pull a " +
			"different image than the one that trained or served before, so results cannot be reproduced or rolled " +
			"back. :latest (or no tag) also makes imagePullPolicy default to Always.",
		Fix:   "pin the image to a version tag or a digest (image:1.4.2 or image@sha256:…)",
		Kinds: append(podKinds, "TrainingJob", "InferenceService"),
		Check: func(p *lint.Pass) {
			for _, c := range containers(p.Set, true) {
				if msg := floatingTag(c.c.Image); msg != "" {
					p.Report(c.w.Object, c.path.Key("image"), "", "container %q %s", c.c.Name, msg)
				}
			}
			for _, o := range p.Set.TrainingJobs {
				if msg := floatingTag(petrelJob(o).Spec.Image); msg != "" {
					p.Report(o, lint.Path{"spec", "image"}, "", "%s", msg)
				}
			}
			for _, o := range p.Set.InferenceServices {
				if msg := floatingTag(petrelSvc(o).Spec.Image); msg != "" {
					p.Report(o, lint.Path{"spec", "image"}, "", "%s", msg)
				}
			}
		},
	})
}

// floatingTag describes what is wrong with an image reference's tag, or
// returns "" for a pinned (or empty) one.
func floatingTag(image string) string {
	if image == "" || strings.Contains(image, "@") {
		return ""
	}
	last := image
	if i := strings.LastIndex(image, "/"); i >= 0 {
		last = image[i+1:]
	}
	_, tag, ok := strings.Cut(last, ":")
	switch {
	case !ok:
		return "uses image " + image + " without a tag, which means :latest"
	case tag == "latest":
		return "uses image " + image + " with the floating :latest tag"
	}
	return ""
}
