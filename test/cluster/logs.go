package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var (
	logsGVR        = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "logs"}
	clusterLogsGVR = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "clusterlogs"}
)

// NamespaceLogs makes every container of every pod in namespace ns (those
// that exist and those made later) serve lines as its log through the pod
// log API (GET .../pods/NAME/log, kubectl logs), as if the container had
// printed them to stdout. Each line gets a timestamp (shown with
// timestamps=true) 1 ms after the one before, starting now. Pods on kwok's
// fake nodes have no log otherwise: the request fails with "log target not
// found". Unlike a kubelet, kwok keeps a follow=true request open after the
// lines, even once the pod has ended (it never sees the container stop): a
// client streaming logs must also end the stream when the pod terminates.
// The setting is removed when t ends.
func (c *Cluster) NamespaceLogs(t testing.TB, ns string, lines ...string) {
	t.Helper()
	file := c.writeLogFile(t, "ns-"+ns, lines)
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1",
		"kind":       "ClusterLogs",
		"metadata":   map[string]any{"name": "petrel-ns-" + ns},
		"spec": map[string]any{
			"selector": map[string]any{"matchNamespaces": []any{ns}},
			"logs":     []any{map[string]any{"logsFile": file}},
		},
	}}
	c.createLogs(t, clusterLogsGVR, "", obj)
}

// PodLogs is NamespaceLogs for one pod, by name: it wins over a
// NamespaceLogs setting for the pod's namespace.
func (c *Cluster) PodLogs(t testing.TB, ns, pod string, lines ...string) {
	t.Helper()
	file := c.writeLogFile(t, "pod-"+ns+"-"+pod, lines)
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1",
		"kind":       "Logs",
		"metadata":   map[string]any{"name": pod, "namespace": ns},
		"spec": map[string]any{
			"logs": []any{map[string]any{"logsFile": file}},
		},
	}}
	c.createLogs(t, logsGVR, ns, obj)
}

// writeLogFile writes lines in the CRI log format kwok reads
// ("RFC3339Nano-timestamp stdout F text") and returns the file's path.
func (c *Cluster) writeLogFile(t testing.TB, name string, lines []string) string {
	t.Helper()
	dir := filepath.Join(c.Workdir, "pod-logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	at := time.Now().UTC()
	for i, l := range lines {
		fmt.Fprintf(&b, "%s stdout F %s\n", at.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), l)
	}
	path := filepath.Join(dir, name+".log")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// createLogs creates (or replaces) a kwok Logs or ClusterLogs object and
// deletes it when t ends. kwok picks it up from its watch within a second or
// so; a log request before that fails with "log target not found".
func (c *Cluster) createLogs(t testing.TB, gvr schema.GroupVersionResource, ns string, obj *unstructured.Unstructured) {
	t.Helper()
	dc, err := dynamic.NewForConfig(c.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ri := dc.Resource(gvr).Namespace(ns)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := obj.GetName()
	err = ri.Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("replace kwok %s %s: %v", obj.GetKind(), name, err)
	}
	if _, err := ri.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create kwok %s %s in test cluster %s: %v", obj.GetKind(), name, c.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ri.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete kwok %s %s: %v", obj.GetKind(), name, err)
		}
	})
}
