package diagnose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/petrel-dev/petrel/internal/backend"
)

// objectsOf turns a saved case into API objects for client-go's fake
// clientset, so Collect's listing glue reads back what a live cluster with
// that state would hold. (Against a real API server: collect_cluster_test.go.)
func objectsOf(t *testing.T, file string) []runtime.Object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "cases", file))
	if err != nil {
		t.Fatal(err)
	}
	s := loadString(t, string(data))
	var objs []runtime.Object
	for i := range s.Pods {
		objs = append(objs, &s.Pods[i])
	}
	for i := range s.Events {
		objs = append(objs, &s.Events[i])
	}
	for i := range s.Nodes {
		objs = append(objs, &s.Nodes[i])
	}
	for i := range s.Jobs {
		objs = append(objs, &s.Jobs[i])
	}
	for i := range s.Deployments {
		objs = append(objs, &s.Deployments[i])
	}
	for i := range s.DaemonSets {
		objs = append(objs, &s.DaemonSets[i])
	}
	for i := range s.HorizontalPodAutoscalers {
		objs = append(objs, &s.HorizontalPodAutoscalers[i])
	}
	for i := range s.ResourceQuotas {
		objs = append(objs, &s.ResourceQuotas[i])
	}
	for i := range s.PersistentVolumeClaims {
		objs = append(objs, &s.PersistentVolumeClaims[i])
	}
	return objs
}

func TestCollectWithFakeClientset(t *testing.T) {
	ctx := context.Background()
	t.Run("job with events and quota", func(t *testing.T) {
		cs := fake.NewClientset(objectsOf(t, "C08.yaml")...)
		fs, err := Diagnose(ctx, cs, "default", backend.Ref{Kind: "job", Name: "notebook-task"})
		if err != nil {
			t.Fatal(err)
		}
		hasFinding(t, fs, "quota-requires-resources", true, "default-quota")
	})
	t.Run("deployment's HPA", func(t *testing.T) {
		cs := fake.NewClientset(objectsOf(t, "C09.yaml")...)
		s, err := Collect(ctx, cs, "seldon", backend.Ref{Kind: "service", Name: "tf-model"})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Deployments) != 1 || len(s.HorizontalPodAutoscalers) != 1 || len(s.Events) != 2 {
			t.Fatalf("collected %d deployments, %d HPAs, %d events", len(s.Deployments), len(s.HorizontalPodAutoscalers), len(s.Events))
		}
		hasFinding(t, Analyze(s, backend.Ref{Kind: "service", Name: "tf-model"}), "hpa-metrics-unavailable", true, "tfserving")
	})
	t.Run("hpa target reads its scale target", func(t *testing.T) {
		cs := fake.NewClientset(objectsOf(t, "C09.yaml")...)
		fs, err := Diagnose(ctx, cs, "seldon", backend.Ref{Kind: "hpa", Name: "tf-model"})
		if err != nil {
			t.Fatal(err)
		}
		hasFinding(t, fs, "hpa-metrics-unavailable", true, "tfserving")
		if _, err := Diagnose(ctx, cs, "seldon", backend.Ref{Kind: "hpa", Name: "nope"}); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("unknown HPA: error = %v, want ErrNotFound", err)
		}
	})
	t.Run("pvc target reads the pods that mount it", func(t *testing.T) {
		cs := fake.NewClientset(objectsOf(t, "C15.yaml")...)
		fs, err := Diagnose(ctx, cs, "kserve-test", backend.Ref{Kind: "pvc", Name: "task-pv-claim"})
		if err != nil {
			t.Fatal(err)
		}
		hasFinding(t, fs, "volume-multi-attach", true, "model-store-pod")
	})
	t.Run("crashed container's logs are read", func(t *testing.T) {
		cs := fake.NewClientset(objectsOf(t, "C18.yaml")...)
		s, err := Collect(ctx, cs, "kserve", backend.Ref{Kind: "pod", Name: "bert-v2-predictor-00003-abcde"})
		if err != nil {
			t.Fatal(err)
		}
		// The fake clientset answers every log request with "fake logs".
		if len(s.Logs) != 1 || !s.Logs[0].Previous || s.Logs[0].Container != "kserve-container" || len(s.Logs[0].Lines) != 1 {
			t.Fatalf("logs = %+v", s.Logs)
		}
	})
	t.Run("device plugin in another namespace", func(t *testing.T) {
		cs := fake.NewClientset(objectsOf(t, "C02.yaml")...)
		fs, err := Diagnose(ctx, cs, "default", backend.Ref{Kind: "pod", Name: "train-gpu"})
		if err != nil {
			t.Fatal(err)
		}
		hasFinding(t, fs, "gpu-not-advertised", true, "DaemonSet kube-system/nvidia-device-plugin-daemonset")
	})
	t.Run("missing target", func(t *testing.T) {
		cs := fake.NewClientset()
		_, err := Collect(ctx, cs, "default", backend.Ref{Kind: "job", Name: "nope"})
		if !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("error = %v, want ErrNotFound", err)
		}
	})
	t.Run("deleted job with events is not an error", func(t *testing.T) {
		cs := fake.NewClientset(objectsOf(t, "C14.yaml")...)
		fs, err := Diagnose(ctx, cs, "ml", backend.Ref{Kind: "job", Name: "finetune-llm"})
		if err != nil {
			t.Fatal(err)
		}
		hasFinding(t, fs, "job-deleted", true, "ttlSecondsAfterFinished")
	})
}
