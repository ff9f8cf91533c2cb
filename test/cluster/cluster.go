// Package cluster starts a real Kubernetes control plane for petrel's tests:
// upstream kube-apiserver, kube-controller-manager, kube-scheduler and etcd
// (k8s.io/kubernetes v1.37.2, built by hack/cluster/build.sh) run by kwokctl's
// binary runtime, with kwok standing in for kubelets on fake nodes.
//
// Pods on the fake nodes go through the stages in hack/cluster/stages: they
// are scheduled by the real scheduler, become Running, and a Job's pods end
// Succeeded after about a second. Annotations on a pod choose another end
// (see AnnotationSimExitCode, AnnotationSimReason, AnnotationSimDuration), so
// tests of backoffLimit, podFailurePolicy and diagnosis run against the real
// Job controller.
//
// A test binary that wraps its tests with Main shares one cluster per Options
// value among its tests; otherwise every Start makes a cluster of its own that
// t.Cleanup deletes. The binaries must be in BinDir: a test fails (it never
// skips) when they are missing, with the command that builds them.
package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// KubeVersion is the version of the Kubernetes components the cluster runs.
const KubeVersion = "v1.37.2"

// EtcdVersion is the version of etcd the cluster runs, the one
// k8s.io/kubernetes v1.37.2 requires.
const EtcdVersion = "3.7.0"

// Annotations read by the pod stages in hack/cluster/stages. They go on the
// pod (in a Job, on spec.template.metadata.annotations).
const (
	// AnnotationSimExitCode makes every container of a running pod exit with
	// this code (a decimal string). A pod with restartPolicy Never then ends
	// Succeeded (code 0) or Failed; any other pod crash-loops.
	AnnotationSimExitCode = "petrel.dev/sim-exit-code"
	// AnnotationSimReason sets how a pod ends: "OOMKilled" (exit code 137
	// unless AnnotationSimExitCode says otherwise), "Error" (exit code 1),
	// "CrashLoopBackOff" (pods that restart loop in CrashLoopBackOff; pods
	// with restartPolicy Never fail with reason Error, as with a real
	// kubelet) or "ImagePullBackOff" (the pod stays Pending, its containers
	// waiting with that reason).
	AnnotationSimReason = "petrel.dev/sim-reason"
	// AnnotationSimDuration is how long a pod's containers run before they
	// exit, as a Go duration ("1500ms", "5s"); the default is 1s.
	AnnotationSimDuration = "petrel.dev/sim-duration"
	// AnnotationSimIndex limits the annotations above to the pod whose
	// completion index (batch.kubernetes.io/job-completion-index, a worker
	// of an Indexed Job) is this value; the job's other pods run until
	// deleted, as the other workers of a gang wait in a collective.
	AnnotationSimIndex = "petrel.dev/sim-index"
)

// GPUResource is the extended resource name fake GPU nodes advertise, as the
// NVIDIA device plugin does.
const GPUResource corev1.ResourceName = "nvidia.com/gpu"

// GPUTaint is the taint GPU nodes carry when asked to (Options.GPUTaint):
// nvidia.com/gpu=present:NoSchedule, as GPU node pools on managed clusters
// set it. Pods need a toleration for the key nvidia.com/gpu to land there.
var GPUTaint = corev1.Taint{Key: string(GPUResource), Value: "present", Effect: corev1.TaintEffectNoSchedule}

// Node sizes of the fake nodes: each has NodeCPU cores, NodeMemory bytes of
// memory and room for NodePods pods.
const (
	NodeCPU    = "32"
	NodeMemory = "256Gi"
	NodePods   = "110"
)

// Options says what a cluster starts with.
type Options struct {
	// Nodes is the number of fake nodes without GPUs.
	Nodes int
	// GPUNodes is the number of fake nodes advertising GPUsPerNode GPUs
	// (GPUResource) each.
	GPUNodes int
	// GPUsPerNode is the GPU count of each GPU node; 0 means 8.
	GPUsPerNode int
	// GPUTaint puts GPUTaint on the GPU nodes.
	GPUTaint bool
	// Private gives the caller a cluster of its own even under Main, for
	// tests that change cluster-wide state (nodes, for example).
	Private bool
}

// Cluster is a running test cluster.
type Cluster struct {
	// Name is the kwokctl cluster name, unique on this machine.
	Name string
	// Kubeconfig is the path of a kubeconfig file with admin credentials
	// for the cluster, usable with kubectl --kubeconfig.
	Kubeconfig string
	// Workdir is kwokctl's working directory for the cluster (KWOK_WORKDIR);
	// component logs are under Workdir/clusters/Name/logs.
	Workdir string

	mu     sync.Mutex
	nodes  int
	config *rest.Config
}

// BinDir returns the directory holding the cluster binaries: the
// PETREL_CLUSTER_BIN environment variable, or else
// ${XDG_CACHE_HOME:-$HOME/.cache}/petrel/cluster-bin/v1.37.2, where
// hack/cluster/build.sh puts them.
func BinDir() string {
	if d := os.Getenv("PETREL_CLUSTER_BIN"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "petrel", "cluster-bin", KubeVersion)
}

// Binaries lists the programs that must be in BinDir.
var Binaries = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kwok", "kwokctl", "kubectl"}

var shared struct {
	sync.Mutex
	active   bool
	clusters map[Options]*Cluster
	reaped   bool
}

// Main runs the tests of m with clusters shared among them: Start with equal
// Options returns the same cluster, and every cluster is deleted when the tests
// end. It returns m.Run's exit code. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }
func Main(m *testing.M) int {
	shared.Lock()
	shared.active = true
	shared.clusters = map[Options]*Cluster{}
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	for _, c := range shared.clusters {
		if code != 0 {
			c.writeLogTails(os.Stderr)
		}
		if err := c.delete(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	shared.clusters = nil
	shared.active = false
	return code
}

// Start returns a running cluster with the nodes opts asks for, Ready. Under
// Main it reuses the cluster an earlier Start with the same Options made;
// otherwise the cluster is new and deleted when t ends. It calls t.Fatal when
// the binaries are missing or the cluster does not come up in 3 minutes.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.GPUNodes > 0 && opts.GPUsPerNode == 0 {
		opts.GPUsPerNode = 8
	}
	shared.Lock()
	defer shared.Unlock()
	if !shared.reaped {
		shared.reaped = true
		reapOrphans()
	}
	if shared.active && !opts.Private {
		if c, ok := shared.clusters[opts]; ok {
			return c
		}
	}
	c, err := start(opts)
	if err != nil {
		t.Fatalf("start test cluster: %v", err)
	}
	if shared.active && !opts.Private {
		shared.clusters[opts] = c
	} else {
		t.Cleanup(func() {
			if t.Failed() {
				c.logTails(t)
			}
			if err := c.delete(); err != nil {
				t.Error(err)
			}
		})
	}
	return c
}

// RESTConfig returns a copy of the admin client configuration of the
// cluster, with client-go's default rate limits (QPS 5, burst 10) raised to
// QPS 200, burst 400 so tests are not throttled; set them lower to measure a
// client as users run it.
func (c *Cluster) RESTConfig(t testing.TB) *rest.Config {
	t.Helper()
	return rest.CopyConfig(c.config)
}

// Client returns a clientset for the cluster with admin rights.
func (c *Cluster) Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig(t))
	if err != nil {
		t.Fatalf("make a client for test cluster %s: %v", c.Name, err)
	}
	return cs
}

// AddNodes adds n fake nodes managed by kwok and waits until they are Ready
// and schedulable. Each has NodeCPU, NodeMemory and NodePods; when gpus > 0
// it also advertises gpus of GPUResource, carries the label
// nvidia.com/gpu.present=true and, when taint is set, GPUTaint. It returns
// the node names.
func (c *Cluster) AddNodes(t testing.TB, n int, gpus int, taint bool) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	names, err := c.addNodes(ctx, n, gpus, taint)
	if err != nil {
		t.Fatalf("add %d nodes to test cluster %s: %v", n, c.Name, err)
	}
	return names
}

// Namespace creates a namespace with a unique name starting with prefix
// (lowercased, other characters than a-z, 0-9 and '-' replaced by '-', cut
// to 40 characters, so t.Name() will do), waits until its default
// ServiceAccount exists (pods need it), and deletes it when t ends. Tests
// sharing a cluster under Main use it to keep apart.
func (c *Cluster) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	prefix = dnsLabelPrefix(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := c.Client(t)
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace in test cluster %s: %v", c.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	if err := waitServiceAccount(ctx, cs, ns.Name); err != nil {
		t.Fatalf("namespace %s in test cluster %s: %v", ns.Name, c.Name, err)
	}
	return ns.Name
}

// dnsLabelPrefix turns s into the start of an RFC 1123 label of at most 40
// characters; "test" when nothing usable is left.
func dnsLabelPrefix(s string) string {
	b := []byte(strings.ToLower(s))
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9') {
			b[i] = '-'
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	out := strings.Trim(string(b), "-")
	if out == "" {
		return "test"
	}
	return out
}

// start creates a cluster: it writes the stages, runs kwokctl create cluster
// with the binaries from BinDir, waits for the API and adds opts's nodes.
func start(opts Options) (*Cluster, error) {
	bin := BinDir()
	var missing []string
	for _, b := range Binaries {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s missing from %s: build them with hack/cluster/build.sh (hack/test.sh runs it) or point PETREL_CLUSTER_BIN at a directory that has them",
			strings.Join(missing, ", "), bin)
	}
	stages, err := stagesConfig()
	if err != nil {
		return nil, err
	}
	root := workRoot()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create the cluster work directory: %w", err)
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return nil, err
	}
	c := &Cluster{Name: "petrel-" + hex.EncodeToString(suffix)}
	c.Workdir = filepath.Join(root, c.Name)
	if err := os.MkdirAll(c.Workdir, 0o755); err != nil {
		return nil, fmt.Errorf("create the cluster work directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.Workdir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	stagesPath := filepath.Join(c.Workdir, "stages.yaml")
	if err := os.WriteFile(stagesPath, stages, 0o644); err != nil {
		return nil, err
	}

	// kwokctl picks free ports by probing them; one create at a time on the
	// machine keeps two test binaries from picking the same ones.
	unlock, err := lockFile(filepath.Join(root, "create.lock"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := c.kwokctl(ctx, "create", "cluster",
		"--runtime", "binary",
		"--kube-apiserver-binary", filepath.Join(bin, "kube-apiserver"),
		"--kube-controller-manager-binary", filepath.Join(bin, "kube-controller-manager"),
		"--kube-scheduler-binary", filepath.Join(bin, "kube-scheduler"),
		"--etcd-binary", filepath.Join(bin, "etcd"),
		"--kwok-controller-binary", filepath.Join(bin, "kwok"),
		"--config", stagesPath,
		// Logs and ClusterLogs objects tell kwok what to serve as pod logs
		// (see PodLogs); the API server reaches kwok as the kubelet.
		"--enable-crds", "Logs",
		"--enable-crds", "ClusterLogs",
	)
	unlock()
	if err != nil {
		_ = c.delete()
		return nil, fmt.Errorf("kwokctl create cluster %s: %w\n%s", c.Name, err, out)
	}
	c.Kubeconfig = filepath.Join(c.Workdir, "clusters", c.Name, "kubeconfig.yaml")
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		_ = c.delete()
		return nil, fmt.Errorf("read kubeconfig of cluster %s: %w", c.Name, err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	c.config = cfg
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		_ = c.delete()
		return nil, err
	}
	if err := waitServiceAccount(ctx, cs, metav1.NamespaceDefault); err != nil {
		_ = c.delete()
		return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	if opts.Nodes > 0 {
		if _, err := c.addNodes(ctx, opts.Nodes, 0, false); err != nil {
			_ = c.delete()
			return nil, err
		}
	}
	if opts.GPUNodes > 0 {
		if _, err := c.addNodes(ctx, opts.GPUNodes, opts.GPUsPerNode, opts.GPUTaint); err != nil {
			_ = c.delete()
			return nil, err
		}
	}
	return c, nil
}

// kwokctl runs kwokctl with the cluster's name and work directory and returns
// its combined output.
func (c *Cluster) kwokctl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(BinDir(), "kwokctl"), append([]string{"--name", c.Name}, args...)...)
	bin := BinDir()
	cmd.Env = append(os.Environ(),
		"KWOK_WORKDIR="+c.Workdir,
		// kwokctl picks component flags by these versions; it runs kubectl
		// to tell when the API server serves.
		"KWOK_KUBE_VERSION="+KubeVersion,
		"KWOK_ETCD_VERSION="+EtcdVersion,
		"KWOK_KUBECTL_BINARY="+filepath.Join(bin, "kubectl"),
	)
	return cmd.CombinedOutput()
}

// delete stops the cluster's processes and removes its work directory.
func (c *Cluster) delete() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.kwokctl(ctx, "delete", "cluster")
	if err != nil {
		return fmt.Errorf("delete test cluster %s: %w\n%s", c.Name, err, out)
	}
	return os.RemoveAll(c.Workdir)
}

// logTails logs the last lines of each component's log, to tell why a test
// on the cluster failed.
func (c *Cluster) logTails(t testing.TB) {
	var b strings.Builder
	c.writeLogTails(&b)
	t.Log(b.String())
}

// writeLogTails writes the last 15 lines of each component's log to w.
func (c *Cluster) writeLogTails(w io.Writer) {
	logs, _ := filepath.Glob(filepath.Join(c.Workdir, "clusters", c.Name, "logs", "*.log"))
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(w, "test cluster %s: last lines of %s:\n%s\n", c.Name, filepath.Base(l), strings.Join(lines, "\n"))
	}
}

func (c *Cluster) addNodes(ctx context.Context, n, gpus int, taint bool) ([]string, error) {
	cs, err := kubernetes.NewForConfig(c.config)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	first := c.nodes
	c.nodes += n
	c.mu.Unlock()
	var names []string
	for i := first; i < first+n; i++ {
		node := fakeNode(fmt.Sprintf("kwok-node-%d", i), gpus, taint)
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return names, fmt.Errorf("create node %s: %w", node.Name, err)
		}
		names = append(names, node.Name)
	}
	for _, name := range names {
		if err := waitNodeReady(ctx, cs, name); err != nil {
			return names, err
		}
	}
	return names, nil
}

// fakeNode returns a Node that kwok manages (annotation kwok.x-k8s.io/node)
// with the given GPU count.
func fakeNode(name string, gpus int, taint bool) *corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(NodeCPU),
		corev1.ResourceMemory: resource.MustParse(NodeMemory),
		corev1.ResourcePods:   resource.MustParse(NodePods),
	}
	labels := map[string]string{
		"kubernetes.io/hostname": name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     "amd64",
		"type":                   "kwok",
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: labels,
			Annotations: map[string]string{
				"kwok.x-k8s.io/node":           "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
		},
	}
	if gpus > 0 {
		res[GPUResource] = *resource.NewQuantity(int64(gpus), resource.DecimalSI)
		labels["nvidia.com/gpu.present"] = "true"
		labels["nvidia.com/gpu.count"] = strconv.Itoa(gpus)
		if taint {
			node.Spec.Taints = []corev1.Taint{GPUTaint}
		}
	}
	node.Status.Allocatable = res
	node.Status.Capacity = res.DeepCopy()
	return node
}

// waitNodeReady waits until the node is Ready and the node lifecycle
// controller has lifted its not-ready taint, so the scheduler places pods on
// it.
func waitNodeReady(ctx context.Context, cs kubernetes.Interface, name string) error {
	var last string
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		ready := false
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			last = "not Ready"
			return false, nil
		}
		for _, taint := range node.Spec.Taints {
			if taint.Key == corev1.TaintNodeNotReady || taint.Key == corev1.TaintNodeUnreachable {
				last = "still tainted " + taint.Key
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("node %s did not become Ready (%s): %w; is the kwok controller running?", name, last, err)
	}
	return nil
}

// waitServiceAccount waits until the service account controller has made the
// namespace's default ServiceAccount; the API server rejects pods before.
func waitServiceAccount(ctx context.Context, cs kubernetes.Interface, ns string) error {
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("no default ServiceAccount in namespace %s (is kube-controller-manager running?): %w", ns, err)
	}
	return nil
}

// stagesConfig returns the kwok Stages of hack/cluster/stages as one
// multi-document YAML file, found by walking up from the working directory
// (go test runs in the package's directory inside the repository).
func stagesConfig() ([]byte, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for {
		stages := filepath.Join(dir, "hack", "cluster", "stages")
		if files, _ := filepath.Glob(filepath.Join(stages, "*.yaml")); len(files) > 0 {
			sort.Strings(files)
			var buf bytes.Buffer
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					return nil, err
				}
				buf.WriteString("---\n")
				buf.Write(data)
				if !bytes.HasSuffix(data, []byte("\n")) {
					buf.WriteByte('\n')
				}
			}
			return buf.Bytes(), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, errors.New("hack/cluster/stages not found above the working directory: run the tests from inside the petrel repository")
		}
		dir = parent
	}
}

// workRoot is where clusters' work directories live:
// $TMPDIR/petrel-kwok/NAME.
func workRoot() string { return filepath.Join(os.TempDir(), "petrel-kwok") }

// reapOrphans deletes clusters whose test binary died without cleaning up
// (killed by go test's -timeout, say), so their processes do not pile up.
func reapOrphans() {
	dirs, _ := filepath.Glob(filepath.Join(workRoot(), "petrel-*"))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		c := &Cluster{Name: filepath.Base(dir), Workdir: dir}
		if err := c.delete(); err != nil {
			fmt.Fprintf(os.Stderr, "cluster: reap orphaned test cluster: %v\n", err)
		}
	}
}

// processAlive reports whether pid runs; a zombie (state Z in /proc/PID/stat,
// left when no init reaps it) counts as dead.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// lockFile takes an exclusive flock on path, shared by all test binaries on
// the machine, and returns the function that releases it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
