package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"

	"github.com/petrel-dev/petrel/internal/backend"
)

// owned lists, per petrel kind, the resources petrel makes for it, in the
// order they are deleted (the workload before what it uses).
var owned = map[string][]string{
	KindJob:     {"Job", "Service", "Secret"},
	KindService: {"HorizontalPodAutoscaler", "Service", "Deployment", "Secret"},
	KindVolume:  {"PersistentVolumeClaim", "ConfigMap"},
}

// Delete removes what petrel made for one workload or volume: only objects
// labelled app.kubernetes.io/managed-by=petrel AND petrel.dev/kind=KIND AND
// petrel.dev/workload=NAME, each deleted by name with a UID precondition
// (so a replacement made meanwhile is kept) and propagationPolicy
// Background, so the garbage collector removes the Job's or Deployment's
// pods too. Nothing else is touched, even with a similar name. It returns
// ErrNotFound (wrapped) when nothing matched.
func (b *Backend) Delete(ctx context.Context, ref backend.Ref) error {
	kinds, ok := owned[ref.Kind]
	if !ok {
		return fmt.Errorf("cannot delete a %q on Kubernetes: give job, service or volume", ref.Kind)
	}
	ns := b.nsFor(ref.Kind, ref.Name)
	sel := SelectorString(ref.Kind, ref.Name)
	bg := metav1.DeletePropagationBackground
	total := 0
	for _, k := range kinds {
		n, err := b.deleteSelected(ctx, ns, resources[k], sel, &bg)
		if err != nil {
			return err
		}
		total += n
	}
	if total == 0 {
		return fmt.Errorf("%s %q not found in namespace %q (no objects labelled %s): %w", ref.Kind, ref.Name, ns, sel, backend.ErrNotFound)
	}
	return nil
}

// deleteSelected deletes every object of one resource matching sel and
// returns how many it deleted (objects already gone are not counted).
func (b *Backend) deleteSelected(ctx context.Context, ns string, ri resourceInfo, sel string, policy *metav1.DeletionPropagation) (int, error) {
	mc, err := b.metadataClient()
	if err != nil {
		return 0, err
	}
	gvr := schema.GroupVersionResource{Group: ri.group, Version: ri.version, Resource: ri.resource}
	l, err := mc.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return 0, b.explain(err, "list", ri.qualified(), ns, "")
	}
	n := 0
	for _, o := range l.Items {
		if o.DeletionTimestamp != nil {
			continue
		}
		uid := o.UID
		err := mc.Resource(gvr).Namespace(ns).Delete(ctx, o.Name, metav1.DeleteOptions{
			PropagationPolicy: policy,
			Preconditions:     &metav1.Preconditions{UID: &uid},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			continue // gone, or replaced by an object we did not list
		}
		if err != nil {
			return n, b.explain(err, "delete", ri.qualified(), ns, o.Name)
		}
		n++
	}
	return n, nil
}

func (b *Backend) metadataClient() (metadata.Interface, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.meta == nil {
		mc, err := metadata.NewForConfig(b.rest)
		if err != nil {
			return nil, fmt.Errorf("build a metadata client for %s: %w", b.rest.Host, err)
		}
		b.meta = mc
	}
	return b.meta, nil
}
