package diagnose

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	register(Analyzer{
		Name: "volumes",
		Description: "Explains Pending PersistentVolumeClaims (no storage class, unknown class, provisioning " +
			"errors, access modes no volume offers, waiting for the first consumer) and pods that cannot " +
			"mount a ReadWriteOnce volume another node holds (Multi-Attach).",
		Rules: []Rule{
			{"pvc-unbound", "A claim the workload mounts is not bound, so its pods cannot start."},
			{"pvc-wait-for-first-consumer", "A claim waits for its first pod to be scheduled (WaitForFirstConsumer); not the cause by itself."},
			{"volume-multi-attach", "A ReadWriteOnce volume is attached to another node for another pod."},
			{"volume-mount-failed", "The kubelet cannot mount a volume of the pod."},
		},
		Run: runVolumes,
	})
}

func runVolumes(c *Context) []backend.Finding {
	var out []backend.Finding
	for _, pvc := range c.Claims() {
		if pvc.Status.Phase == corev1.ClaimBound {
			continue
		}
		if f := claimFinding(c, pvc); f != nil {
			out = append(out, *f)
		}
	}
	out = append(out, mountFindings(c)...)
	return out
}

func claimFinding(c *Context, pvc *corev1.PersistentVolumeClaim) *backend.Finding {
	obj := "PersistentVolumeClaim/" + pvc.Name
	ev := []string{fmt.Sprintf("claim %s: status.phase %s, accessModes %v, storageClassName %s", pvc.Name, orNone(string(pvc.Status.Phase)), pvc.Spec.AccessModes, classOf(pvc))}
	var lastMsg, lastReason string
	for _, e := range c.Events("PersistentVolumeClaim", pvc.Namespace, pvc.Name) {
		ev = append(ev, eventEvidence(e))
		lastMsg, lastReason = e.Message, e.Reason
	}
	f := &backend.Finding{RuleID: "pvc-unbound", Severity: backend.SeverityError, Object: obj, Evidence: ev}
	class := pvc.Spec.StorageClassName
	var sc *string
	if class == nil {
		for i := range c.State.StorageClasses {
			if c.State.StorageClasses[i].Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
				n := c.State.StorageClasses[i].Name
				sc = &n
			}
		}
	} else {
		sc = class
	}
	known := func(name string) bool {
		for i := range c.State.StorageClasses {
			if c.State.StorageClasses[i].Name == name {
				return true
			}
		}
		return false
	}
	wffc := lastReason == "WaitForFirstConsumer"
	for i := range c.State.StorageClasses {
		s := &c.State.StorageClasses[i]
		if sc != nil && s.Name == *sc && s.VolumeBindingMode != nil && *s.VolumeBindingMode == "WaitForFirstConsumer" {
			wffc = true
		}
	}
	switch {
	case strings.Contains(lastMsg, "access mode") || strings.Contains(lastMsg, "AccessMode") || strings.Contains(lastMsg, "access modes"):
		f.Permanent = true
		f.Message = fmt.Sprintf("Claim %s cannot be bound: no volume or provisioner offers access modes %v.", pvc.Name, pvc.Spec.AccessModes)
		f.Fix = "Use an access mode the storage class supports (block storage is usually ReadWriteOnce only; ReadWriteMany needs NFS/CephFS-like storage), or pick another class."
	case (class != nil && *class == "") || (class == nil && len(c.State.StorageClasses) > 0 && sc == nil) ||
		strings.Contains(lastMsg, "no storage class is set"):
		f.Permanent = true
		f.Message = fmt.Sprintf("Claim %s is Pending: it names no storage class and no PersistentVolume matches it, so nothing will ever provision one.", pvc.Name)
		f.Fix = "Set spec.storageClassName to a class that exists (kubectl get storageclass), mark one class default, or create a matching PersistentVolume."
	case sc != nil && len(c.State.StorageClasses) > 0 && !known(*sc) ||
		strings.Contains(lastMsg, "storageclass") && strings.Contains(lastMsg, "not found"):
		f.Permanent = true
		f.Message = fmt.Sprintf("Claim %s is Pending: its storage class %s does not exist.", pvc.Name, classOf(pvc))
		f.Fix = "Set spec.storageClassName to an existing class (kubectl get storageclass) or create that class."
	case lastReason == "ProvisioningFailed":
		f.Message = fmt.Sprintf("Claim %s is Pending: the provisioner fails to create its volume: %s", pvc.Name, lastMsg)
		f.Fix = "Fix the provisioner error above (quota on the storage backend, bad parameters, zone) or use another storage class."
	case wffc:
		f.RuleID, f.Severity = "pvc-wait-for-first-consumer", backend.SeverityInfo
		f.Message = fmt.Sprintf("Claim %s waits for the first pod that uses it to be scheduled (volumeBindingMode WaitForFirstConsumer): if that pod is Pending, the cause is elsewhere.", pvc.Name)
		f.Fix = "Look at why the consuming pod is not scheduled; the claim binds once it is."
	default:
		f.Severity = backend.SeverityWarning
		f.Message = fmt.Sprintf("Claim %s is not bound yet, so the pods that mount it cannot start.", pvc.Name)
		f.Fix = "Check the provisioner's logs and the claim's events (kubectl describe pvc)."
	}
	return f
}

func classOf(pvc *corev1.PersistentVolumeClaim) string {
	if pvc.Spec.StorageClassName == nil {
		return "(unset: the default class)"
	}
	if *pvc.Spec.StorageClassName == "" {
		return `"" (none)`
	}
	return *pvc.Spec.StorageClassName
}

var reMultiAttach = regexp.MustCompile(`Multi-Attach error for volume "([^"]+)".*used by pod\(s\) ([^ ]+(?:, ?[^ ]+)*)`)

func mountFindings(c *Context) []backend.Finding {
	var out []backend.Finding
	for _, p := range c.Pods() {
		var attach []*corev1.Event
		var mount []*corev1.Event
		for _, e := range c.Events("Pod", p.Namespace, p.Name) {
			switch e.Reason {
			case "FailedAttachVolume":
				attach = append(attach, e)
			case "FailedMount":
				mount = append(mount, e)
			}
		}
		if len(attach)+len(mount) == 0 || p.Status.Phase == corev1.PodRunning && podReady(p) {
			continue
		}
		var ev []string
		for _, e := range append(attach, mount...) {
			ev = append(ev, eventEvidence(e))
		}
		multi := false
		for _, e := range attach {
			m := reMultiAttach.FindStringSubmatch(e.Message)
			if m == nil {
				continue
			}
			multi = true
			holders := strings.Split(strings.ReplaceAll(m[2], " ", ""), ",")
			f := backend.Finding{RuleID: "volume-multi-attach", Severity: backend.SeverityError, Object: podObject(p), Evidence: ev}
			claim := ""
			for _, h := range holders {
				for i := range c.State.Pods {
					hp := &c.State.Pods[i]
					if hp.Name != h {
						continue
					}
					f.Evidence = append(f.Evidence, fmt.Sprintf("pod %s holds it on node %s (status.phase %s)", hp.Name, orNone(hp.Spec.NodeName), hp.Status.Phase))
					if hp.Status.Phase == corev1.PodRunning {
						f.Permanent = true
					}
					claim = sharedClaim(p, hp)
				}
			}
			vol := m[1]
			if claim != "" {
				vol += " of claim " + claim
			}
			f.Message = fmt.Sprintf("Pod %s cannot mount volume %s: it is ReadWriteOnce and still attached to another node for pod %s.", p.Name, vol, strings.Join(holders, ", "))
			f.Fix = "Delete the pod that still holds the volume once it is done (e.g. the copy pod that uploaded the model), use ReadOnlyMany/ReadWriteMany storage for data several pods read, or schedule the pods on the same node."
			out = append(out, f)
		}
		if !multi && len(mount) > 0 {
			out = append(out, backend.Finding{RuleID: "volume-mount-failed", Severity: backend.SeverityError, Object: podObject(p), Evidence: ev,
				Message: fmt.Sprintf("Pod %s cannot start: the kubelet fails to mount its volumes.", p.Name),
				Fix:     "Create the missing Secret, ConfigMap or claim named in the event, or fix the volume's source."})
		}
	}
	return out
}

// sharedClaim returns a claim both pods mount, or "".
func sharedClaim(a, b *corev1.Pod) string {
	for _, va := range a.Spec.Volumes {
		if va.PersistentVolumeClaim == nil {
			continue
		}
		for _, vb := range b.Spec.Volumes {
			if vb.PersistentVolumeClaim != nil && vb.PersistentVolumeClaim.ClaimName == va.PersistentVolumeClaim.ClaimName {
				return va.PersistentVolumeClaim.ClaimName
			}
		}
	}
	return ""
}
