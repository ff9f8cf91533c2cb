package kube_test

// The petrel commands, unchanged, on --target kubernetes against the test
// cluster: what a user types, through the factory's target registry.

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/root"
	"github.com/petrel-dev/petrel/internal/kube"
	"github.com/petrel-dev/petrel/internal/spec"
	"github.com/petrel-dev/petrel/test/cluster"
)

type result struct {
	out, errOut string
	err         error
}

// petrel runs one petrel command line on the Kubernetes target.
func petrel(t *testing.T, c *cluster.Cluster, ns string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	f := &factory.Factory{IO: &factory.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}}
	cmd := root.NewCmd(f)
	cmd.SetArgs(append(args, "--target", "kubernetes", "--kubeconfig", c.Kubeconfig, "-n", ns))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return result{out.String(), errOut.String(), err}
}

func TestCommandsOnKubernetesTarget(t *testing.T) {
	t.Parallel()
	c := cluster.Start(t, cluster.Options{Nodes: 2, GPUNodes: 1, GPUsPerNode: 2, GPUTaint: true})
	ns := c.Namespace(t, "cli")

	// train: applies, follows, exits 0 on Complete.
	docs, err := spec.ParseFile("../../examples/digits/train.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kube.ProvideVolumes(t, c.Client(t), ns, docs)
	r := petrel(t, c, ns, "train", "-f", "../../examples/digits/train.yaml")
	if r.err != nil {
		t.Fatalf("train digits: %v\nstderr:\n%s", r.err, r.errOut)
	}
	t.Logf("train digits:\nstdout:\n%s\nstderr:\n%s", r.out, r.errOut)
	for _, want := range []string{"job/digits-train created", "persistentvolumeclaim/digits-data created"} {
		if !strings.Contains(r.errOut, want) {
			t.Errorf("train stderr lacks %q:\n%s", want, r.errOut)
		}
	}
	// A second train runs the finished job again (a new Job, one attempt).
	r = petrel(t, c, ns, "train", "-f", "../../examples/digits/train.yaml")
	if r.err != nil || !strings.Contains(r.errOut, "job/digits-train created") {
		t.Fatalf("second train: %v\nstderr:\n%s", r.err, r.errOut)
	}

	// train of a job whose attempts fail exits 1 with the reason.
	r = petrel(t, c, ns, "train", "-f", "testdata/failing-job.yaml")
	var ec interface{ ExitCode() int }
	if !errors.As(r.err, &ec) || ec.ExitCode() != 1 {
		t.Fatalf("train failing job: err %v, want exit code 1\nstderr:\n%s", r.err, r.errOut)
	}
	if !strings.Contains(r.err.Error()+r.errOut, "BackoffLimitExceeded") {
		t.Errorf("train failing job does not give the reason: %v\n%s", r.err, r.errOut)
	}

	// get lists both jobs with their status.
	r = petrel(t, c, ns, "get", "jobs")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, want := range []string{"digits-train", "Complete", "always-fails", "Failed"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("get jobs lacks %q:\n%s", want, r.out)
		}
	}

	// describe lists the attempts with exit codes and the reason.
	r = petrel(t, c, ns, "describe", "job", "always-fails")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !strings.Contains(r.out, "BackoffLimitExceeded") || strings.Count(r.out, "Error") < 3 {
		t.Errorf("describe does not show 3 failed attempts and the reason:\n%s", r.out)
	}

	// delete removes the job; get then says it is not found.
	if r = petrel(t, c, ns, "delete", "job", "always-fails"); r.err != nil {
		t.Fatal(r.err)
	}
	if r = petrel(t, c, ns, "get", "jobs", "always-fails"); r.err == nil || !strings.Contains(r.err.Error(), "not found") {
		t.Errorf("get after delete: %v, want not found", r.err)
	}

	// serve waits for the rollout and prints where the service is reached.
	r = petrel(t, c, ns, "serve", "-f", "testdata/fixed-service.yaml", "--timeout", "2m")
	if r.err != nil || !strings.Contains(r.out, "http://echo."+ns+".svc:8000") {
		t.Fatalf("serve: %v\nstdout:\n%s\nstderr:\n%s", r.err, r.out, r.errOut)
	}
	if r = petrel(t, c, ns, "get", "services"); r.err != nil || !strings.Contains(r.out, "3/3") {
		t.Errorf("get services: %v\n%s", r.err, r.out)
	}
	if r = petrel(t, c, ns, "scale", "service", "echo", "--replicas", "1"); r.err != nil {
		t.Errorf("scale: %v\n%s", r.err, r.errOut)
	}

	// render needs no cluster at all.
	r = petrel(t, c, ns, "render", "-f", "../../examples/digits/serve.yaml")
	if r.err != nil || !strings.Contains(r.out, "kind: HorizontalPodAutoscaler") || !strings.Contains(r.out, "namespace: "+ns) {
		t.Errorf("render: %v\n%s", r.err, r.out)
	}
}
