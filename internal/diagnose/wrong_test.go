package diagnose

import (
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
)

// The tempting wrong answers: advice that sounds right for the symptom but
// cannot help when the evidence shows the problem is permanent or
// elsewhere.
var (
	adviceWait          = regexp.MustCompile(`(?i)(^|[.;:] )wait\b|\bwait (for|until)\b|will (schedule|start|bind) when|retry later|try again later`)
	adviceRaiseDeadline = regexp.MustCompile(`(?i)\b(raise|increase|extend)\b[^.;]*\b(activeDeadlineSeconds|progressDeadlineSeconds|deadline|timeout)\b`)
	adviceRaiseProbe    = regexp.MustCompile(`(?i)\b(raise|increase|add)\b[^.;]*\b(failureThreshold|initialDelaySeconds|periodSeconds|startupProbe)\b`)
	adviceRaiseMemory   = regexp.MustCompile(`(?i)\b(raise|increase)\b[^.;]*\bmemory (limit|request)`)
	adviceLowerRequest  = regexp.MustCompile(`(?i)\blower\b[^.;]*\brequest\b`)
)

func noAdvice(t *testing.T, fs []backend.Finding, wrong ...*regexp.Regexp) {
	t.Helper()
	for _, f := range fs {
		for _, re := range wrong {
			if re.MatchString(f.Fix) {
				t.Errorf("%s on %s gives the tempting wrong answer %q: %s", f.RuleID, f.Object, re.FindString(f.Fix), f.Fix)
			}
		}
	}
}

// TestRecordedCasesGiveNoWrongAnswer: where the root cause is permanent,
// no finding of the same analysis advises waiting; where it is not about
// size, none advises lowering a request.
func TestRecordedCasesGiveNoWrongAnswer(t *testing.T) {
	wrong := map[string][]*regexp.Regexp{
		"C01.yaml": {adviceWait},                     // more GPUs than any node: never
		"C02.yaml": {adviceWait, adviceLowerRequest}, // device plugin not running
		"C03.yaml": {adviceWait, adviceLowerRequest}, // device plugin matches no node
		"C04.yaml": {adviceWait, adviceLowerRequest}, // taint, not size
		"C05.yaml": {adviceWait, adviceLowerRequest},
		"C08.yaml": {adviceWait},                             // quota requires requests
		"C09.yaml": {adviceWait},                             // HPA metric never computable
		"C11.yaml": {adviceRaiseMemory, adviceRaiseDeadline}, // /dev/shm, not the memory limit
		"C15.yaml": {adviceWait, adviceLowerRequest},         // volume held by a running pod
	}
	for _, tc := range cases {
		re, ok := wrong[tc.file]
		if !ok {
			continue
		}
		t.Run(strings.TrimSuffix(tc.file, ".yaml")+"/"+tc.rule, func(t *testing.T) {
			noAdvice(t, Analyze(loadCase(t, tc.file), tc.target), re...)
		})
	}
}

// TestNoWrongAnswerWhenTheLogStatesTheCause covers the classes where the
// symptom (a deadline, a probe, an OOM, a timeout) tempts the wrong knob.
func TestNoWrongAnswerWhenTheLogStatesTheCause(t *testing.T) {
	t.Run("local job that crashed until its deadline", func(t *testing.T) {
		a0 := attempt(0, 1, backend.ReasonError, "")
		a0.LogTail = []string{"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB."}
		j := backend.Job{Name: "train", Phase: backend.JobFailed, Attempts: []backend.Attempt{a0, attempt(1, 137, backend.ReasonDeadlineExceeded, "")},
			Spec:       v1alpha1.TrainingJobSpec{BackoffLimit: i32(6), ActiveDeadlineSeconds: new(int64)},
			Conditions: []backend.Condition{{Type: backend.ConditionFailed, Status: "True", Reason: backend.ReasonDeadlineExceeded}}}
		fs := AnalyzeJob(j)
		hasFinding(t, fs, "gpu-out-of-memory", true)
		hasFinding(t, fs, "job-deadline-exceeded", true, "failed before it")
		noAdvice(t, fs, adviceRaiseDeadline, adviceRaiseMemory)
	})
	t.Run("cluster Job whose pods crashed until its deadline", func(t *testing.T) {
		dl := int64(600)
		job := jobObject("train", &dl, batchv1JobFailed("DeadlineExceeded"))
		pod := crashedPod("train-x1", "Job", "train", 1, "Error")
		st := &State{Jobs: []batchv1.Job{job}, Pods: []corev1.Pod{pod},
			Logs: []ContainerLog{{Pod: "train-x1", Container: "main", Previous: true, Lines: []string{"KeyError: 'label'"}}}}
		fs := Analyze(st, ref("job", "train"))
		hasFinding(t, fs, "job-deadline-exceeded", true, "kept failing")
		noAdvice(t, fs, adviceRaiseDeadline)
	})
	t.Run("server killed by its liveness probe while the model file is missing", func(t *testing.T) {
		pod := crashedPod("serve-x1", "ReplicaSet", "serve-6d8f", 137, "Error")
		pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{}
		st := &State{Pods: []corev1.Pod{pod},
			Events: []corev1.Event{{InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "serve-x1", Namespace: "ml"}, Reason: "Killing",
				Message: "Container main failed liveness probe, will be restarted"}},
			Logs: []ContainerLog{{Pod: "serve-x1", Container: "main", Previous: true, Lines: []string{
				"OSError: Can't load the model: FileNotFoundError: [Errno 2] No such file or directory: '/mnt/models/config.json'"}}}}
		fs := Analyze(st, ref("pod", "serve-x1"))
		if len(fs) == 0 || fs[0].RuleID != "file-not-found" {
			t.Errorf("want file-not-found first; got:\n%s", dump(fs))
		}
		noAdvice(t, fs, adviceRaiseProbe)
	})
	t.Run("rollout stuck on a server that cannot bind its port", func(t *testing.T) {
		pod := crashedPod("serve-6d8f-x1", "ReplicaSet", "serve-6d8f", 1, "Error")
		d := appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "serve", Namespace: "ml"},
			Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}}}}
		st := &State{Deployments: []appsv1.Deployment{d}, Pods: []corev1.Pod{pod},
			Logs: []ContainerLog{{Pod: pod.Name, Container: "main", Previous: true, Lines: []string{"OSError: [Errno 98] Address already in use"}}}}
		fs := Analyze(st, ref("deployment", "serve"))
		hasFinding(t, fs, "port-in-use", true)
		hasFinding(t, fs, "rollout-stuck", false)
		noAdvice(t, fs, adviceRaiseDeadline, adviceWait)
	})
	t.Run("NCCL watchdog timeout", func(t *testing.T) {
		pod := crashedPod("train-worker-1", "Job", "train", 1, "Error")
		st := &State{Pods: []corev1.Pod{pod}, Logs: []ContainerLog{{Pod: pod.Name, Container: "main", Previous: true, Lines: []string{
			"[Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=88, OpType=ALLREDUCE, Timeout(ms)=600000) ran for 600372 milliseconds before timing out."}}}}
		fs := Analyze(st, ref("pod", pod.Name))
		hasFinding(t, fs, "nccl-timeout", false)
		noAdvice(t, fs, adviceRaiseDeadline)
	})
	t.Run("CUDA OOM is not host memory", func(t *testing.T) {
		pod := crashedPod("train-x2", "Job", "train", 1, "Error")
		st := &State{Pods: []corev1.Pod{pod}, Logs: []ContainerLog{{Pod: pod.Name, Container: "main", Previous: true, Lines: []string{
			"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 15.77 GiB of which 3.12 MiB is free."}}}}
		fs := Analyze(st, ref("pod", pod.Name))
		hasFinding(t, fs, "gpu-out-of-memory", true)
		noAdvice(t, fs, adviceRaiseMemory)
	})
	t.Run("local GPU wait is the one honest wait", func(t *testing.T) {
		// Waiting is right when the finding names what will change.
		j := backend.Job{Name: "train", Phase: backend.JobPending, Waiting: &backend.Waiting{Reason: backend.WaitingForGPUs, GPUsRequested: 2, GPUsFree: 1, Message: "waiting for 2 GPUs, 1 free"}}
		hasFinding(t, AnalyzeJob(j), "gpu-busy", false, "release")
	})
}

// crashedPod is a pod of owner whose container "main" crash-loops with
// the given last exit code and reason.
func crashedPod(name, ownerKind, owner string, code int32, reason string) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ml", Labels: map[string]string{"job-name": owner},
		OwnerReferences: []metav1.OwnerReference{{Kind: ownerKind, Name: owner, Controller: ptrTrue()}}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "main", Image: "trainer:1",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"memory": resource.MustParse("8Gi")}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "main", RestartCount: 4,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason}}}}}}
}

func ptrTrue() *bool { b := true; return &b }

func jobObject(name string, deadline *int64, cond batchv1.JobCondition) batchv1.Job {
	return batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ml"},
		Spec:   batchv1.JobSpec{ActiveDeadlineSeconds: deadline},
		Status: batchv1.JobStatus{Failed: 1, Conditions: []batchv1.JobCondition{cond}}}
}

func batchv1JobFailed(reason string) batchv1.JobCondition {
	return batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: reason}
}
