package diagnose

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
)

// signatureLogs are last log lines as the runtimes print them (wording from
// the sources named in each catalogue entry and the public reports cited),
// each with the signature it must be recognised as and a line the finding
// must quote.
var signatureLogs = []struct {
	id, quote string
	lines     []string
}{
	{"gpu-out-of-memory", "Tried to allocate 2.00 GiB", []string{
		"Traceback (most recent call last):",
		`  File "/workspace/train.py", line 88, in <module>`,
		"    loss.backward()",
		"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.15 GiB of which 1.02 GiB is free.",
	}},
	{"nccl-timeout", "Watchdog caught collective operation timeout", []string{
		"[rank3]:[E ProcessGroupNCCL.cpp:616] [Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1204, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=1800000) ran for 1800088 milliseconds before timing out.",
		"[rank3]:[E ProcessGroupNCCL.cpp:1537] [PG 0 Rank 3] Process group watchdog thread terminated with exception",
	}},
	{"nccl-shm-too-small", "Error while creating shared memory segment", []string{
		"worker-1:45:60 [0] include/shm.h:28 NCCL WARN Call to posix_fallocate failed : No space left on device",
		"worker-1:45:60 [0] include/shm.h:48 NCCL WARN Error while creating shared memory segment /dev/shm/nccl-4Gk2lB (size 9637888)",
		"RuntimeError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1269, unhandled system error, NCCL version 2.14.3",
	}},
	{"shm-too-small", "Bus error", []string{
		"ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory (shm).",
		"RuntimeError: DataLoader worker (pid 125) is killed by signal: Bus error. It is possible that dataloader's workers are out of shared memory.",
	}},
	{"nccl-system-error", "unhandled system error", []string{
		"RuntimeError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1191, unhandled system error, NCCL version 2.10.3",
		"ncclSystemError: System call (e.g. socket, malloc) or external library call failed or device error.",
	}},
	{"rendezvous-peer-not-ready", "Name or service not known", []string{
		"[W socket.cpp:663] [c10d] The client socket has failed to connect to [pytorchjob-master-0]:23456 (errno: 22 - Invalid argument).",
		"torch.distributed.elastic.rendezvous.api.RendezvousConnectionError: The connection to the C10d store has failed.",
		"socket.gaierror: [Errno -2] Name or service not known",
	}},
	{"torch-elastic-child-failed", "exitcode : 1", []string{
		"torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
		"============================================================",
		"train.py FAILED",
		"------------------------------------------------------------",
		"Root Cause (first observed failure):",
		"[0]:",
		"  time      : 2026-11-28_10:02:11",
		"  host      : trainer-worker-0",
		"  rank      : 1 (local_rank: 1)",
		"  exitcode  : 1 (pid: 61)",
		"  error_file: <N/A>",
	}},
	{"file-not-found", "No such file or directory", []string{
		"loading model from /models/digits.json",
		"cannot load model /models/digits.json: [Errno 2] No such file or directory: '/models/digits.json'; run the training job first",
	}},
	{"port-in-use", "Address already in use", []string{
		"INFO:     Started server process [1]",
		"ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 8000): address already in use",
		"OSError: [Errno 98] Address already in use",
	}},
	{"process-killed", "Killed", []string{
		"RuntimeError: DataLoader worker (pid 2071) is killed by signal: Killed.",
	}},
	{"python-exception", "KeyError: 'label'", []string{
		"Traceback (most recent call last):",
		`  File "/app/train.py", line 41, in <module>`,
		"    y = batch['label']",
		"KeyError: 'label'",
	}},
	{"gpu-not-visible", "Found no NVIDIA driver", []string{
		"RuntimeError: Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed a driver from http://www.nvidia.com/Download/index.aspx",
	}},
}

func TestREADMENamesEverySignature(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range logPatterns {
		if !strings.Contains(string(readme), "`"+p.ID+"`") {
			t.Errorf("README's diagnose section does not name signature %s", p.ID)
		}
	}
}

func TestEverySignatureHasAnExample(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range signatureLogs {
		seen[s.id] = true
	}
	for _, p := range logPatterns {
		if !seen[p.ID] {
			t.Errorf("signature %s has no example log in signatureLogs", p.ID)
		}
		if p.Source == "" || p.Fix == "" || !strings.Contains(p.Message, "{who}") {
			t.Errorf("signature %s needs a source, a fix and {who} in its message", p.ID)
		}
	}
}

// TestSignaturesOnEveryTarget recognises each signature the same way in a
// local job attempt's LogTail, a local replica's LogTail and a pod's saved
// logs, and quotes the line that carries the cause.
func TestSignaturesOnEveryTarget(t *testing.T) {
	for _, s := range signatureLogs {
		t.Run(s.id, func(t *testing.T) {
			code := int32(1)
			a := attempt(0, 1, backend.ReasonError, "")
			a.LogTail = s.lines
			job := backend.Job{Name: "train", Phase: backend.JobRunning, Spec: v1alpha1.TrainingJobSpec{BackoffLimit: i32(3)},
				Attempts: []backend.Attempt{a}, Failed: 1}
			hasQuote(t, "local job", AnalyzeJob(job), s.id, s.quote)

			svc := backend.Service{Name: "serve", DesiredReplicas: 1,
				Replicas: []backend.Replica{{Index: 0, Name: "serve-0", Phase: "BackOff", Restarts: 3, LastReason: "Error", LogTail: s.lines}}}
			hasQuote(t, "local service", AnalyzeService(svc), s.id, s.quote)

			pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "train-abcde", Namespace: "ml"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "train", Image: "pytorch"}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "train", RestartCount: 3,
					State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: "Error"}}}}}}
			st := &State{Pods: []corev1.Pod{pod}, Logs: []ContainerLog{{Namespace: "ml", Pod: pod.Name, Container: "train", Previous: true, Lines: s.lines}}}
			hasQuote(t, "pod", Analyze(st, ref("pod", pod.Name)), s.id, s.quote)
		})
	}
}

func hasQuote(t *testing.T, target string, fs []backend.Finding, id, quote string) {
	t.Helper()
	for _, f := range fs {
		if f.RuleID != id {
			continue
		}
		if !strings.Contains(f.Message, quote) && !strings.Contains(strings.Join(f.Evidence, "\n"), quote) {
			t.Errorf("%s: %s does not quote %q:\n%s", target, id, quote, findingText(f))
		}
		if !strings.Contains(strings.Join(f.Evidence, "\n"), "(cause): ") {
			t.Errorf("%s: %s evidence does not mark the cause line:\n%s", target, id, findingText(f))
		}
		return
	}
	t.Errorf("%s: no %s finding; got:\n%s", target, id, dump(fs))
}

// TestMissingModelIsNotAProbeProblem is bug 9 of issue 12: a local replica
// killed by its startup probe because the model file is missing must be
// diagnosed from its log (file-not-found, permanent), not as a probe
// problem with advice to raise thresholds or to run kubectl.
func TestMissingModelIsNotAProbeProblem(t *testing.T) {
	svc := backend.Service{Name: "digits-serve", DesiredReplicas: 1,
		Spec: v1alpha1.InferenceServiceSpec{StartupProbe: &v1alpha1.Probe{}},
		Replicas: []backend.Replica{{Index: 0, Name: "digits-serve-0", Phase: "BackOff", Restarts: 4, LastReason: "StartupProbeFailed",
			LogTail: []string{
				"serving digits on 127.0.0.1:41235",
				"cannot load model /home/u/.petrel/volumes/digits-models/digits.json: [Errno 2] No such file or directory: '/home/u/.petrel/volumes/digits-models/digits.json'; run the training job first (petrel train -f examples/digits/train.yaml)",
			}}},
		Events: []backend.Event{{Type: "Warning", Reason: "Unhealthy", Message: "Startup probe failed: HTTP probe failed with statuscode: 503"},
			{Type: "Warning", Reason: "Killing", Message: "Container failed startup probe, will be restarted"}},
	}
	fs := AnalyzeService(svc)
	hasFinding(t, fs, "file-not-found", true, "digits.json", "No such file or directory", "run the training job", "petrel logs service/digits-serve")
	if len(fs) == 0 || fs[0].RuleID != "file-not-found" {
		t.Errorf("the log's cause does not lead:\n%s", dump(fs))
	}
	for _, f := range fs {
		text := strings.ToLower(f.Message + " " + f.Fix)
		if f.RuleID == "liveness-probe-restarts" || strings.Contains(text, "failurethreshold") || strings.Contains(text, "kubectl") {
			t.Errorf("probe advice or kubectl on the local engine: %s", findingText(f))
		}
	}
}

// TestProbeFindingLocallyNamesPetrelLogs: without a stated cause the probe
// finding stands, but tells a local user to read petrel logs, not kubectl.
func TestProbeFindingLocallyNamesPetrelLogs(t *testing.T) {
	svc := backend.Service{Name: "slow", DesiredReplicas: 1,
		Replicas: []backend.Replica{{Index: 0, Name: "slow-0", Restarts: 2, LastReason: "LivenessProbeFailed", LogTail: []string{"loading weights 40%"}}}}
	fs := AnalyzeService(svc)
	hasFinding(t, fs, "liveness-probe-restarts", true, "petrel logs service/slow")
	for _, f := range fs {
		if strings.Contains(f.Fix, "kubectl") {
			t.Errorf("local fix names kubectl: %s", f.Fix)
		}
	}
}

// TestLocalCrashQuotesTheLog: without a known signature, a local crash
// still quotes the last lines it printed, as the Kubernetes path quotes
// kubectl logs --previous.
func TestLocalCrashQuotesTheLog(t *testing.T) {
	a := attempt(0, 3, backend.ReasonError, "")
	a.LogTail = []string{"epoch 1", "checkpoint dir /ckpt is read-only, giving up"}
	j := backend.Job{Name: "train", Phase: backend.JobRunning, Spec: v1alpha1.TrainingJobSpec{BackoffLimit: i32(3)}, Attempts: []backend.Attempt{a}}
	hasFinding(t, AnalyzeJob(j), "crash-loop", false, "log attempt 0: checkpoint dir /ckpt is read-only, giving up")
	svc := backend.Service{Name: "serve", DesiredReplicas: 1, Replicas: []backend.Replica{{Index: 0, Name: "serve-0", Restarts: 2, LastReason: "Error",
		LogTail: []string{"listening", "config key 'model' missing, giving up"}}}}
	hasFinding(t, AnalyzeService(svc), "crash-loop", false, "log replica serve-0: config key 'model' missing, giving up")
}

// TestRendezvousNameFromObjects: a worker whose MASTER_ADDR names no
// Service or pod of its namespace is told the address is wrong
// (permanent); with the name present it is the start-order race.
func TestRendezvousNameFromObjects(t *testing.T) {
	svc := func(name string) corev1.Service {
		return corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kubeflow"}}
	}
	s := loadCase(t, "C20.yaml")
	s.Services = []corev1.Service{svc("mnist-headless")}
	s.Pods = s.Pods[:1] // the master pod is gone too
	hasFinding(t, Analyze(s, ref("pod", "mnist-worker-0")), "rendezvous-name-not-found", true, `"mnist-master-0"`, "mnist-headless")

	s = loadCase(t, "C20.yaml")
	s.Services = []corev1.Service{svc("mnist-master-0")}
	hasFinding(t, Analyze(s, ref("pod", "mnist-worker-0")), "rendezvous-peer-not-ready", false, "MASTER_ADDR")
}
