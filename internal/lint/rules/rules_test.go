package rules_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
	"github.com/petrel-dev/petrel/internal/lint/rules"
)

// job wraps container YAML (indented for a containers list item) in a
// batch Job with everything else right, so one rule is under test.
func job(containers string, extra ...string) string {
	return `apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  backoffLimit: 1
` + strings.Join(extra, "") + `  template:
    spec:
      restartPolicy: Never
      containers:
` + containers
}

func deployment(replicas int, podSpec string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  replicas: %d
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec:
%s`, replicas, podSpec)
}

const petrelHeader = "apiVersion: petrel.dev/v1alpha1\n"

// gang is a 2-pod Job ddp (completionMode mode, pod subdomain sub) whose
// workers rendezvous at MASTER_ADDR addr, with a Service ddp of clusterIP ip.
func gang(mode, sub, addr, ip string) string {
	subdomain := ""
	if sub != "" {
		subdomain = "      subdomain: " + sub + "\n"
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: ddp}
spec:
  clusterIP: %s
  selector: {job: ddp}
  ports: [{port: 29500}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: ddp}
spec:
  completionMode: %s
  completions: 2
  parallelism: 2
  backoffLimit: 0
  template:
    metadata: {labels: {job: ddp}}
    spec:
      restartPolicy: Never
%s      containers:
      - name: w
        image: i:1
        command: [python3, train.py]
        env: [{name: MASTER_ADDR, value: %q}]
`, ip, mode, subdomain, addr)
}

func TestRules(t *testing.T) {
	tests := []struct {
		name     string
		rule     string
		yaml     string
		want     int              // findings of rule
		severity backend.Severity // checked when set
		contains string           // in the first finding's message when set
	}{
		// GPU-001: requests only, for every extended resource.
		{"amd gpu under requests only", "PTL-GPU-001", job("      - {name: c, image: i:1, resources: {requests: {amd.com/gpu: 1}}}\n"), 1, backend.SeverityError, "amd.com/gpu under requests only"},
		{"gpu under limits and requests", "PTL-GPU-001", job("      - {name: c, image: i:1, resources: {requests: {nvidia.com/gpu: 1}, limits: {nvidia.com/gpu: 1}}}\n"), 0, "", ""},
		{"init container gpu under requests only", "PTL-GPU-001", `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers: [{name: warm, image: i:1, resources: {requests: {nvidia.com/gpu: 1}}}]
  containers: [{name: c, image: i:1}]
`, 1, "", `"warm"`},
		// GPU-002
		{"request differs from limit", "PTL-GPU-002", job("      - {name: c, image: i:1, resources: {requests: {nvidia.com/gpu: 1}, limits: {nvidia.com/gpu: 2}}}\n"), 1, backend.SeverityError, "requests 1 nvidia.com/gpu but limits it to 2"},
		{"cpu request differs from limit is fine", "PTL-GPU-002", job("      - {name: c, image: i:1, resources: {requests: {cpu: 1}, limits: {cpu: 2}}}\n"), 0, "", ""},
		// GPU-003
		{"bare gpu key", "PTL-GPU-003", job("      - {name: c, image: i:1, resources: {limits: {gpu: 1}}}\n"), 1, backend.SeverityError, "GPUs are nvidia.com/gpu"},
		{"misspelt nvidia.com/gpus", "PTL-GPU-003", job("      - {name: c, image: i:1, resources: {limits: {nvidia.com/gpus: 1}}}\n"), 1, backend.SeverityWarning, "did you mean nvidia.com/gpu"},
		{"legacy alpha key", "PTL-GPU-003", job("      - {name: c, image: i:1, resources: {limits: {alpha.kubernetes.io/nvidia-gpu: 1}}}\n"), 1, backend.SeverityError, "legacy"},
		{"known accelerators", "PTL-GPU-003", job("      - {name: c, image: i:1, resources: {limits: {nvidia.com/mig-1g.5gb: 1, amd.com/gpu: 1, google.com/tpu: 4, hugepages-2Mi: 1Gi, ephemeral-storage: 1Gi}}}\n"), 0, "", ""},
		// GPU-004
		{"half a gpu", "PTL-GPU-004", job("      - {name: c, image: i:1, resources: {limits: {nvidia.com/gpu: 0.5}}}\n"), 1, backend.SeverityError, "0.5"},
		{"500m gpu", "PTL-GPU-004", job("      - {name: c, image: i:1, resources: {limits: {nvidia.com/gpu: 500m}}}\n"), 1, "", "500m"},
		{"whole gpus", "PTL-GPU-004", job("      - {name: c, image: i:1, resources: {limits: {nvidia.com/gpu: 2}}}\n"), 0, "", ""},
		// GPU-005
		{"gpu without toleration", "PTL-GPU-005", job("      - {name: c, image: i:1, resources: {limits: {nvidia.com/gpu: 1}}}\n"), 1, backend.SeverityWarning, ""},
		{"tolerate-everything toleration", "PTL-GPU-005", deployment(1, "      tolerations: [{operator: Exists}]\n      containers: [{name: c, image: i:1, resources: {limits: {nvidia.com/gpu: 1}}}]\n"), 0, "", ""},
		{"Equal toleration with value", "PTL-GPU-005", deployment(1, "      tolerations: [{key: nvidia.com/gpu, operator: Equal, value: present, effect: NoSchedule}]\n      containers: [{name: c, image: i:1, resources: {limits: {nvidia.com/gpu: 1}}}]\n"), 0, "", ""},
		{"NoExecute-only toleration", "PTL-GPU-005", deployment(1, "      tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoExecute}]\n      containers: [{name: c, image: i:1, resources: {limits: {nvidia.com/gpu: 1}}}]\n"), 1, "", ""},
		{"mig slice needs nvidia toleration", "PTL-GPU-005", deployment(1, "      containers: [{name: c, image: i:1, resources: {limits: {nvidia.com/mig-1g.5gb: 1}}}]\n"), 1, "", "nvidia.com/gpu:NoSchedule"},
		// GPU-006
		{"device plugin by image", "PTL-GPU-006", `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: gpu-plugin}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: p, image: nvcr.io/nvidia/k8s-device-plugin:v0.15.0}]
`, 1, "", ""},
		{"other daemonset", "PTL-GPU-006", `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-exporter}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: p, image: prom/node-exporter:v1.8.0}]
`, 0, "", ""},
		// QTA-001
		{"bare extended quota key", "PTL-QTA-001", "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {hard: {nvidia.com/gpu: 4, count/pods: 10, requests.nvidia.com/gpu: 4, gold.storageclass.storage.k8s.io/requests.storage: 1Ti}}\n", 1, backend.SeverityError, "is not a quota key"},
		// QTA-002
		{"quota with LimitRange defaults", "PTL-QTA-002", `apiVersion: v1
kind: ResourceQuota
metadata: {name: q, namespace: ml}
spec: {hard: {requests.cpu: 8, limits.memory: 8Gi}}
---
apiVersion: v1
kind: LimitRange
metadata: {name: l, namespace: ml}
spec: {limits: [{type: Container, default: {memory: 1Gi}, defaultRequest: {cpu: 500m}}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ml}
spec: {containers: [{name: c, image: i:1}]}
`, 0, "", ""},
		{"quota in another namespace", "PTL-QTA-002", `apiVersion: v1
kind: ResourceQuota
metadata: {name: q, namespace: other}
spec: {hard: {requests.cpu: 8}}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ml}
spec: {containers: [{name: c, image: i:1}]}
`, 0, "", ""},
		{"limit counts as request", "PTL-QTA-002", `apiVersion: v1
kind: ResourceQuota
metadata: {name: q}
spec: {hard: {cpu: 8, requests.memory: 8Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c, image: i:1, resources: {limits: {cpu: 1}}}]}
`, 1, "", "requires requests.memory"},
		{"petrel job under quota", "PTL-QTA-002", "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {hard: {requests.memory: 8Gi}}\n---\n" + petrelHeader +
			"kind: TrainingJob\nmetadata: {name: t}\nspec: {command: [python3, train.py], resources: {cpu: 1}}\n", 1, "", "requests.memory"},
		// JOB-001/002
		{"cronjob OnFailure", "PTL-JOB-001", `apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: i:1}]
`, 1, "", "default backoffLimit of 6"},
		{"job without restartPolicy", "PTL-JOB-002", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i:1}]\n", 1, backend.SeverityError, "defaults to Always"},
		{"job with Always", "PTL-JOB-002", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Always\n      containers: [{name: c, image: i:1}]\n", 1, "", "not allowed"},
		{"JobSet without restartPolicy is defaulted by its webhook", "PTL-JOB-002", "apiVersion: jobset.x-k8s.io/v1alpha2\nkind: JobSet\nmetadata: {name: js}\nspec:\n  replicatedJobs:\n  - name: w\n    template:\n      spec:\n        template:\n          spec:\n            containers: [{name: c, image: i:1}]\n", 0, "", ""},
		{"JobSet with Always is still rejected", "PTL-JOB-002", "apiVersion: jobset.x-k8s.io/v1alpha2\nkind: JobSet\nmetadata: {name: js}\nspec:\n  replicatedJobs:\n  - name: w\n    template:\n      spec:\n        template:\n          spec:\n            restartPolicy: Always\n            containers: [{name: c, image: i:1}]\n", 1, backend.SeverityError, "not allowed"},
		{"deployment Always is fine", "PTL-JOB-002", deployment(1, "      containers: [{name: c, image: i:1}]\n"), 0, "", ""},
		// JOB-003
		{"gpu job without limits", "PTL-JOB-003", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: i:1, resources: {limits: {nvidia.com/gpu: 1}}}]\n", 1, backend.SeverityWarning, "holding GPUs"},
		{"cpu job without limits is a note", "PTL-JOB-003", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: i:1}]\n", 1, backend.SeverityInfo, ""},
		{"job with deadline only", "PTL-JOB-003", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  activeDeadlineSeconds: 60\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: i:1}]\n", 0, "", ""},
		{"petrel gpu training job without limits", "PTL-JOB-003", petrelHeader + "kind: TrainingJob\nmetadata: {name: t}\nspec: {command: [python3, train.py], resources: {gpu: 1}}\n", 1, backend.SeverityWarning, ""},
		{"petrel distributed job says fail-fast, not 6 retries", "PTL-JOB-003", petrelHeader + "kind: TrainingJob\nmetadata: {name: t}\nspec: {command: [python3, train.py], numNodes: 2}\n", 1, backend.SeverityInfo, "first failing worker fails the job"},
		// JOB-004
		{"ttl zero", "PTL-JOB-004", job("      - {name: c, image: i:1}\n", "  ttlSecondsAfterFinished: 0\n"), 1, "", "the moment it finishes"},
		{"ttl a day", "PTL-JOB-004", job("      - {name: c, image: i:1}\n", "  ttlSecondsAfterFinished: 86400\n"), 0, "", ""},
		{"cronjob keeps no failed jobs", "PTL-JOB-004", `apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: "@daily"
  failedJobsHistoryLimit: 0
  jobTemplate:
    spec:
      backoffLimit: 1
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: i:1}]
`, 1, "", "failedJobsHistoryLimit 0"},
		{"petrel ttl short", "PTL-JOB-004", petrelHeader + "kind: TrainingJob\nmetadata: {name: t}\nspec: {command: [python3, train.py], ttlSecondsAfterFinished: 30}\n", 1, "", "30 s"},
		// KIND-001/002
		{"torchrun deployment", "PTL-KIND-001", deployment(1, "      containers: [{name: c, image: i:1, command: [torchrun, --nproc-per-node=8, main.py]}]\n"), 1, "", "torchrun"},
		{"epochs flag statefulset", "PTL-KIND-001", `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: s}
spec:
  serviceName: s
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: worker, image: i:1, command: [python, main.py], args: [--epochs, "10"]}]
`, 1, "", "--epochs"},
		{"server deployment is not training", "PTL-KIND-001", deployment(1, "      containers: [{name: c, image: i:1, command: [uvicorn, app:api]}]\n"), 0, "", ""},
		{"petrel service running training", "PTL-KIND-001", petrelHeader + "kind: InferenceService\nmetadata: {name: s}\nspec: {command: [python3, finetune_llm.py], port: 8080, readinessProbe: {httpGet: {path: /}}}\n", 1, "", "finetune_llm.py"},
		{"training operator is a controller", "PTL-KIND-001", deployment(1, "      containers: [{name: training-operator, image: kubeflow/training-operator:v1-855e096}]\n"), 0, "", ""},
		{"vllm as a job", "PTL-KIND-002", job("      - {name: c, image: vllm/vllm-openai:v0.5.0, command: [vllm, serve, meta-llama/Llama-3-8B]}\n"), 1, "", "vllm serve"},
		{"service selecting a job", "PTL-KIND-002", `apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  backoffLimit: 1
  template:
    metadata: {labels: {app: api}}
    spec:
      restartPolicy: Never
      containers: [{name: c, image: i:1, command: [./api]}]
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec: {selector: {app: api}, ports: [{port: 80}]}
`, 1, "", "Service api"},
		{"petrel job running a server", "PTL-KIND-002", petrelHeader + "kind: TrainingJob\nmetadata: {name: t}\nspec: {command: [gunicorn, app:app]}\n", 1, "", "gunicorn"},
		{"training job is fine", "PTL-KIND-002", job("      - {name: c, image: i:1, command: [python, train.py]}\n"), 0, "", ""},
		// SRV-001/002/003
		{"petrel service without readiness", "PTL-SRV-001", petrelHeader + "kind: InferenceService\nmetadata: {name: s}\nspec: {command: [python3, serve.py], port: 8080}\n", 1, "", ""},
		{"deployment without ports or service is no server", "PTL-SRV-001", deployment(1, "      containers: [{name: c, image: i:1, command: [./worker]}]\n"), 0, "", ""},
		{"petrel liveness without startup", "PTL-SRV-002", petrelHeader + "kind: InferenceService\nmetadata: {name: s}\nspec: {command: [python3, serve.py], port: 8080, readinessProbe: {httpGet: {path: /r}}, livenessProbe: {httpGet: {path: /l}}}\n", 1, "", ""},
		{"web app liveness without startup is a note", "PTL-SRV-002", deployment(1, "      containers: [{name: c, image: i:1, ports: [{containerPort: 80}], readinessProbe: {httpGet: {path: /, port: 80}}, livenessProbe: {httpGet: {path: /, port: 80}}}]\n"), 1, backend.SeverityInfo, ""},
		{"gpu deployment maxSurge 0", "PTL-SRV-003", `apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 1}}
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: c, image: i:1, resources: {limits: {nvidia.com/gpu: 1}}}]
`, 0, "", ""},
		{"gpu deployment Recreate", "PTL-SRV-003", `apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  strategy: {type: Recreate}
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: c, image: i:1, resources: {limits: {nvidia.com/gpu: 1}}}]
`, 0, "", ""},
		{"gpu deployment maxSurge 1", "PTL-SRV-003", `apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  strategy: {rollingUpdate: {maxSurge: 1}}
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: c, image: i:1, resources: {limits: {nvidia.com/gpu: 1}}}]
`, 1, "", "maxSurge 1"},
		{"petrel gpu service default strategy", "PTL-SRV-003", petrelHeader + "kind: InferenceService\nmetadata: {name: s}\nspec: {command: [python3, serve.py], port: 8080, resources: {gpu: 1}}\n", 1, "", "25%"},
		{"petrel gpu service maxSurge 0", "PTL-SRV-003", petrelHeader + "kind: InferenceService\nmetadata: {name: s}\nspec: {command: [python3, serve.py], port: 8080, resources: {gpu: 1}, strategy: {maxSurge: \"0\", maxUnavailable: \"1\"}}\n", 0, "", ""},
		{"probe on an undeclared named port", "PTL-SRV-004", deployment(1, "      containers: [{name: c, image: i:1, ports: [{containerPort: 8000}], readinessProbe: {httpGet: {path: /ready, port: http}}}]\n"), 1, backend.SeverityError, `port "http"`},
		{"probe on a declared named port", "PTL-SRV-004", deployment(1, "      containers: [{name: c, image: i:1, ports: [{name: http, containerPort: 8000}], readinessProbe: {tcpSocket: {port: http}}}]\n"), 0, "", ""},
		{"service targetPort name not in pods", "PTL-SRV-005", deployment(1, "      containers: [{name: c, image: i:1, ports: [{name: web, containerPort: 8000}], readinessProbe: {httpGet: {path: /, port: web}}}]\n") +
			"---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selector: {app: d}, ports: [{port: 80, targetPort: http}]}\n", 1, backend.SeverityError, `targetPort "http"`},
		{"service targetPort name in pods", "PTL-SRV-005", deployment(1, "      containers: [{name: c, image: i:1, ports: [{name: http, containerPort: 8000}], readinessProbe: {httpGet: {path: /, port: http}}}]\n") +
			"---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selector: {app: d}, ports: [{port: 80, targetPort: http}]}\n", 0, "", ""},
		// HPA-001/002/003
		{"container resource metric checks one container", "PTL-HPA-001", deployment(1, "      containers:\n      - {name: model, image: i:1, resources: {requests: {cpu: 1}}}\n      - {name: sidecar, image: s:1}\n") + `---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: h}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}
  maxReplicas: 3
  metrics: [{type: ContainerResource, containerResource: {name: cpu, container: model, target: {type: Utilization, averageUtilization: 60}}}]
  behavior: {scaleUp: {stabilizationWindowSeconds: 60}}
`, 0, "", ""},
		{"memory utilization needs memory requests", "PTL-HPA-001", deployment(1, "      containers:\n      - {name: model, image: i:1, resources: {requests: {cpu: 1}}}\n") + `---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: h}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}
  maxReplicas: 3
  metrics: [{type: Resource, resource: {name: memory, target: {type: Utilization, averageUtilization: 60}}}]
`, 1, backend.SeverityError, "no memory request"},
		{"average value needs no request", "PTL-HPA-001", deployment(1, "      containers:\n      - {name: model, image: i:1}\n") + `---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: h}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}
  maxReplicas: 3
  metrics: [{type: Resource, resource: {name: cpu, target: {type: AverageValue, averageValue: 500m}}}]
`, 0, "", ""},
		{"v1 hpa without requests", "PTL-HPA-001", deployment(1, "      containers:\n      - {name: model, image: i:1}\n") + `---
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: h}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}
  maxReplicas: 3
  targetCPUUtilizationPercentage: 50
`, 1, "", "no cpu request"},
		{"petrel autoscaling without cpu", "PTL-HPA-001", petrelHeader + "kind: InferenceService\nmetadata: {name: s}\nspec: {command: [python3, serve.py], port: 8080, autoscaling: {maxReplicas: 3, target: {cpuUtilization: 60}}}\n", 1, backend.SeverityError, "spec.resources.cpu is not set"},
		{"hpa min above max", "PTL-HPA-002", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec: {scaleTargetRef: {kind: Deployment, name: d}, minReplicas: 5, maxReplicas: 2}\n", 1, backend.SeverityError, "maxReplicas 2 is less than minReplicas 5"},
		{"petrel min above max", "PTL-HPA-002", petrelHeader + "kind: InferenceService\nmetadata: {name: s}\nspec: {command: [python3, serve.py], port: 8080, autoscaling: {minReplicas: 4, maxReplicas: 2, target: {concurrency: 4}}}\n", 1, "", ""},
		{"gpu target makes missing window a warning", "PTL-HPA-003", deployment(1, "      containers:\n      - {name: model, image: i:1, resources: {requests: {cpu: 1}, limits: {nvidia.com/gpu: 1}}}\n") + `---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: h}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}
  maxReplicas: 3
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}]
`, 1, backend.SeverityWarning, "it uses GPUs"},
		{"hpa target with replicas", "PTL-HPA-004", deployment(3, "      containers: [{name: c, image: i:1, resources: {requests: {cpu: 1}}}]\n") + `---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: h}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}
  maxReplicas: 5
`, 1, backend.SeverityWarning, "spec.replicas is 3"},
		// STO-001
		{"rwo claim, 3 replicas", "PTL-STO-001", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: m}\nspec: {accessModes: [ReadWriteOnce]}\n---\n" +
			deployment(3, "      volumes: [{name: v, persistentVolumeClaim: {claimName: m}}]\n      containers: [{name: c, image: i:1}]\n"), 1, backend.SeverityWarning, "runs 3 pods"},
		{"rwo claim, parallel job", "PTL-STO-001", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: m}\nspec: {accessModes: [ReadWriteOnce]}\n---\n" +
			`apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  parallelism: 4
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      volumes: [{name: v, persistentVolumeClaim: {claimName: m}}]
      containers: [{name: c, image: i:1}]
`, 1, "", "runs 4 pods"},
		{"rwop claim in two pods", "PTL-STO-001", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: m}\nspec: {accessModes: [ReadWriteOncePod]}\n---\n" +
			"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {volumes: [{name: v, persistentVolumeClaim: {claimName: m}}], containers: [{name: c, image: i:1}]}\n---\n" +
			"apiVersion: batch/v1\nkind: Job\nmetadata: {name: b}\nspec: {backoffLimit: 1, template: {spec: {restartPolicy: Never, volumes: [{name: v, persistentVolumeClaim: {claimName: m}}], containers: [{name: c, image: i:1}]}}}\n", 1, backend.SeverityError, "ReadWriteOncePod"},
		{"rwx claim, 3 replicas", "PTL-STO-001", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: m}\nspec: {accessModes: [ReadWriteMany]}\n---\n" +
			deployment(3, "      volumes: [{name: v, persistentVolumeClaim: {claimName: m}}]\n      containers: [{name: c, image: i:1}]\n"), 0, "", ""},
		{"rwo claim, job then deployment", "PTL-STO-001", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: m}\nspec: {accessModes: [ReadWriteOnce]}\n---\n" +
			"apiVersion: batch/v1\nkind: Job\nmetadata: {name: b}\nspec: {backoffLimit: 1, template: {spec: {restartPolicy: Never, volumes: [{name: v, persistentVolumeClaim: {claimName: m}}], containers: [{name: c, image: i:1}]}}}\n---\n" +
			deployment(1, "      volumes: [{name: v, persistentVolumeClaim: {claimName: m}}]\n      containers: [{name: c, image: i:1}]\n"), 0, "", ""},
		{"petrel default volume, autoscaled service", "PTL-STO-001", petrelHeader + "kind: Volume\nmetadata: {name: models}\nspec: {size: 1Gi}\n---\n" + petrelHeader +
			"kind: InferenceService\nmetadata: {name: s}\nspec: {command: [python3, serve.py], port: 8080, volumes: [{name: models, mountPath: /m}], autoscaling: {maxReplicas: 3, target: {concurrency: 2}}}\n", 1, "", "runs 3 pods"},
		{"petrel train then serve one replica", "PTL-STO-001", petrelHeader + "kind: Volume\nmetadata: {name: models}\nspec: {size: 1Gi}\n---\n" + petrelHeader +
			"kind: TrainingJob\nmetadata: {name: t}\nspec: {command: [python3, train.py], volumes: [{name: models, mountPath: /m}]}\n---\n" + petrelHeader +
			"kind: InferenceService\nmetadata: {name: s}\nspec: {command: [python3, serve.py], port: 8080, volumes: [{name: models, mountPath: /m}]}\n", 0, "", ""},
		// MEM
		{"limit 8x request", "PTL-MEM-002", job("      - {name: c, image: i:1, resources: {requests: {memory: 1Gi}, limits: {memory: 8Gi}}}\n"), 1, "", "8×"},
		{"limit 2x request", "PTL-MEM-002", job("      - {name: c, image: i:1, resources: {requests: {memory: 1Gi}, limits: {memory: 2Gi}}}\n"), 0, "", ""},
		{"vllm with 512Mi", "PTL-MEM-003", deployment(1, "      containers: [{name: c, image: vllm/vllm-openai:v0.5.0, resources: {limits: {memory: 512Mi}}}]\n"), 1, "", "512Mi"},
		{"kserve controller with 512Mi", "PTL-MEM-003", deployment(1, "      containers: [{name: manager, image: kserve/kserve-controller:v0.13.0, resources: {limits: {memory: 512Mi}}}]\n"), 0, "", ""},
		{"kserve model server with 512Mi", "PTL-MEM-003", deployment(1, "      containers: [{name: kserve-container, image: kserve/huggingfaceserver:v0.13.0, resources: {limits: {memory: 512Mi}}}]\n"), 1, "", ""},
		{"plain app with 512Mi", "PTL-MEM-003", deployment(1, "      containers: [{name: c, image: example/app:1, resources: {limits: {memory: 512Mi}}}]\n"), 0, "", ""},
		// SHM
		// DST-001: the rendezvous address must be worker 0 of an Indexed Job, by its subdomain.
		{"indexed job with headless service", "PTL-DST-001", gang("Indexed", "ddp", "ddp-0.ddp", "None"), 0, "", ""},
		{"rendezvous on a NonIndexed job", "PTL-DST-001", gang("NonIndexed", "ddp", "ddp-0.ddp", "None"), 1, backend.SeverityError, "NonIndexed Job have random names"},
		{"rendezvous without subdomain", "PTL-DST-001", gang("Indexed", "", "ddp-0.ddp", "None"), 1, "", "sets no subdomain"},
		{"rendezvous on the wrong subdomain", "PTL-DST-001", gang("Indexed", "workers", "ddp-0.ddp", "None"), 1, "", "subdomain is workers"},
		{"rendezvous on a pod that is not worker 0", "PTL-DST-001", gang("Indexed", "ddp", "master-0.ddp", "None"), 1, "", "worker 0 of Indexed Job ddp is ddp-0"},
		{"rendezvous service not headless", "PTL-DST-001", gang("Indexed", "ddp", "ddp-0.ddp", "10.0.0.9"), 1, "", "not headless"},
		{"rendezvous by IP is not checked", "PTL-DST-001", gang("Indexed", "ddp", "10.1.2.3", "None"), 0, "", ""},
		{"gang with backoffLimit 0 fails fast", "PTL-DST-003", gang("Indexed", "ddp", "ddp-0.ddp", "None"), 0, "", ""},
		{"gang retried worker by worker", "PTL-DST-003", strings.Replace(gang("Indexed", "ddp", "ddp-0.ddp", "None"), "backoffLimit: 0", "backoffLimit: 3", 1), 1, backend.SeverityWarning, "2 workers rendezvous, but a failed worker is re-created alone (backoffLimit 3"},
		{"gang with a FailJob NotIn [0] rule", "PTL-DST-003", strings.Replace(gang("Indexed", "ddp", "ddp-0.ddp", "None"), "backoffLimit: 0", "backoffLimit: 3\n  podFailurePolicy: {rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget}]}, {action: FailJob, onExitCodes: {operator: NotIn, values: [0]}}]}", 1), 0, "", ""},
		{"FailJob on one exit code is not fail-fast", "PTL-DST-003", strings.Replace(gang("Indexed", "ddp", "ddp-0.ddp", "None"), "backoffLimit: 0", "backoffLimit: 3\n  podFailurePolicy: {rules: [{action: FailJob, onExitCodes: {operator: In, values: [42]}}]}", 1), 1, "", "no podFailurePolicy FailJob rule"},
		{"one pod does not rendezvous with others", "PTL-DST-003", job("      - {name: c, image: i:1, command: [torchrun, t.py]}\n"), 0, "", ""},
		{"headless rendezvous service of a job is not serving", "PTL-KIND-002", gang("Indexed", "ddp", "ddp-0.ddp", "None"), 0, "", ""},
		{"clusterIP service of a job serves", "PTL-KIND-002", gang("Indexed", "ddp", "ddp-0.ddp", "10.0.0.9"), 1, "", "sends traffic"},
		// DST-002: processes per worker against the GPUs the pod gets.
		{"nproc matches gpus", "PTL-DST-002", job("      - {name: c, image: i:1, command: [torchrun, --nproc-per-node=2, t.py], resources: {limits: {nvidia.com/gpu: 2}}}\n"), 0, "", ""},
		{"nproc above gpus", "PTL-DST-002", job("      - {name: c, image: i:1, command: [torchrun, --nproc_per_node, \"4\", t.py], resources: {limits: {nvidia.com/gpu: 2}}}\n"), 1, backend.SeverityWarning, "4 processes per worker on 2 nvidia.com/gpu: processes share GPUs"},
		{"PET_NPROC_PER_NODE below gpus", "PTL-DST-002", job("      - {name: c, image: i:1, command: [torchrun, t.py], env: [{name: PET_NPROC_PER_NODE, value: \"1\"}], resources: {limits: {nvidia.com/gpu: 4}}}\n"), 1, "", "GPUs sit idle"},
		{"dataloader workers without gpu", "PTL-SHM-001", job("      - {name: c, image: i:1, command: [python, prep.py, --num_workers=4]}\n"), 1, "", "DataLoader"},
		{"disk-backed emptyDir at /dev/shm", "PTL-SHM-001", `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  volumes: [{name: shm, emptyDir: {}}]
  containers: [{name: c, image: i:1, resources: {limits: {nvidia.com/gpu: 1}}, volumeMounts: [{name: shm, mountPath: /dev/shm}]}]
`, 1, "", ""},
		{"hostIPC shares the host's shm", "PTL-SHM-001", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {hostIPC: true, containers: [{name: c, image: i:1, resources: {limits: {nvidia.com/gpu: 1}}}]}\n", 0, "", ""},
		// IMG
		{"untagged image", "PTL-IMG-001", job("      - {name: c, image: pytorch/pytorch}\n"), 1, "", "without a tag"},
		{"registry port is not a tag", "PTL-IMG-001", job("      - {name: c, image: localhost:5000/train}\n"), 1, "", "without a tag"},
		{"digest", "PTL-IMG-001", job("      - {name: c, image: pytorch/pytorch@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef}\n"), 0, "", ""},
		{"registry port and tag", "PTL-IMG-001", job("      - {name: c, image: localhost:5000/train:1.2}\n"), 0, "", ""},
		{"petrel latest", "PTL-IMG-001", petrelHeader + "kind: TrainingJob\nmetadata: {name: t}\nspec: {image: 'repo/train:latest', command: [python3, train.py]}\n", 1, "", ":latest"},
	}
	l, err := lint.New(rules.All(), lint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := l.Lint([]lint.Source{{Name: "t.yaml", Data: []byte(tt.yaml)}})
			for _, f := range res.Findings {
				if strings.HasPrefix(f.RuleID, "PTL-IN-") {
					t.Fatalf("input problem in the test's YAML: %s %d:%d %s", f.RuleID, f.Line, f.Col, f.Message)
				}
			}
			var got []backend.Finding
			for _, f := range res.Findings {
				if f.RuleID == tt.rule {
					got = append(got, f)
				}
			}
			if len(got) != tt.want {
				t.Fatalf("%s findings = %d, want %d:\n%s", tt.rule, len(got), tt.want, dump(got))
			}
			if len(got) == 0 {
				return
			}
			if tt.severity != "" && got[0].Severity != tt.severity {
				t.Errorf("severity = %s, want %s", got[0].Severity, tt.severity)
			}
			if !strings.Contains(got[0].Message, tt.contains) {
				t.Errorf("message %q does not contain %q", got[0].Message, tt.contains)
			}
			if got[0].Line == 0 || got[0].Col == 0 || got[0].Fix == "" || got[0].Object == "" {
				t.Errorf("finding lacks position, fix or object: %+v", got[0])
			}
		})
	}
}

func dump(fs []backend.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %d:%d %s %s %s: %s\n", f.Line, f.Col, f.Severity, f.RuleID, f.Object, f.Message)
	}
	return b.String()
}
