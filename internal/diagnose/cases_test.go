package diagnose

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
)

var reQuoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// caseWant is the finding a recorded case must produce.
type caseWant struct {
	file      string
	target    backend.Ref
	rule      string
	object    string
	permanent bool
	// words must all appear in the message, evidence or fix.
	words []string
	// first asks that this is the first finding (the root cause leads).
	first bool
}

// The diagnose cases of ../shared/cases/failure-cases.md, replayed from
// saved state in testdata/cases.
var cases = []caseWant{
	{file: "C01.yaml", target: ref("pod", "cuda-train"), rule: "gpu-request-exceeds-nodes", object: "Pod/cuda-train", permanent: true, first: true,
		words: []string{"asks for 2 nvidia.com/gpu but the largest node has 1", "never schedule", "Insufficient nvidia.com/gpu", "split the work"}},
	{file: "C02.yaml", rule: "gpu-not-advertised", object: "Pod/train-gpu", permanent: true,
		words: []string{"alpha.kubernetes.io/nvidia-gpu", "taint nvidia.com/gpu:NoSchedule is not tolerated", "tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]"}},
	{file: "C02.yaml", rule: "daemonset-not-scheduled", object: "DaemonSet/nvidia-device-plugin-daemonset", permanent: true,
		words: []string{"device plugin", "no node advertises GPUs", "key: nvidia.com/gpu"}},
	{file: "C02.yaml", rule: "gpu-legacy-resource", object: "Node/gpu-node-1", permanent: true,
		words: []string{"deprecated alpha.kubernetes.io/nvidia-gpu"}},
	{file: "C03.yaml", rule: "daemonset-not-scheduled", object: "DaemonSet/nvidia-device-plugin", permanent: true,
		words: []string{"required node affinity", "nvidia.com/gpu.present", "gfd.enabled", "every GPU pod stays Pending"}},
	{file: "C03.yaml", target: ref("pod", "llm-train-0"), rule: "gpu-not-advertised", object: "Pod/llm-train-0", permanent: true,
		words: []string{"no node advertises nvidia.com/gpu", "DaemonSet nvidia-device-plugin/nvidia-device-plugin", "node(s) node1, node2"}},
	{file: "C04.yaml", rule: "untolerated-taint", object: "Pod/llm-kvcache-0", permanent: true, first: true,
		words: []string{"requests no GPU", "nvidia.com/gpu=present:NoSchedule", "key: nvidia.com/gpu, operator: Exists", "CPU-only"}},
	{file: "C04.yaml", rule: "crash-loop", object: "Pod/llm-model-7d9f-abcde",
		words: []string{"restarted 13 times", "vineyard.sock", "Pod/llm-kvcache-0 cannot start (untolerated-taint)", "downstream"}},
	{file: "C05.yaml", target: ref("service", "training"), rule: "untolerated-taint", object: "Pod/training-6c9d8f7b5-x2x9q", permanent: true, first: true,
		words: []string{"requests a GPU but does not tolerate", "autoscaler", "NotTriggerScaleUp", "operator: Exists, effect: NoSchedule"}},
	{file: "C05-snippet.yaml", target: ref("service", "training"), rule: "untolerated-taint", object: "Pod/training-6c9d8f7b5-x2x9q", permanent: true, first: true,
		words: []string{"requests a GPU but does not tolerate", "NotTriggerScaleUp"}},
	{file: "C08.yaml", target: ref("job", "notebook-task"), rule: "quota-requires-resources", object: "Job/notebook-task", permanent: true, first: true,
		words: []string{"has no pods", "default-quota", "limits.cpu,limits.memory,requests.cpu,requests.memory", "LimitRange"}},
	{file: "C09.yaml", target: ref("service", "tf-model"), rule: "hpa-metrics-unavailable", object: "HorizontalPodAutoscaler/tf-model", permanent: true, first: true,
		words: []string{"container tfserving of Deployment tf-model", "<unknown>", "requests.cpu", "ContainerResource"}},
	{file: "C10.yaml", rule: "hpa-flapping", object: "HorizontalPodAutoscaler/worker",
		words: []string{"up and back down", "stabilizationWindowSeconds", "New size: 7", "readiness probe"}},
	{file: "C11.yaml", target: ref("job", "train"), rule: "shm-too-small", object: "Pod/train-8xk2v", permanent: true, first: true,
		words: []string{"/dev/shm", "Bus error", "medium: Memory", "num_workers=0"}},
	{file: "C11.yaml", target: ref("job", "train"), rule: "job-backoff-limit-exceeded", object: "Job/train", permanent: true,
		words: []string{"backoffLimit 0"}},
	{file: "C12.yaml", target: ref("job", "failed-job"), rule: "job-restarting-in-place", object: "Job/failed-job",
		words: []string{"restartPolicy OnFailure", "4 restarts", "status.failed stays 0", "restartPolicy: Never", "activeDeadlineSeconds"}},
	{file: "C13.yaml", target: ref("job", "nightly-train-1551540600"), rule: "job-backoff-limit-exceeded", object: "Job/nightly-train-1551540600", permanent: true, first: true,
		words: []string{"logs are gone", "restartPolicy OnFailure", "Deleted pod: nightly-train-1551540600-kb4lm", "restartPolicy: Never"}},
	{file: "C14.yaml", target: ref("job", "finetune-llm"), rule: "job-deleted", object: "Job/finetune-llm", permanent: true, first: true,
		words: []string{"ttlSecondsAfterFinished", "logs", "BackoffLimitExceeded", "3600"}},
	{file: "C15.yaml", rule: "volume-multi-attach", object: "Pod/sklearn-pvc-predictor-00001-deployment-7c6d5f8b9-abcde", permanent: true, first: true,
		words: []string{"ReadWriteOnce", "model-store-pod", "claim task-pv-claim", "node node-a", "ReadWriteMany"}},
	{file: "C16.yaml", rule: "liveness-probe-restarts", object: "Pod/triton-inference-server-5f7b8c9d6-qwert", permanent: true, first: true,
		words: []string{"liveness probe fails, not because the program crashes", "nothing listens", "startupProbe", "failed liveness probe, will be restarted", "--previous"}},
	{file: "C18.yaml", target: ref("pod", "bert-v2-predictor-00003-abcde"), rule: "oom-killed", object: "Pod/bert-v2-predictor-00003-abcde", permanent: true, first: true,
		words: []string{"OOM-killed", "limit of 500Mi", "exitCode 137", "Reading SavedModel", "model's size"}},
	{file: "C20.yaml", target: ref("pod", "mnist-worker-0"), rule: "rendezvous-peer-not-ready", object: "Pod/mnist-worker-0", first: true,
		words: []string{"MASTER_ADDR", "master pod mnist-master-0 is not Ready", "ContainerCreating", "Name or service not known", "init container"}},
}

func ref(kind, name string) backend.Ref { return backend.Ref{Kind: kind, Name: name} }

func loadCase(t *testing.T, file string) *State { return loadDump(t, "cases", file, true) }

// loadDump reads the state dump testdata/DIR/FILE; strict fails the test
// on loader warnings.
func loadDump(t *testing.T, dir, file string, strict bool) *State {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", dir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, warnings, err := Load(f, file)
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	if strict && len(warnings) > 0 {
		t.Errorf("load %s: unexpected warnings %q", file, warnings)
	}
	return s
}

func findingText(f backend.Finding) string {
	return f.Message + "\n" + strings.Join(f.Evidence, "\n") + "\n" + f.Fix
}

func TestRecordedCases(t *testing.T) {
	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.file, ".yaml")+"/"+tc.rule, func(t *testing.T) {
			got := Analyze(loadCase(t, tc.file), tc.target)
			var match *backend.Finding
			for i := range got {
				if got[i].RuleID == tc.rule && got[i].Object == tc.object {
					match = &got[i]
					break
				}
			}
			if match == nil {
				t.Fatalf("no %s finding for %s; got:\n%s", tc.rule, tc.object, dump(got))
			}
			if match.Permanent != tc.permanent {
				t.Errorf("permanent = %v, want %v", match.Permanent, tc.permanent)
			}
			text := findingText(*match)
			for _, w := range tc.words {
				if !strings.Contains(text, w) {
					t.Errorf("finding lacks %q:\n%s", w, text)
				}
			}
			if tc.first && (got[0].RuleID != tc.rule || got[0].Object != tc.object) {
				t.Errorf("root cause is not first; got:\n%s", dump(got))
			}
			if match.Message == "" || match.Fix == "" || len(match.Evidence) == 0 {
				t.Errorf("finding needs message, evidence and fix: %+v", *match)
			}
			// A quoted log line is the program's text, not a sentence of ours.
			if strings.Count(strings.TrimSuffix(reQuoted.ReplaceAllString(match.Message, `"…"`), "."), ". ") > 0 {
				t.Errorf("message is more than one sentence: %q", match.Message)
			}
		})
	}
}

func TestHealthyStateHasNoFindings(t *testing.T) {
	s := loadCase(t, "../healthy.yaml")
	for _, target := range []backend.Ref{{}, ref("job", "digits-train"), ref("service", "digits-serve"), ref("pod", "digits-serve-7b9c-aaaaa")} {
		if got := Analyze(s, target); len(got) != 0 {
			t.Errorf("target %v: false positives:\n%s", target, dump(got))
		}
	}
}

func dump(fs []backend.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.RuleID + " " + f.Object + ": " + f.Message + "\n")
		for _, e := range f.Evidence {
			b.WriteString("      " + e + "\n")
		}
	}
	return b.String()
}
