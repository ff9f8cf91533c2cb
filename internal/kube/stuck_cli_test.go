package kube_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/petrel-dev/petrel/test/cluster"
)

// TestTrainStopsWhenTheClaimsClassDoesNotExist: train of a job mounting a
// Volume whose StorageClass does not exist exits 1 with the storage
// finding instead of following a pod that stays Pending for ever; so do
// train of the digits example (claims without a class, no default class)
// and serve of a service mounting such a Volume. The
// bound is the command's own context (3 minutes, see petrel); the check
// runs every 5 s and needs two sightings, so it stops in seconds.
func TestTrainStopsWhenTheClaimsClassDoesNotExist(t *testing.T) {
	t.Parallel()
	c := cluster.Start(t, cluster.Options{Nodes: 1})
	ns := c.Namespace(t, "stuck")

	start := time.Now()
	r := petrel(t, c, ns, "train", "-f", "testdata/unknown-class-job.yaml")
	took := time.Since(start)
	var ec interface{ ExitCode() int }
	if !errors.As(r.err, &ec) || ec.ExitCode() != 1 {
		t.Fatalf("train: err %v, want exit code 1 (after %s)\nstderr:\n%s", r.err, took, r.errOut)
	}
	t.Logf("train stopped after %s:\n%s\n%v", took, r.errOut, r.err)
	if took > 2*time.Minute {
		t.Errorf("train took %s to stop", took)
	}
	if !strings.Contains(r.err.Error(), "will not start by waiting") || !strings.Contains(r.err.Error(), "pvc-unbound") {
		t.Errorf("the reason does not name the storage finding: %v", r.err)
	}
	for _, want := range []string{"rule pvc-unbound, PersistentVolumeClaim/scratch", "storage class fast-ssd does not exist", "(permanent: will not resolve by waiting)"} {
		if !strings.Contains(r.errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.errOut)
		}
	}
	// The job is left for describe and delete.
	if _, err := c.Client(t).BatchV1().Jobs(ns).Get(context.Background(), "needs-fast-ssd", metav1.GetOptions{}); err != nil {
		t.Errorf("the job is gone: %v", err)
	}

	// The issue's own case: the digits example on a cluster without a
	// default StorageClass (the test cluster has none), whose claims name
	// no class.
	ns = c.Namespace(t, "stuck-digits")
	start = time.Now()
	r = petrel(t, c, ns, "train", "-f", "../../examples/digits/train.yaml")
	took = time.Since(start)
	if !errors.As(r.err, &ec) || ec.ExitCode() != 1 {
		t.Fatalf("train digits: err %v, want exit code 1 (after %s)\nstderr:\n%s", r.err, took, r.errOut)
	}
	t.Logf("train digits stopped after %s: %v", took, r.err)
	if took > 2*time.Minute || !strings.Contains(r.err.Error(), "pvc-unbound") || !strings.Contains(r.errOut, "no storage class") {
		t.Errorf("train digits: after %s: %v\n%s", took, r.err, r.errOut)
	}

	// serve stops the same way, well before its --timeout.
	ns = c.Namespace(t, "stuck-serve")
	start = time.Now()
	r = petrel(t, c, ns, "serve", "-f", "testdata/unknown-class-service.yaml", "--timeout", "2m")
	took = time.Since(start)
	if !errors.As(r.err, &ec) || ec.ExitCode() != 1 {
		t.Fatalf("serve: err %v, want exit code 1 (after %s)\nstderr:\n%s", r.err, took, r.errOut)
	}
	t.Logf("serve stopped after %s: %v", took, r.err)
	if strings.Contains(r.err.Error(), "not ready after") || !strings.Contains(r.err.Error(), "will not become ready by waiting") ||
		!strings.Contains(r.errOut, "storage class fast-ssd does not exist") {
		t.Errorf("serve: after %s: %v\n%s", took, r.err, r.errOut)
	}
}
