package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/engine"
	"github.com/petrel-dev/petrel/internal/kube"
	"github.com/petrel-dev/petrel/internal/spec"
	"github.com/petrel-dev/petrel/test/cluster"
)

// hpaService is an InferenceService named name that autoscales on
// concurrency from 3 replicas, with behavior (YAML flow, "" for none).
// Locally each replica is a Python server whose requests take half a
// second; on the cluster kwok runs the pods.
func hpaService(name, behavior string) string {
	if behavior != "" {
		behavior = ", behavior: " + behavior
	}
	return `apiVersion: petrel.dev/v1alpha1
kind: InferenceService
metadata: {name: ` + name + `}
spec:
  image: python:3.12-slim
  command: [python3, -c]
  args:
  - |
    import http.server, os, time
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/ready":
                time.sleep(0.5)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")
        def log_message(self, *args):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
  port: 8080
  readinessProbe: {httpGet: {path: /ready}, periodSeconds: 1}
  terminationGracePeriodSeconds: 1
  autoscaling: {minReplicas: 3, maxReplicas: 20, target: {concurrency: 1}` + behavior + `}
`
}

// rescales returns the new sizes of a service's SuccessfulRescale events,
// oldest first; both targets word them as the HPA controller does ("New
// size: 6; reason: …").
func rescales(t *testing.T, s *backend.Service) []int {
	t.Helper()
	var sizes []int
	for _, e := range s.Events {
		if e.Reason != "SuccessfulRescale" {
			continue
		}
		var to int
		if _, err := fmt.Sscanf(e.Message, "New size: %d;", &to); err == nil {
			sizes = append(sizes, to)
			continue
		}
		t.Fatalf("rescale event %q not in the HPA controller's wording", e.Message)
	}
	return sizes
}

// firstScaleUpFrom3 waits until service name has scaled up from 3
// replicas and returns the size it went to.
func firstScaleUpFrom3(t *testing.T, ctx context.Context, b backend.Backend, name string) int {
	t.Helper()
	var last string
	for {
		s, err := b.GetService(ctx, name)
		if err == nil {
			sizes := rescales(t, s)
			// The cluster's HPA first lifts the Deployment's 1 replica to
			// minReplicas; the local engine starts at minReplicas.
			for len(sizes) > 0 && sizes[0] <= 3 {
				sizes = sizes[1:]
			}
			if len(sizes) > 0 {
				return sizes[0]
			}
			last = fmt.Sprintf("desired %d, ready %d, metric %q, events: %s", s.DesiredReplicas, s.ReadyReplicas, s.Metric, eventSummary(s))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: no scale-up from 3 replicas: %s", name, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func eventSummary(s *backend.Service) string {
	var b strings.Builder
	for _, e := range s.Events {
		fmt.Fprintf(&b, "\n  %s %s", e.Reason, e.Message)
	}
	return b.String()
}

// startLoad keeps workers requests in flight to url until ctx ends;
// failures (503 before a replica is ready) are retried.
func startLoad(ctx context.Context, url string, workers int) *sync.WaitGroup {
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/work", nil)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				} else {
					select {
					case <-ctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		}()
	}
	return &wg
}

// hpaRows are HPA scenarios both targets must agree on: the replica count
// one sync picks from 3 under a load ten times the target.
var hpaRows = []struct {
	name     string
	behavior string // YAML flow for spec.autoscaling.behavior, "" for none
	want     int
}{
	// Issue 8, point 5: the controller's normalizeDesiredReplicas,
	// max(2 × 3, 4), not the autoscaling/v2 behavior defaults.
	{"hpa-legacy", "", 6},
	// With a behavior, even an empty one, the API server fills in the
	// defaults: max(3 + 4 pods, 3 + 100 %) per 15 s.
	{"hpa-behavior", "{}", 7},
}

// TestHPAScalesTheSameOnBothTargets is the HPA rows of the differential
// table: the same InferenceService on the local engine and on a real
// control plane (kube-apiserver, the HPA controller of
// kube-controller-manager; pods simulated by kwok) scales from 3 to the
// same count in one sync. Locally the load is real: requests in flight
// through the load balancer. On the cluster a custom-metrics API served by
// this test reports 10 requests in flight per pod to the HPA controller.
func TestHPAScalesTheSameOnBothTargets(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		eng, err := engine.New(engine.Config{Home: t.TempDir(), GPUs: engine.FakeGPUs(0),
			ShimArgv: []string{petrelBin, "shim"}, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		for _, row := range hpaRows {
			t.Run(row.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				docs, err := spec.Parse(row.name+".yaml", []byte(hpaService(row.name, row.behavior)))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := eng.Apply(ctx, docs); err != nil {
					t.Fatal(err)
				}
				s, err := eng.GetService(ctx, row.name)
				if err != nil {
					t.Fatal(err)
				}
				// The load starts before the replicas are ready, so every
				// sample of the first sync with metrics sees it.
				loadCtx, stop := context.WithCancel(ctx)
				wg := startLoad(loadCtx, s.URL, 30)
				defer func() {
					stop()
					wg.Wait()
					_ = eng.Delete(context.Background(), backend.Ref{Kind: "service", Name: row.name})
				}()
				if got := firstScaleUpFrom3(t, ctx, eng, row.name); got != row.want {
					t.Errorf("local: 3 → %d, want 3 → %d", got, row.want)
				}
			})
		}
	})

	t.Run("kubernetes", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		c := cluster.Start(t, cluster.Options{Nodes: 2})
		serveCustomMetrics(t, ctx, c, c.Namespace(t, "custom-metrics"), 10)
		for _, row := range hpaRows {
			t.Run(row.name, func(t *testing.T) {
				ns := c.Namespace(t, row.name)
				kb, err := kube.New(kube.Config{REST: c.RESTConfig(t), Namespace: ns})
				if err != nil {
					t.Fatal(err)
				}
				docs, err := spec.Parse(row.name+".yaml", []byte(hpaService(row.name, row.behavior)))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := kb.Apply(ctx, docs); err != nil {
					t.Fatal(err)
				}
				if got := firstScaleUpFrom3(t, ctx, kb, row.name); got != row.want {
					t.Errorf("kubernetes: 3 → %d, want 3 → %d", got, row.want)
				}
			})
		}
	})
}

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// serveCustomMetrics serves custom.metrics.k8s.io/v1beta2 from this process
// (TLS on 127.0.0.1) and registers it with the cluster's aggregator through
// an ExternalName Service "localhost" in ns: every pod of every namespace
// reports kube.InflightMetric = perPod. It waits until the APIService is
// Available and removes it when t ends.
func serveCustomMetrics(t *testing.T, ctx context.Context, c *cluster.Cluster, ns string, perPod int) {
	t.Helper()
	cs := c.Client(t)
	const gv = "custom.metrics.k8s.io/v1beta2"
	mux := http.NewServeMux()
	mux.HandleFunc("/apis/"+gv, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
			"resources": []map[string]any{{"name": "pods/" + kube.InflightMetric, "singularName": "", "namespaced": true,
				"kind": "MetricValueList", "verbs": []string{"get"}}}})
	})
	mux.HandleFunc("/apis/"+gv+"/namespaces/{ns}/pods/{pod}/{metric}", func(w http.ResponseWriter, r *http.Request) {
		podNS := r.PathValue("ns")
		if r.PathValue("metric") != kube.InflightMetric {
			http.NotFound(w, r)
			return
		}
		pods, err := cs.CoreV1().Pods(podNS).List(r.Context(), metav1.ListOptions{LabelSelector: r.URL.Query().Get("labelSelector")})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		items := []map[string]any{}
		now := time.Now().UTC().Format(time.RFC3339)
		for _, p := range pods.Items {
			if name := r.PathValue("pod"); name != "*" && name != p.Name {
				continue
			}
			items = append(items, map[string]any{
				"describedObject": map[string]any{"kind": "Pod", "namespace": podNS, "name": p.Name, "apiVersion": "/v1"},
				"metric":          map[string]any{"name": kube.InflightMetric},
				"timestamp":       now, "windowSeconds": 15, "value": strconv.Itoa(perPod),
			})
		}
		writeJSON(w, map[string]any{"kind": "MetricValueList", "apiVersion": gv, "metadata": map[string]any{}, "items": items})
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	port, _ := strconv.Atoi(srv.URL[strings.LastIndex(srv.URL, ":")+1:])

	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "custom-metrics"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(c.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	const name = "v1beta2.custom.metrics.k8s.io"
	apisvc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"group": "custom.metrics.k8s.io", "version": "v1beta2", "insecureSkipTLSVerify": true,
			"groupPriorityMinimum": int64(100), "versionPriority": int64(100),
			"service": map[string]any{"namespace": ns, "name": "custom-metrics", "port": int64(port)}},
	}}
	if _, err := dc.Resource(apiServiceGVR).Create(ctx, apisvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		err := dc.Resource(apiServiceGVR).Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete APIService %s: %v", name, err)
		}
	})
	waitAPIServiceAvailable(t, ctx, dc, name)
}

func waitAPIServiceAvailable(t *testing.T, ctx context.Context, dc dynamic.Interface, name string) {
	t.Helper()
	var last string
	for {
		u, err := dc.Resource(apiServiceGVR).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Available" {
					if m["status"] == "True" {
						return
					}
					last = fmt.Sprintf("%v: %v", m["reason"], m["message"])
				}
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("APIService %s not Available: %s", name, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
