package diagnose

import (
	"fmt"
	"strings"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	register(Analyzer{
		Name: "image",
		Description: "Explains ErrImagePull / ImagePullBackOff / InvalidImageName from the pull error the kubelet " +
			"reports: the image or tag does not exist, the registry refused the credentials, or the registry " +
			"cannot be reached (only the last one can pass by itself).",
		Rules: []Rule{
			{"image-not-found", "The image or tag does not exist in the registry."},
			{"image-pull-unauthorized", "The registry refused to serve the image without valid credentials."},
			{"registry-unreachable", "The node cannot reach the registry (DNS, network, TLS, timeout)."},
			{"image-pull-rate-limited", "The registry throttles pulls (HTTP 429 toomanyrequests)."},
			{"image-invalid-name", "The image reference cannot be parsed."},
			{"image-pull-failed", "The image cannot be pulled for another reason, quoted from the kubelet."},
		},
		Run: runImage,
	})
}

// pullClasses classifies a pull error message; first match wins, so the
// not-found wording that Docker Hub mixes with auth hints comes first.
var pullClasses = []struct {
	id        string
	words     []string
	permanent bool
	what, fix string
}{
	{"image-pull-rate-limited", []string{"toomanyrequests", "429 Too Many Requests", "rate limit"}, false,
		"the registry is rate-limiting pulls", "Wait, authenticate to the registry (higher limits), or mirror the image to a registry you control."},
	{"image-not-found", []string{"not found", "manifest unknown", "repository does not exist", "name unknown", "NotFound"}, true,
		"the image or tag does not exist", "Correct the image name and tag (check them with `docker manifest inspect IMAGE`), or push the image first."},
	{"image-pull-unauthorized", []string{"unauthorized", "authentication required", "401", "403", "denied", "no basic auth credentials", "authorization failed"}, true,
		"the registry refused the credentials", "Create a docker-registry Secret with credentials that can read the image and list it in the pod's spec.imagePullSecrets (or the ServiceAccount's)."},
	{"registry-unreachable", []string{"dial tcp", "i/o timeout", "no such host", "connection refused", "TLS handshake", "context deadline exceeded", "x509", "server misbehaving", "network is unreachable", "connection reset"}, false,
		"the node cannot reach the registry", "Check the registry host name, the nodes' DNS, proxy and firewall rules, and its TLS certificate; the kubelet keeps retrying, so a passing outage clears by itself."},
}

func runImage(c *Context) []backend.Finding {
	var out []backend.Finding
	c.eachContainer(func(r containerRef) {
		w := r.Status.State.Waiting
		if w == nil || (w.Reason != "ErrImagePull" && w.Reason != "ImagePullBackOff" && w.Reason != "InvalidImageName" && w.Reason != "ErrImageNeverPull") {
			return
		}
		image := r.Status.Image
		if r.Spec != nil {
			image = r.Spec.Image
		}
		ev := []string{fmt.Sprintf("%s.state.waiting: reason %s, message %q", r.path(), w.Reason, w.Message)}
		msg := w.Message
		for _, e := range c.Events("Pod", r.Pod.Namespace, r.Pod.Name) {
			if e.Reason == "Failed" && strings.Contains(e.Message, image) || strings.Contains(e.Message, "rpc error") && strings.Contains(e.Message, "pull") {
				ev = append(ev, eventEvidence(e))
				msg += " " + e.Message
			}
		}
		obj := podObject(r.Pod)
		if w.Reason == "InvalidImageName" {
			out = append(out, backend.Finding{RuleID: "image-invalid-name", Severity: backend.SeverityError, Object: obj, Permanent: true, Evidence: ev,
				Message: fmt.Sprintf("Container %s of pod %s has an image reference that cannot be parsed: %q.", r.Status.Name, r.Pod.Name, image),
				Fix:     "Write the image as [REGISTRY/]REPOSITORY[:TAG|@DIGEST] in lower case."})
			return
		}
		if w.Reason == "ErrImageNeverPull" {
			out = append(out, backend.Finding{RuleID: "image-not-found", Severity: backend.SeverityError, Object: obj, Permanent: true, Evidence: ev,
				Message: fmt.Sprintf("Container %s of pod %s has imagePullPolicy Never but image %s is not on node %s.", r.Status.Name, r.Pod.Name, image, r.Pod.Spec.NodeName),
				Fix:     "Load the image onto the node, or set imagePullPolicy: IfNotPresent."})
			return
		}
		for _, cl := range pullClasses {
			for _, word := range cl.words {
				if strings.Contains(msg, word) {
					out = append(out, backend.Finding{RuleID: cl.id, Severity: backend.SeverityError, Object: obj, Permanent: cl.permanent, Evidence: ev,
						Message: fmt.Sprintf("Container %s of pod %s cannot start: image %s cannot be pulled because %s.", r.Status.Name, r.Pod.Name, image, cl.what),
						Fix:     cl.fix})
					return
				}
			}
		}
		out = append(out, backend.Finding{RuleID: "image-pull-failed", Severity: backend.SeverityError, Object: obj, Evidence: ev,
			Message: fmt.Sprintf("Container %s of pod %s cannot start: image %s cannot be pulled.", r.Status.Name, r.Pod.Name, image),
			Fix:     "Read the pull error above (kubectl describe pod shows it in full) and correct the image, its credentials or the node's network."})
	})
	return out
}
