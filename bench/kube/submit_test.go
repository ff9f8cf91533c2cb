// Package kubebench measures petrel's Kubernetes backend against a real
// control plane with 100 kwok nodes (test/cluster):
//
//   - BenchmarkSubmit: 1,000 TrainingJobs submitted through Backend.Apply,
//     in one call (`petrel apply -f dir/`) and in one call per job (as
//     1,000 `petrel train --detach` would, minus process start), against (a) a plain
//     client-go Create loop of the same rendered Jobs with the same client
//     rate limits (QPS 50, burst 300: petrel's defaults, kubectl's too), the
//     sequential two also without client-side limits ("-unthrottled"), and
//     (b) `kubectl apply -f` of each job's rendered YAML, one process per
//     job (100 jobs, it is slow).
//   - BenchmarkListJobs: `petrel get jobs`'s backend calls, ListJobs (full
//     status) and ListJobsForTable (the table's fields), over 10,000 Jobs;
//     with PETREL_BIN set, the `petrel get jobs` command itself next to
//     `kubectl get jobs` (PETREL_BIN_BASELINE adds a second build).
//
// Run: go test ./bench/kube -run '^$' -bench . -benchtime 1x -timeout 60m
package kubebench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/petrel-dev/petrel/internal/kube"
	"github.com/petrel-dev/petrel/internal/spec"
	"github.com/petrel-dev/petrel/test/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// benchCluster has 100 fake nodes. Each submission benchmark gets a fresh
// one (Private), so the pods the Job controller is still making for one
// run's jobs do not load the API server during the next run.
var benchCluster = cluster.Options{Nodes: 100, Private: true}

const jobSpec = `apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata:
  name: %s
  annotations: {petrel.dev/sim-duration: 500ms}
spec:
  image: ghcr.io/petrel-dev/digits:0.1.0
  command: [python3, train.py]
  args: [--epochs, "20"]
  resources: {cpu: 100m, memory: 128Mi}
  backoffLimit: 2
`

func jobDocs(b *testing.B, n int) [][]*spec.Document {
	b.Helper()
	out := make([][]*spec.Document, n)
	for i := range out {
		docs, err := spec.Parse(fmt.Sprintf("job-%d.yaml", i), fmt.Appendf(nil, jobSpec, fmt.Sprintf("job-%04d", i)))
		if err != nil {
			b.Fatal(err)
		}
		out[i] = docs
	}
	return out
}

func renderJob(b *testing.B, docs []*spec.Document, ns string) *batchv1.Job {
	b.Helper()
	set, err := kube.Render(docs, kube.Options{Namespace: ns})
	if err != nil {
		b.Fatal(err)
	}
	return set.Objects[0].(*batchv1.Job)
}

func report(b *testing.B, n int, d time.Duration) {
	b.ReportMetric(float64(n)/d.Seconds(), "jobs/s")
	b.ReportMetric(0, "ns/op") // the per-iteration time is not the figure of interest
	b.Logf("%d jobs in %s: %.1f jobs/s", n, d.Round(time.Millisecond), float64(n)/d.Seconds())
}

func BenchmarkSubmit(b *testing.B) {
	const n = 1000
	all := jobDocs(b, n)

	b.Run("petrel-apply-one-call", func(b *testing.B) {
		var docs []*spec.Document
		for _, d := range all {
			docs = append(docs, d...)
		}
		for range b.N {
			c := cluster.Start(b, benchCluster)
			ns := c.Namespace(b, "bench-petrel1")
			be, err := kube.New(kube.Config{Kubeconfig: c.Kubeconfig, Namespace: ns, QPS: kube.DefaultQPS, Burst: kube.DefaultBurst})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			applied, err := be.Apply(context.Background(), docs)
			if err != nil {
				b.Fatal(err)
			}
			if len(applied) != n {
				b.Fatalf("applied %d objects, want %d", len(applied), n)
			}
			report(b, n, time.Since(start))
		}
	})

	// One request per job, sequential, with petrel's (and kubectl's) client
	// limits and, "-unthrottled", with none: what each request costs.
	for _, lim := range []struct {
		suffix string
		qps    float32
		burst  int
	}{{"", kube.DefaultQPS, kube.DefaultBurst}, {"-unthrottled", -1, 0}} {
		b.Run("petrel-apply-per-job"+lim.suffix, func(b *testing.B) {
			for range b.N {
				c := cluster.Start(b, benchCluster)
				ns := c.Namespace(b, "bench-petrel")
				be, err := kube.New(kube.Config{Kubeconfig: c.Kubeconfig, Namespace: ns, QPS: lim.qps, Burst: lim.burst})
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				start := time.Now()
				for _, docs := range all {
					if _, err := be.Apply(ctx, docs); err != nil {
						b.Fatal(err)
					}
				}
				report(b, n, time.Since(start))
			}
		})

		b.Run("client-go-create"+lim.suffix, func(b *testing.B) {
			for range b.N {
				c := cluster.Start(b, benchCluster)
				ns := c.Namespace(b, "bench-clientgo")
				rc := c.RESTConfig(b)
				rc.QPS, rc.Burst = lim.qps, lim.burst
				cs, err := kubernetes.NewForConfig(rc)
				if err != nil {
					b.Fatal(err)
				}
				jobs := make([]*batchv1.Job, n)
				for i, docs := range all {
					jobs[i] = renderJob(b, docs, ns)
				}
				ctx := context.Background()
				start := time.Now()
				for _, j := range jobs {
					if _, err := cs.BatchV1().Jobs(ns).Create(ctx, j, metav1.CreateOptions{}); err != nil {
						b.Fatal(err)
					}
				}
				report(b, n, time.Since(start))
			}
		})
	}

	b.Run("kubectl-apply-100", func(b *testing.B) {
		const k = 100
		kubectl := filepath.Join(cluster.BinDir(), "kubectl")
		for range b.N {
			c := cluster.Start(b, benchCluster)
			ns := c.Namespace(b, "bench-kubectl")
			dir := b.TempDir()
			files := make([]string, k)
			for i := range k {
				set, err := kube.Render(all[i], kube.Options{Namespace: ns})
				if err != nil {
					b.Fatal(err)
				}
				y, err := set.YAML()
				if err != nil {
					b.Fatal(err)
				}
				files[i] = filepath.Join(dir, fmt.Sprintf("job-%d.yaml", i))
				if err := os.WriteFile(files[i], y, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			start := time.Now()
			for _, f := range files {
				var stderr bytes.Buffer
				cmd := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "apply", "-f", f)
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					b.Fatalf("kubectl apply: %v: %s", err, stderr.String())
				}
			}
			report(b, k, time.Since(start))
		}
	})
}

// listSetup is the namespace of 10,000 jobs BenchmarkListJobs made, kept
// across its invocations (the cluster lives until the test binary ends).
var listSetup struct {
	c  *cluster.Cluster
	ns string
}

// BenchmarkListJobs measures ListJobs (what `petrel get jobs` calls) over
// 10,000 Jobs, against a bare client-go list of the same Jobs (protobuf,
// one request) as the floor. The Jobs are created suspended: the
// controller-manager's own client limits (20 QPS) would need over 8
// minutes to make their 10,000 pods, so the figure covers the Job list
// plus an (empty) pod list.
func BenchmarkListJobs(b *testing.B) {
	const n = 10000
	if listSetup.c == nil {
		listSetup.c = cluster.Start(b, cluster.Options{Nodes: 100})
		listSetup.ns = makeSuspendedJobs(b, listSetup.c, n)
	}
	c, ns := listSetup.c, listSetup.ns
	ctx := context.Background()

	b.Run("client-go-list", func(b *testing.B) {
		rc := c.RESTConfig(b)
		rc.ContentType = "application/vnd.kubernetes.protobuf"
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			b.Fatal(err)
		}
		for range b.N {
			l, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
			if err != nil || len(l.Items) != n {
				b.Fatalf("listed %d jobs (%v), want %d", len(l.Items), err, n)
			}
		}
	})

	b.Run("petrel-client-list", func(b *testing.B) {
		be, err := kube.New(kube.Config{Kubeconfig: c.Kubeconfig, Namespace: ns})
		if err != nil {
			b.Fatal(err)
		}
		for range b.N {
			l, err := be.Client().BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
			if err != nil || len(l.Items) != n {
				b.Fatalf("listed %d jobs (%v), want %d", len(l.Items), err, n)
			}
		}
	})

	b.Run("petrel-ListJobs", func(b *testing.B) {
		be, err := kube.New(kube.Config{Kubeconfig: c.Kubeconfig, Namespace: ns})
		if err != nil {
			b.Fatal(err)
		}
		for range b.N {
			jobs, err := be.ListJobs(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if len(jobs) != n {
				b.Fatalf("listed %d jobs, want %d", len(jobs), n)
			}
		}
	})

	b.Run("petrel-ListJobsForTable", func(b *testing.B) {
		be, err := kube.New(kube.Config{Kubeconfig: c.Kubeconfig, Namespace: ns})
		if err != nil {
			b.Fatal(err)
		}
		for range b.N {
			jobs, err := be.ListJobsForTable(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if len(jobs) != n {
				b.Fatalf("listed %d jobs, want %d", len(jobs), n)
			}
		}
	})

	// The commands, process start and the 10,000-row table included:
	// kubectl (its server-side Table), and petrel's PETREL_BIN and, to
	// compare two builds in one run, PETREL_BIN_BASELINE.
	command := func(name string, argv ...string) {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
				if err != nil {
					b.Fatalf("%s: %v: %s", name, err, out)
				}
				if lines := strings.Count(string(out), "\n"); lines != n+1 {
					b.Fatalf("%s printed %d lines, want %d", name, lines, n+1)
				}
			}
		})
	}
	command("kubectl-get-jobs-command", filepath.Join(cluster.BinDir(), "kubectl"), "get", "jobs", "--kubeconfig", c.Kubeconfig, "-n", ns)
	if petrel := os.Getenv("PETREL_BIN_BASELINE"); petrel != "" {
		command("petrel-get-jobs-command-baseline", petrel, "get", "jobs", "--target", "kubernetes", "--kubeconfig", c.Kubeconfig, "-n", ns)
	}
	if petrel := os.Getenv("PETREL_BIN"); petrel != "" {
		command("petrel-get-jobs-command", petrel, "get", "jobs", "--target", "kubernetes", "--kubeconfig", c.Kubeconfig, "-n", ns)
	}
}

// makeSuspendedJobs creates n suspended petrel Jobs in a new namespace
// with a fast client (16 goroutines, no client throttling).
func makeSuspendedJobs(b *testing.B, c *cluster.Cluster, n int) string {
	cs := c.Client(b)
	ctx := context.Background()
	nsObj, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-list-"}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ns := nsObj.Name
	rc := c.RESTConfig(b)
	rc.QPS, rc.Burst = 2000, 2000
	fast, err := kubernetes.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := renderJob(b, jobDocs(b, 1)[0], ns)
	suspend := true
	tmpl.Spec.Suspend = &suspend
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	setup := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				j := tmpl.DeepCopy()
				j.Name = fmt.Sprintf("job-%05d", i)
				j.Labels[kube.LabelWorkload], j.Labels[kube.LabelName] = j.Name, j.Name
				j.Spec.Template.Labels[kube.LabelWorkload], j.Spec.Template.Labels[kube.LabelName] = j.Name, j.Name
				if _, err := fast.BatchV1().Jobs(ns).Create(ctx, j, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.Logf("created %d suspended jobs in %s", n, time.Since(setup).Round(time.Millisecond))
	return ns
}
