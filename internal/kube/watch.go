package kube

import (
	"context"
	"fmt"
	"reflect"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"

	"github.com/petrel-dev/petrel/internal/backend"
)

// jobWatch keeps a Job and its pods in informer caches (one list, then a
// watch each; the reflector re-lists if a watch breaks) and signals every
// change on changed.
type jobWatch struct {
	job, pods cache.SharedIndexInformer
	changed   chan struct{}
	name      string
}

func (b *Backend) newJobWatch(ns, name string) *jobWatch {
	w := &jobWatch{changed: make(chan struct{}, 1), name: name}
	jobLW := cache.NewFilteredListWatchFromClient(b.cs.BatchV1().RESTClient(), "jobs", ns, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	})
	podLW := cache.NewFilteredListWatchFromClient(b.cs.CoreV1().RESTClient(), "pods", ns, func(o *metav1.ListOptions) {
		o.LabelSelector = SelectorString(KindJob, name)
	})
	w.job = cache.NewSharedIndexInformer(jobLW, &batchv1.Job{}, 0, cache.Indexers{})
	w.pods = cache.NewSharedIndexInformer(podLW, &corev1.Pod{}, 0, cache.Indexers{})
	notify := func() {
		select {
		case w.changed <- struct{}{}:
		default: // a signal is already pending; the reader sees the latest state
		}
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	_, _ = w.job.AddEventHandler(h)
	_, _ = w.pods.AddEventHandler(h)
	return w
}

// run starts both informers until ctx ends and waits for their first list.
func (w *jobWatch) run(ctx context.Context) bool {
	go w.job.RunWithContext(ctx)
	go w.pods.RunWithContext(ctx)
	return cache.WaitForCacheSync(ctx.Done(), w.job.HasSynced, w.pods.HasSynced)
}

// status computes the job's status from the caches; ok is false when the
// Job is not (or no longer) there.
func (w *jobWatch) status() (backend.Job, bool) {
	var job *batchv1.Job
	for _, o := range w.job.GetStore().List() {
		if j := o.(*batchv1.Job); j.Name == w.name {
			job = j
		}
	}
	if job == nil {
		return backend.Job{}, false
	}
	var pods []corev1.Pod
	for _, o := range w.pods.GetStore().List() {
		pods = append(pods, *o.(*corev1.Pod))
	}
	return jobStatus(job, pods), true
}

// WatchJob sends the job's status whenever the Job or one of its pods
// changes (watches, not polling), until the job has a Complete or Failed
// condition (the last value sent is final), the Job is deleted, or ctx
// ends. It returns ErrNotFound (wrapped) when the job does not exist.
func (b *Backend) WatchJob(ctx context.Context, name string) (<-chan backend.Job, error) {
	ns := b.nsFor(KindJob, name)
	if _, err := b.cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
		return nil, b.explain(err, "get", "jobs.batch", ns, name)
	}
	ctx, cancel := context.WithCancel(ctx)
	w := b.newJobWatch(ns, name)
	if !w.run(ctx) {
		cancel()
		return nil, fmt.Errorf("watch job %s in namespace %q: %w", name, ns, ctx.Err())
	}
	ch := make(chan backend.Job, 1)
	go func() {
		defer cancel()
		defer close(ch)
		var last *backend.Job
		for {
			j, ok := w.status()
			if !ok {
				return // deleted
			}
			if last == nil || !reflect.DeepEqual(*last, j) {
				select {
				case ch <- j:
				case <-ctx.Done():
					return
				}
				last = &j
			}
			if j.Finished() {
				return
			}
			select {
			case <-w.changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}
