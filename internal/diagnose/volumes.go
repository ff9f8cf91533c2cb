package diagnose

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

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
	var cls *storagev1.StorageClass
	for i := range c.State.StorageClasses {
		if sc != nil && c.State.StorageClasses[i].Name == *sc {
			cls = &c.State.StorageClasses[i]
		}
	}
	blockRWX := cls != nil && blockProvisioner(cls.Provisioner) && sharedAccess(pvc.Spec.AccessModes)
	if blockRWX {
		f.Evidence = append(f.Evidence, fmt.Sprintf("StorageClass %s: provisioner %s provisions block volumes, which attach to one node (ReadWriteOnce)", cls.Name, cls.Provisioner))
	}
	switch {
	case blockRWX || strings.Contains(lastMsg, "access mode") || strings.Contains(lastMsg, "AccessMode") || strings.Contains(lastMsg, "access modes"):
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

// blockProvisioners are the provisioners of cloud and local block storage:
// their volumes attach to one node, so they offer ReadWriteOnce (and
// ReadWriteOncePod) only, as their drivers document.
var blockProvisioners = map[string]bool{
	"ebs.csi.aws.com": true, "kubernetes.io/aws-ebs": true,
	"pd.csi.storage.gke.io": true, "kubernetes.io/gce-pd": true,
	"disk.csi.azure.com": true, "kubernetes.io/azure-disk": true,
	"rancher.io/local-path":    true,
	"cinder.csi.openstack.org": true, "kubernetes.io/cinder": true,
	"dobs.csi.digitalocean.com": true,
}

func blockProvisioner(name string) bool { return blockProvisioners[name] }

// sharedAccess reports whether modes ask for more than one node.
func sharedAccess(modes []corev1.PersistentVolumeAccessMode) bool {
	for _, m := range modes {
		if m == corev1.ReadWriteMany || m == corev1.ReadOnlyMany {
			return true
		}
	}
	return false
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
		if p.Status.Phase == corev1.PodRunning && podReady(p) {
			continue
		}
		// From the objects: a ReadWriteOnce claim this pod mounts that a
		// running pod on another node mounts too. The attach/detach
		// controller will not attach it here while that pod holds it.
		claim, vol, held := rwoHeldElsewhere(c, p)
		if len(attach)+len(mount) == 0 && len(held) == 0 {
			continue
		}
		var ev []string
		for _, e := range append(attach, mount...) {
			ev = append(ev, eventEvidence(e))
		}
		var holders []string
		for _, e := range attach {
			if m := reMultiAttach.FindStringSubmatch(e.Message); m != nil {
				vol = m[1]
				holders = strings.Split(strings.ReplaceAll(m[2], " ", ""), ",")
			}
		}
		if holders == nil {
			for _, hp := range held {
				holders = append(holders, hp.Name)
			}
		}
		if len(holders) > 0 {
			f := backend.Finding{RuleID: "volume-multi-attach", Severity: backend.SeverityError, Object: podObject(p), Evidence: ev}
			for _, h := range holders {
				for i := range c.State.Pods {
					hp := &c.State.Pods[i]
					if hp.Name != h || !sameNamespace(hp.Namespace, p.Namespace) {
						continue
					}
					f.Evidence = append(f.Evidence, fmt.Sprintf("pod %s holds it on node %s (status.phase %s)", hp.Name, orNone(hp.Spec.NodeName), hp.Status.Phase))
					if hp.Status.Phase == corev1.PodRunning {
						f.Permanent = true
					}
					if sc := sharedClaim(p, hp); sc != "" {
						claim = sc
					}
				}
			}
			if claim != "" {
				f.Evidence = append(f.Evidence, fmt.Sprintf("claim %s: accessModes %v; pod %s is on node %s", claim, claimModes(c, p.Namespace, claim), p.Name, orNone(p.Spec.NodeName)))
			}
			if vol == "" {
				vol = claim
			} else if claim != "" {
				vol += " of claim " + claim
			}
			f.Message = fmt.Sprintf("Pod %s cannot mount volume %s: it is ReadWriteOnce and still attached to another node for pod %s.", p.Name, vol, strings.Join(holders, ", "))
			f.Fix = "Delete the pod that still holds the volume once it is done (e.g. the copy pod that uploaded the model), use ReadOnlyMany/ReadWriteMany storage for data several pods read, or schedule the pods on the same node."
			out = append(out, f)
			continue
		}
		if len(mount) > 0 {
			out = append(out, backend.Finding{RuleID: "volume-mount-failed", Severity: backend.SeverityError, Object: podObject(p), Evidence: ev,
				Message: fmt.Sprintf("Pod %s cannot start: the kubelet fails to mount its volumes.", p.Name),
				Fix:     "Create the missing Secret, ConfigMap or claim named in the event, or fix the volume's source."})
		}
	}
	return out
}

// rwoHeldElsewhere returns a claim of pod p that is ReadWriteOnce only (by
// spec.accessModes), its volume name, and the unfinished pods on other
// nodes that mount it; p must be bound to a node.
func rwoHeldElsewhere(c *Context, p *corev1.Pod) (claim, volume string, holders []*corev1.Pod) {
	if p.Spec.NodeName == "" {
		return "", "", nil
	}
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		name := v.PersistentVolumeClaim.ClaimName
		pvc := findClaim(c, p.Namespace, name)
		if pvc == nil || !onlyReadWriteOnce(pvc.Spec.AccessModes) {
			continue
		}
		for i := range c.State.Pods {
			hp := &c.State.Pods[i]
			if hp == p || !sameNamespace(hp.Namespace, p.Namespace) || hp.Spec.NodeName == "" || hp.Spec.NodeName == p.Spec.NodeName ||
				hp.Status.Phase == corev1.PodSucceeded || hp.Status.Phase == corev1.PodFailed || hp.DeletionTimestamp != nil {
				continue
			}
			if sharedClaim(p, hp) == name {
				holders = append(holders, hp)
			}
		}
		if len(holders) > 0 {
			return name, pvc.Spec.VolumeName, holders
		}
	}
	return "", "", nil
}

func findClaim(c *Context, namespace, name string) *corev1.PersistentVolumeClaim {
	for i := range c.State.PersistentVolumeClaims {
		pvc := &c.State.PersistentVolumeClaims[i]
		if pvc.Name == name && sameNamespace(pvc.Namespace, namespace) {
			return pvc
		}
	}
	return nil
}

func claimModes(c *Context, namespace, name string) []corev1.PersistentVolumeAccessMode {
	if pvc := findClaim(c, namespace, name); pvc != nil {
		return pvc.Spec.AccessModes
	}
	return nil
}

// onlyReadWriteOnce reports whether modes allow a single node only.
func onlyReadWriteOnce(modes []corev1.PersistentVolumeAccessMode) bool {
	if len(modes) == 0 {
		return false
	}
	for _, m := range modes {
		if m != corev1.ReadWriteOnce && m != corev1.ReadWriteOncePod {
			return false
		}
	}
	return true
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
