package diagnose

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
)

// corpusCase is a real public failure report written afresh as a state
// dump (testdata/corpus, each file's header gives its source, root cause,
// fix and tempting wrong answers) with the finding it must produce and
// the advice that must be absent.
type corpusCase struct {
	file, class string
	target      backend.Ref
	rule        string
	object      string
	permanent   bool
	// words must all appear in the finding's message, evidence or fix.
	words []string
	// wrong are the tempting wrong answers: no finding's fix may match.
	wrong []*regexp.Regexp
}

// Failure classes of the corpus, as the README's figures name them.
const (
	classGPUMemory   = "GPU memory"
	classSharedMem   = "shared memory (/dev/shm)"
	classModelFile   = "model or data file missing"
	classDistributed = "distributed training (NCCL, rendezvous, torchrun)"
	classPort        = "port in use"
	classStorage     = "storage (claims, classes, provisioners)"
	classProgram     = "program error (Python exception)"
	classScheduling  = "scheduling (GPU and CPU requests, affinity)"
	classDevice      = "GPU device plugin"
	classHostMemory  = "host memory (OOM kill)"
	classAutoscaling = "autoscaling (HPA metrics)"
	classImages      = "images (pull errors)"
	classRollout     = "Deployment rollout"
)

var (
	corpusWait          = regexp.MustCompile(`(?i)(^|[.;:] )wait\b|\bwait (for|until)\b|will (schedule|start|bind) when|retry later`)
	corpusRaiseDeadline = regexp.MustCompile(`(?i)\b(raise|increase|extend)\b[^.;]*\b(deadline|timeout|max_restarts|backoffLimit)\b`)
	corpusRaiseProbe    = regexp.MustCompile(`(?i)\b(raise|increase)\b[^.;]*\b(failureThreshold|initialDelaySeconds|periodSeconds)\b`)
	corpusRaiseMemory   = regexp.MustCompile(`(?i)\b(raise|increase)\b[^.;]*\bmemory (limit|request)`)
	corpusLowerRequest  = regexp.MustCompile(`(?i)\blower\b[^.;]*\brequest\b`)
)

var corpus = []corpusCase{
	{file: "N01.yaml", class: classModelFile, target: ref("pod", "sklearn-iris-predictor-7d9c6b8f5-k2x8q"), rule: "file-not-found",
		object: "Pod/sklearn-iris-predictor-7d9c6b8f5-k2x8q", permanent: true, words: []string{"/mnt/models", "No such file or directory"},
		wrong: []*regexp.Regexp{corpusWait, corpusRaiseProbe}},
	{file: "N02.yaml", class: classSharedMem, target: ref("pod", "hugging-model-predictor-5c86c57756-p7ghj"), rule: "nccl-shm-too-small",
		object: "Pod/hugging-model-predictor-5c86c57756-p7ghj", permanent: true, words: []string{"/dev/shm", "medium: Memory"},
		wrong: []*regexp.Regexp{corpusRaiseMemory}},
	{file: "N03.yaml", class: classSharedMem, target: ref("pod", "resnet-worker-0"), rule: "nccl-shm-too-small",
		object: "Pod/resnet-worker-0", permanent: true, words: []string{"shared memory segment", "medium: Memory"},
		wrong: []*regexp.Regexp{corpusRaiseMemory, corpusRaiseDeadline}},
	{file: "N04.yaml", class: classGPUMemory, target: ref("pod", "llm-raycluster-worker-gpu-group-x7c2d"), rule: "gpu-out-of-memory",
		object: "Pod/llm-raycluster-worker-gpu-group-x7c2d", permanent: true, words: []string{"Tried to allocate 1.59 GiB"},
		wrong: []*regexp.Regexp{corpusRaiseMemory, corpusWait}},
	{file: "N05.yaml", class: classGPUMemory, target: ref("pod", "text-generation-inference"), rule: "gpu-out-of-memory",
		object: "Pod/text-generation-inference", permanent: true, words: []string{"CUDA out of memory"},
		wrong: []*regexp.Regexp{corpusRaiseMemory}},
	{file: "N06.yaml", class: classPort, target: ref("pod", "elastic-resnet-worker-1"), rule: "port-in-use",
		object: "Pod/elastic-resnet-worker-1", permanent: true, words: []string{"Address already in use", "port"},
		wrong: []*regexp.Regexp{corpusWait, corpusRaiseDeadline}},
	{file: "N07.yaml", class: classStorage, rule: "pvc-unbound",
		object: "PersistentVolumeClaim/minio-pv-claim", permanent: true, words: []string{"no storage class", "default"},
		wrong: []*regexp.Regexp{corpusWait}},
	{file: "N08.yaml", class: classStorage, rule: "pvc-unbound",
		object: "PersistentVolumeClaim/volumeop-sequential-w8gjk-newpvc", permanent: true, words: []string{"ReadWriteMany"},
		wrong: []*regexp.Regexp{corpusWait, corpusLowerRequest}},
	{file: "N09.yaml", class: classDistributed, target: ref("pod", "sft-worker-0"), rule: "nccl-timeout",
		object: "Pod/sft-worker-0", permanent: false, words: []string{"Watchdog caught collective operation timeout", "rank"},
		wrong: []*regexp.Regexp{corpusRaiseDeadline}},
	{file: "N10.yaml", class: classDistributed, target: ref("pod", "grpo-worker-0"), rule: "torch-elastic-child-failed",
		object: "Pod/grpo-worker-0", permanent: false, words: []string{"exitcode : -9", "SIGKILL"},
		wrong: []*regexp.Regexp{corpusWait}},
	{file: "N11.yaml", class: classModelFile, target: ref("pod", "flower-sample-predictor-default-00001-deployment-5db9d7d9fgqfn4"), rule: "file-not-found",
		object: "Pod/flower-sample-predictor-default-00001-deployment-5db9d7d9fgqfn4", permanent: true, words: []string{"Could not find base path /mnt/models"},
		wrong: []*regexp.Regexp{corpusWait, corpusRaiseProbe, regexp.MustCompile(`(?i)still loading its model this passes`)}},
	{file: "N12.yaml", class: classProgram, target: ref("pod", "vllm-deployment-8577b94b74-fhx85"), rule: "python-exception",
		object: "Pod/vllm-deployment-8577b94b74-fhx85", permanent: false, words: []string{"environment variable RANK expected"},
		wrong: []*regexp.Regexp{corpusWait}},
	{file: "N13.yaml", class: classScheduling, target: ref("pod", "gpu-pod"), rule: "gpu-request-exceeds-nodes",
		object: "Pod/gpu-pod", permanent: true, words: []string{"2 nvidia.com/gpu", "largest node has 1"},
		wrong: []*regexp.Regexp{corpusWait}},
	{file: "N14.yaml", class: classDevice, target: ref("pod", "gpu-pod"), rule: "gpu-not-advertised",
		object: "Pod/gpu-pod", permanent: true, words: []string{"no node advertises nvidia.com/gpu", "device plugin"},
		wrong: []*regexp.Regexp{corpusWait, corpusLowerRequest}},
	{file: "N15.yaml", class: classDevice, rule: "daemonset-not-scheduled",
		object: "DaemonSet/nvdp-nvidia-device-plugin", permanent: true, words: []string{"nvidia.com/gpu.present"},
		wrong: []*regexp.Regexp{corpusWait}},
	{file: "N16.yaml", class: classScheduling, target: ref("pod", "devpod-de-a-gpu"), rule: "pod-affinity-mismatch",
		object: "Pod/devpod-de-a-gpu", permanent: true, words: []string{"devpod-default-de-a-d7206", "cpu-1"},
		wrong: []*regexp.Regexp{corpusWait}},
	{file: "N17.yaml", class: classScheduling, target: ref("pod", "egl-desktop-0"), rule: "resource-request-exceeds-nodes",
		object: "Pod/egl-desktop-0", permanent: true, words: []string{"16 cpu", "15"},
		wrong: []*regexp.Regexp{corpusWait}},
	{file: "N18.yaml", class: classHostMemory, target: ref("pod", "vllm-deployment-router-6b9f7c8d5-tq4lm"), rule: "oom-killed",
		object: "Pod/vllm-deployment-router-6b9f7c8d5-tq4lm", permanent: true, words: []string{"500Mi"},
		wrong: []*regexp.Regexp{corpusWait}},
	{file: "N19.yaml", class: classAutoscaling, target: ref("hpa", "php-apache-test"), rule: "hpa-metrics-unavailable",
		object: "HorizontalPodAutoscaler/php-apache-test", permanent: false, words: []string{"metrics-server", "no metrics returned"},
		wrong: []*regexp.Regexp{regexp.MustCompile(`(?i)add resources\.requests`), regexp.MustCompile(`(?i)raise maxReplicas`)}},
	{file: "N20.yaml", class: classImages, target: ref("pod", "meta-llama3-8b-instruct-pod"), rule: "image-pull-unauthorized",
		object: "Pod/meta-llama3-8b-instruct-pod", permanent: true, words: []string{"authentication required", "imagePullSecrets"},
		wrong: []*regexp.Regexp{corpusWait}},
	{file: "N21.yaml", class: classDevice, target: ref("pod", "tf-notebook-747db6987b-86zts"), rule: "gpu-not-advertised",
		object: "Pod/tf-notebook-747db6987b-86zts", permanent: true, words: []string{"no node advertises nvidia.com/gpu"},
		wrong: []*regexp.Regexp{corpusWait, regexp.MustCompile(`(?i)node-role\.kubernetes\.io/master`)}},
	{file: "N22.yaml", class: classDevice, target: ref("pod", "gpu-pod"), rule: "gpu-not-advertised",
		object: "Pod/gpu-pod", permanent: true, words: []string{"no node advertises nvidia.com/gpu"},
		wrong: []*regexp.Regexp{corpusWait, corpusLowerRequest}},
	{file: "N23.yaml", class: classImages, target: ref("pod", "nvidia-dra-driver-kubelet-plugin-8kq2x"), rule: "image-pull-unauthorized",
		object: "Pod/nvidia-dra-driver-kubelet-plugin-8kq2x", permanent: true, words: []string{"401 Unauthorized", "imagePullSecrets"},
		wrong: []*regexp.Regexp{corpusWait}},
	{file: "N24.yaml", class: classSharedMem, target: ref("pod", "xinference-worker-0"), rule: "nccl-system-error",
		object: "Pod/xinference-worker-0", permanent: true, words: []string{"unhandled system error", "/dev/shm"},
		wrong: []*regexp.Regexp{corpusLowerRequest}},
	{file: "N25.yaml", class: classGPUMemory, target: ref("pod", "tfjob-rice-worker-1"), rule: "gpu-out-of-memory",
		object: "Pod/tfjob-rice-worker-1", permanent: true, words: []string{"Internal: out of memory", "GPU with more memory"},
		wrong: []*regexp.Regexp{corpusRaiseMemory}},
	{file: "N26.yaml", class: classHostMemory, target: ref("pod", "learner-1"), rule: "process-killed",
		object: "Pod/learner-1", permanent: true, words: []string{"Killed", "memory limit"},
		wrong: []*regexp.Regexp{corpusWait}},
	{file: "N27.yaml", class: classRollout, target: ref("deployment", "staging-stt-nemotron-deployment"), rule: "rollout-stuck",
		object: "Deployment/staging-stt-nemotron-deployment", permanent: false, words: []string{"progressDeadlineSeconds", "startupProbe allows 1500s"},
		wrong: []*regexp.Regexp{regexp.MustCompile(`(?i)^roll back`)}},
	{file: "N28.yaml", class: classDistributed, target: ref("pod", "ptbgzsfnj-n0-0-raycluster-xg6hj-worker-test-group-5kbn5"), rule: "rendezvous-name-not-found",
		object: "Pod/ptbgzsfnj-n0-0-raycluster-xg6hj-worker-test-group-5kbn5", permanent: true,
		words: []string{"al94lnxh5ktptbgzsfnj-n0-0-raycluster-xg6hj-head-svc", "l94lnxh5ktptbgzsfnj-n0-0-raycluster-xg6hj-head-svc"},
		wrong: []*regexp.Regexp{regexp.MustCompile(`(?i)init container that waits until`)}},
	{file: "N29.yaml", class: classDistributed, target: ref("job", "minicpm-lora"), rule: "torch-elastic-child-failed",
		object: "Pod/minicpm-lora-x8k2p", permanent: false, words: []string{"exitcode : -9", "memory limit"},
		wrong: []*regexp.Regexp{corpusWait}},
	{file: "N30.yaml", class: classStorage, target: ref("pvc", "katib-mysql"), rule: "pvc-unbound",
		object: "PersistentVolumeClaim/katib-mysql", permanent: true, words: []string{"katib does not exist"},
		wrong: []*regexp.Regexp{corpusWait, regexp.MustCompile(`(?i)default StorageClass`), regexp.MustCompile(`(?i)restart|delete the pod`)}},
}

func loadCorpus(t *testing.T, file string) *State { return loadDump(t, "corpus", file, false) }

// judgeCorpus says what is wrong with the findings for c, or "" when
// they give the right root cause and fix without a tempting wrong answer.
func judgeCorpus(c corpusCase, got []backend.Finding) string {
	var match *backend.Finding
	for i := range got {
		if got[i].RuleID == c.rule && got[i].Object == c.object {
			match = &got[i]
			break
		}
	}
	if match == nil {
		var ids []string
		for _, f := range got {
			ids = append(ids, f.RuleID+" "+f.Object)
		}
		return "no " + c.rule + " on " + c.object + "; got [" + strings.Join(ids, ", ") + "]"
	}
	if match.Permanent != c.permanent {
		return "wrong permanence"
	}
	text := match.Message + "\n" + strings.Join(match.Evidence, "\n") + "\n" + match.Fix
	for _, w := range c.words {
		if !strings.Contains(text, w) {
			return "finding lacks " + w
		}
	}
	for _, f := range got {
		for _, re := range c.wrong {
			if re.MatchString(f.Fix) {
				return f.RuleID + " advises " + re.FindString(f.Fix)
			}
		}
	}
	return ""
}

// TestCorpus replays the public reports of testdata/corpus. The files
// carry their source URL, root cause, fix and tempting wrong answers.
func TestCorpus(t *testing.T) {
	for _, c := range corpus {
		t.Run(strings.TrimSuffix(c.file, ".yaml")+"/"+c.rule, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "corpus", c.file))
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range []string{"# Source: https://", "# Root cause: ", "# Fix: ", "# Tempting wrong answers: "} {
				if !strings.Contains(string(data), h) {
					t.Errorf("%s lacks the header line %q", c.file, h)
				}
			}
			if why := judgeCorpus(c, Analyze(loadCorpus(t, c.file), c.target)); why != "" {
				t.Error(why)
			}
		})
	}
}
