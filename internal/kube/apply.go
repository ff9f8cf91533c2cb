package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/spec"
)

// resourceInfo locates one kind petrel renders on the API server.
type resourceInfo struct {
	group, version, resource string
}

func (r resourceInfo) groupVersion() string {
	if r.group == "" {
		return r.version
	}
	return r.group + "/" + r.version
}

// qualified is "resource.group" as RBAC and kubectl name it.
func (r resourceInfo) qualified() string {
	if r.group == "" {
		return r.resource
	}
	return r.resource + "." + r.group
}

var resources = map[string]resourceInfo{
	"PersistentVolumeClaim":   {"", "v1", "persistentvolumeclaims"},
	"Secret":                  {"", "v1", "secrets"},
	"ConfigMap":               {"", "v1", "configmaps"},
	"Service":                 {"", "v1", "services"},
	"Pod":                     {"", "v1", "pods"},
	"Event":                   {"", "v1", "events"},
	"Job":                     {"batch", "v1", "jobs"},
	"Deployment":              {"apps", "v1", "deployments"},
	"HorizontalPodAutoscaler": {"autoscaling", "v2", "horizontalpodautoscalers"},
}

// restFor returns the REST client of an API group version.
func (b *Backend) restFor(r resourceInfo) rest.Interface {
	switch r.group {
	case "batch":
		return b.cs.BatchV1().RESTClient()
	case "apps":
		return b.cs.AppsV1().RESTClient()
	case "autoscaling":
		return b.cs.AutoscalingV2().RESTClient()
	}
	return b.cs.CoreV1().RESTClient()
}

// checkServed asks discovery, once per group version, whether the API
// server serves each kind in set, so a cluster without, say,
// autoscaling/v2 gets a clear error before anything is changed.
func (b *Backend) checkServed(ctx context.Context, set *Set) error {
	for _, o := range set.Objects {
		kind := o.GetObjectKind().GroupVersionKind().Kind
		ri := resources[kind]
		key := ri.groupVersion() + "/" + ri.resource
		b.mu.Lock()
		ok, known := b.served[key]
		b.mu.Unlock()
		if !known {
			list, err := b.cs.Discovery().ServerResourcesForGroupVersion(ri.groupVersion())
			switch {
			case apierrors.IsNotFound(err):
				ok = false
			case err != nil:
				return b.explain(err, "get", "discovery of "+ri.groupVersion(), "", "")
			default:
				for _, r := range list.APIResources {
					if r.Name == ri.resource {
						ok = true
					}
				}
			}
			b.mu.Lock()
			b.served[key] = ok
			b.mu.Unlock()
		}
		if !ok {
			return fmt.Errorf("the cluster at %s does not serve %s %s (kind not served), which %s %s needs; upgrade the cluster or enable that API group",
				b.rest.Host, ri.groupVersion(), kind, kindTitle(o.GetLabels()[LabelKind]), o.GetLabels()[LabelWorkload])
		}
	}
	return nil
}

// Apply renders docs and applies every object with server-side apply
// (field manager "petrel", conflicts forced), secrets, config maps and
// claims first. Rendering problems are reported before anything changes.
// Objects go to -n's namespace, else the spec's metadata.namespace, else
// the context's. Action is "created" (HTTP 201) or "configured".
func (b *Backend) Apply(ctx context.Context, docs []*spec.Document) ([]backend.Applied, error) {
	set, err := Render(docs, Options{IncludeSecretValues: true})
	if err != nil {
		return nil, err
	}
	for _, o := range set.Objects {
		if b.nsExplicit || o.GetNamespace() == "" {
			o.SetNamespace(b.ns)
		}
		l := o.GetLabels()
		b.mu.Lock()
		b.placedIn[l[LabelKind]+"/"+l[LabelWorkload]] = o.GetNamespace()
		b.mu.Unlock()
	}
	if err := b.checkServed(ctx, set); err != nil {
		return nil, err
	}
	out := make([]backend.Applied, len(set.Objects))
	// Objects of one tier (what workloads use, then workloads) are applied
	// concurrently, so many jobs in one apply are bounded by the client's
	// rate limit (QPS/Burst) rather than by each request's latency.
	for start := 0; start < len(set.Objects); {
		end := start
		for end < len(set.Objects) && applyOrder(set.Objects[end]) == applyOrder(set.Objects[start]) {
			end++
		}
		if err := b.applyTier(ctx, set.Objects[start:end], out[start:end]); err != nil {
			return nil, err
		}
		start = end
	}
	if err := b.prune(ctx, set); err != nil {
		return out, err
	}
	return out, nil
}

// applyWorkers bounds the concurrent apply requests of one Apply call.
const applyWorkers = 16

// applyTier applies objs concurrently, writing each result to out at the
// same index; it returns the first error (in object order).
func (b *Backend) applyTier(ctx context.Context, objs []Object, out []backend.Applied) error {
	errs := make([]error, len(objs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(applyWorkers, len(objs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				action, err := b.applyObject(ctx, objs[i])
				errs[i] = err
				out[i] = backend.Applied{Kind: objs[i].GetObjectKind().GroupVersionKind().Kind, Name: objs[i].GetName(), Action: action}
			}
		}()
	}
	for i := range objs {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// prune deletes what an earlier apply made for an inference service and
// this one no longer renders: the HPA once autoscaling is removed, the
// Secret once no env var is secret. (A Job's pod template cannot change, so
// jobs have nothing to prune.)
func (b *Backend) prune(ctx context.Context, set *Set) error {
	if b.dryRun {
		return nil
	}
	rendered := map[string]bool{}
	var services []Object
	for _, o := range set.Objects {
		kind := o.GetObjectKind().GroupVersionKind().Kind
		rendered[o.GetNamespace()+"/"+kind+"/"+o.GetName()] = true
		if kind == "Deployment" {
			services = append(services, o)
		}
	}
	for _, d := range services {
		name, ns := d.GetName(), d.GetNamespace()
		for kind, objName := range map[string]string{"HorizontalPodAutoscaler": name, "Secret": SecretName(KindService, name)} {
			if rendered[ns+"/"+kind+"/"+objName] {
				continue
			}
			if _, err := b.deleteSelected(ctx, ns, resources[kind], SelectorString(KindService, name), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyObject sends one server-side apply PATCH.
func (b *Backend) applyObject(ctx context.Context, o Object) (string, error) {
	kind := o.GetObjectKind().GroupVersionKind().Kind
	ri := resources[kind]
	m, err := ToMap(o)
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode %s %s: %w", kind, o.GetName(), err)
	}
	req := b.restFor(ri).Patch(types.ApplyPatchType).
		Namespace(o.GetNamespace()).Resource(ri.resource).Name(o.GetName()).
		Param("fieldManager", FieldManager).Param("force", "true")
	if b.dryRun {
		req = req.Param("dryRun", metav1.DryRunAll)
	}
	res := req.Body(body).Do(ctx)
	var code int
	res.StatusCode(&code)
	if err := res.Error(); err != nil {
		if kind == "Job" && apierrors.IsInvalid(err) && strings.Contains(err.Error(), "immutable") {
			return "", fmt.Errorf("job %s already exists in namespace %q with a different spec, and a batch/v1 Job's pod template cannot change: delete it first (petrel delete job %s) or give the new one another name",
				o.GetName(), o.GetNamespace(), o.GetName())
		}
		return "", b.explain(err, "patch", ri.qualified(), o.GetNamespace(), o.GetName())
	}
	if code == http.StatusCreated {
		return "created", nil
	}
	return "configured", nil
}

// replaceTimeout bounds the wait for a finished Job (and its pods) to go.
const replaceTimeout = 2 * time.Minute

// ApplyReplace is Apply, except that a TrainingJob whose Job has already
// finished (a Complete or Failed condition) is deleted first, pods
// included (propagationPolicy Foreground), and created anew, so `petrel
// train` runs it again as it does on the local engine. A Job that is still
// running is applied as is.
func (b *Backend) ApplyReplace(ctx context.Context, docs []*spec.Document) ([]backend.Applied, error) {
	for _, d := range docs {
		j, ok := d.Object.(*v1alpha1.TrainingJob)
		if !ok {
			continue
		}
		ns := b.ns
		if !b.nsExplicit && j.Metadata.Namespace != "" {
			ns = j.Metadata.Namespace
		}
		if err := b.deleteFinishedJob(ctx, ns, j.Metadata.Name); err != nil {
			return nil, err
		}
	}
	return b.Apply(ctx, docs)
}

func (b *Backend) deleteFinishedJob(ctx context.Context, ns, name string) error {
	job, err := b.cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return b.explain(err, "get", "jobs.batch", ns, name)
	}
	if job.Labels[LabelManagedBy] != ManagedBy {
		return fmt.Errorf("a job %s not managed by petrel exists in namespace %q; rename the TrainingJob or remove that job with kubectl", name, ns)
	}
	if st := jobStatus(job, nil); !st.Finished() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, replaceTimeout)
	defer cancel()
	w, err := b.cs.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
		ResourceVersion: job.ResourceVersion,
	})
	if err != nil {
		return b.explain(err, "watch", "jobs.batch", ns, name)
	}
	defer w.Stop()
	fg := metav1.DeletePropagationForeground
	uid := job.UID
	err = b.cs.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg, Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return b.explain(err, "delete", "jobs.batch", ns, name)
	}
	for ev := range w.ResultChan() {
		if ev.Type == watch.Deleted {
			return nil
		}
	}
	return fmt.Errorf("finished job %s in namespace %q was not gone after %s (its pods may be stuck terminating); check with kubectl get pods -l %s",
		name, ns, replaceTimeout, SelectorString(KindJob, name))
}
