package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
)

func init() {
	factory.RegisterTarget("kubernetes", func(ctx context.Context, f *factory.Factory) (backend.Backend, error) {
		return New(Config{Kubeconfig: f.Kubeconfig, Context: f.Context, Namespace: f.Namespace})
	})
}

// Default client rate limits: those of kubectl (client-go's own defaults,
// 5 QPS and a burst of 10, make a 1,000-job submission take minutes).
const (
	DefaultQPS   = 50
	DefaultBurst = 300
)

// Config says which cluster and namespace to use, following kubectl's
// conventions: Kubeconfig (--kubeconfig) else $KUBECONFIG (a list of files
// merged) else ~/.kube/config; Context (--context) else the current
// context; Namespace (-n) else the context's namespace else "default".
type Config struct {
	Kubeconfig string
	Context    string
	Namespace  string
	// QPS and Burst are the client-side rate limits (requests per second
	// and burst size); zero takes DefaultQPS / DefaultBurst, a negative
	// QPS turns client-side limiting off (as in client-go).
	QPS   float32
	Burst int
	// REST, when set, is used instead of loading a kubeconfig (tests).
	REST *rest.Config
	// DryRun sends every apply with dryRun=All: the API server validates,
	// defaults and admits the objects but stores nothing
	// (kubectl apply --dry-run=server).
	DryRun bool
}

var _ backend.Backend = (*Backend)(nil)

// Backend implements backend.Backend on a Kubernetes cluster.
type Backend struct {
	cs         kubernetes.Interface
	rest       *rest.Config
	ns         string
	nsExplicit bool
	dryRun     bool
	source     string // kubeconfig path(s), for errors

	mu       sync.Mutex
	meta     metadata.Interface
	served   map[string]bool   // "group/version/resource" → served
	placedIn map[string]string // "kind/name" → namespace a spec placed it in
}

// New connects to the cluster cfg names. It does not contact the cluster:
// the first call that does reports an unreachable server clearly.
func New(cfg Config) (*Backend, error) {
	b := &Backend{served: map[string]bool{}, placedIn: map[string]string{}}
	rc := cfg.REST
	if rc == nil {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = cfg.Kubeconfig
		overrides := &clientcmd.ConfigOverrides{CurrentContext: cfg.Context}
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
		b.source = strings.Join(rules.GetLoadingPrecedence(), string(filepathListSeparator))
		if cfg.Kubeconfig != "" {
			b.source = cfg.Kubeconfig
		}
		var err error
		rc, err = cc.ClientConfig()
		if err != nil {
			if clientcmd.IsEmptyConfig(err) {
				return nil, fmt.Errorf("no Kubernetes cluster configured (looked in %s): pass --kubeconfig, set KUBECONFIG, or use --target local", b.source)
			}
			return nil, fmt.Errorf("load kubeconfig %s: %w (check --kubeconfig and --context)", b.source, err)
		}
		ns, _, err := cc.Namespace()
		if err != nil {
			return nil, fmt.Errorf("read the namespace of the kubeconfig context: %w", err)
		}
		b.ns = ns
	} else {
		rc = rest.CopyConfig(rc)
		b.source = "(in-process configuration)"
		b.ns = "default"
	}
	if cfg.Namespace != "" {
		b.ns, b.nsExplicit = cfg.Namespace, true
	}
	b.dryRun = cfg.DryRun
	rc.QPS, rc.Burst = cfg.QPS, cfg.Burst
	if rc.QPS == 0 {
		rc.QPS = DefaultQPS
	}
	if rc.Burst == 0 {
		rc.Burst = DefaultBurst
	}
	// Protobuf halves the time to decode large lists (get over 10,000 jobs).
	rc.ContentType = runtime.ContentTypeProtobuf
	rc.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	if rc.UserAgent == "" {
		rc.UserAgent = "petrel"
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("build a Kubernetes client for %s: %w", rc.Host, err)
	}
	b.cs, b.rest = cs, rc
	return b, nil
}

const filepathListSeparator = ':'

// Namespace is the namespace the backend reads and, unless a spec names
// another, writes.
func (b *Backend) Namespace() string { return b.ns }

// Client returns the clientset (for diagnose and tests).
func (b *Backend) Client() kubernetes.Interface { return b.cs }

// nsFor returns the namespace of a workload: -n when given, else where an
// Apply of this backend put it, else the context's namespace.
func (b *Backend) nsFor(kind, name string) string {
	if b.nsExplicit {
		return b.ns
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ns, ok := b.placedIn[kind+"/"+name]; ok {
		return ns
	}
	return b.ns
}

// explain turns a client error into one sentence with the fix: cluster
// unreachable (server URL and kubeconfig named), RBAC forbidden (verb and
// resource named), not found (wrapping backend.ErrNotFound). verb is the
// Kubernetes verb (get, list, watch, create, patch, delete), resource the
// plural resource with its group ("jobs.batch").
func (b *Backend) explain(err error, verb, resource, ns, name string) error {
	if err == nil {
		return nil
	}
	what := resource
	if name != "" {
		what = resource + " " + name
	}
	var se *apierrors.StatusError
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("RBAC forbids %s on %s in namespace %q: %s; ask a cluster admin for a Role granting %q on %q, or use another --context",
			verb, resource, ns, statusMessage(err), verb, resource)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the API server at %s rejected petrel's credentials from %s (401 Unauthorized); refresh them (e.g. log in again) or use another --context", b.rest.Host, b.source)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s not found in namespace %q: %w", what, ns, backend.ErrNotFound)
	case errors.As(err, &se): // the server answered (even if it could not reach a kubelet)
		return fmt.Errorf("%s %s in namespace %q: %s", verb, what, ns, se.ErrStatus.Message)
	case unreachable(err):
		return fmt.Errorf("cannot reach the Kubernetes API server at %s (from %s): %v; check that the cluster is running and that --kubeconfig/--context point at it", b.rest.Host, b.source, rootCause(err))
	}
	return fmt.Errorf("%s %s in namespace %q: %w", verb, what, ns, err)
}

func statusMessage(err error) string {
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		return se.ErrStatus.Message
	}
	return err.Error()
}

// unreachable reports whether err means no API server answered.
func unreachable(err error) bool {
	var ne net.Error
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return true
	}
	if errors.As(err, &ue) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "no such host") || strings.Contains(s, "i/o timeout")
}

// rootCause returns the network error under a client error (it names the
// address dialled), or err itself.
func rootCause(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe
	}
	return err
}
