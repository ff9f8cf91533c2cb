package lint

import (
	"bytes"
	"encoding/json"
	"strconv"

	"gopkg.in/yaml.v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// OperatorObject is a custom resource of an ML operator (Kubeflow training
// jobs, KubeRay, JobSet, LeaderWorkerSet) whose pod templates lint checks
// with the same rules as a Deployment's or a Job's. Only the pod templates
// and replica counts are read; the operator's own fields are not judged.
type OperatorObject struct {
	Templates []OperatorTemplate
}

// OperatorTemplate is one pod template of an operator object.
type OperatorTemplate struct {
	// Role names the template: "Worker" (Kubeflow replica type), "head",
	// "workerGroupSpecs[gpu]", "replicatedJobs[trainer]", "leader".
	Role string
	// Path is the template's path; Template its decoded form.
	Path     Path
	Template *corev1.PodTemplateSpec
	// Pods is how many pods run from the template at once.
	Pods int32
	// Job and JobPath are set for JobSet's replicated Jobs.
	Job     *batchv1.JobSpec
	JobPath Path
}

// operatorKinds lists the operator kinds read, by API group and kind.
var operatorKinds = map[string]map[string]func(n *yaml.Node) []templateLoc{
	"kubeflow.org": {
		"PyTorchJob": replicaSpecs("pytorchReplicaSpecs"), "TFJob": replicaSpecs("tfReplicaSpecs"),
		"MPIJob": replicaSpecs("mpiReplicaSpecs"), "XGBoostJob": replicaSpecs("xgbReplicaSpecs"),
		"PaddleJob": replicaSpecs("paddleReplicaSpecs"), "JAXJob": replicaSpecs("jaxReplicaSpecs"),
		"MXJob": replicaSpecs("mxReplicaSpecs"),
	},
	"ray.io": {
		"RayCluster": rayGroups(Path{"spec"}),
		"RayJob":     rayGroups(Path{"spec", "rayClusterSpec"}),
		"RayService": rayGroups(Path{"spec", "rayClusterConfig"}),
	},
	"jobset.x-k8s.io":          {"JobSet": jobSetJobs},
	"leaderworkerset.x-k8s.io": {"LeaderWorkerSet": leaderWorkerTemplates},
}

// templateLoc is where a pod (or Job) template sits and how many copies run.
type templateLoc struct {
	role string
	path Path
	pods int32
	job  bool // path is a JobTemplateSpec (JobSet)
}

// intAt reads an integer scalar at path below n, or def.
func intAt(n *yaml.Node, def int32, keys ...string) int32 {
	for _, k := range keys {
		n = field(n, k)
	}
	if n == nil || n.Kind != yaml.ScalarNode {
		return def
	}
	v, err := strconv.ParseInt(n.Value, 10, 32)
	if err != nil {
		return def
	}
	return int32(v)
}

// replicaSpecs reads Kubeflow's spec.<field>.<ReplicaType>.template.
func replicaSpecs(fieldName string) func(n *yaml.Node) []templateLoc {
	return func(n *yaml.Node) []templateLoc {
		specs := field(field(n, "spec"), fieldName)
		if specs == nil || specs.Kind != yaml.MappingNode {
			return nil
		}
		var out []templateLoc
		for i := 0; i+1 < len(specs.Content); i += 2 {
			role, rs := specs.Content[i].Value, specs.Content[i+1]
			if field(rs, "template") != nil {
				out = append(out, templateLoc{role: role, path: Path{"spec", fieldName, role, "template"}, pods: intAt(rs, 1, "replicas")})
			}
		}
		return out
	}
}

// rayGroups reads KubeRay's headGroupSpec and workerGroupSpecs below base.
func rayGroups(base Path) func(n *yaml.Node) []templateLoc {
	return func(n *yaml.Node) []templateLoc {
		cluster := n
		for _, k := range base {
			cluster = field(cluster, k.(string))
		}
		var out []templateLoc
		if head := field(cluster, "headGroupSpec"); field(head, "template") != nil {
			out = append(out, templateLoc{role: "head", path: base.Key("headGroupSpec", "template"), pods: 1})
		}
		if groups := field(cluster, "workerGroupSpecs"); groups != nil && groups.Kind == yaml.SequenceNode {
			for i, g := range groups.Content {
				if field(g, "template") == nil {
					continue
				}
				name := strconv.Itoa(i)
				if gn := field(g, "groupName"); gn != nil {
					name = gn.Value
				}
				pods := intAt(g, intAt(g, 1, "minReplicas"), "replicas") * intAt(g, 1, "numOfHosts")
				out = append(out, templateLoc{role: "workerGroupSpecs[" + name + "]", path: base.Key("workerGroupSpecs", i, "template"), pods: pods})
			}
		}
		return out
	}
}

// jobSetJobs reads JobSet's spec.replicatedJobs[i].template (a Job template).
func jobSetJobs(n *yaml.Node) []templateLoc {
	jobs := field(field(n, "spec"), "replicatedJobs")
	if jobs == nil || jobs.Kind != yaml.SequenceNode {
		return nil
	}
	var out []templateLoc
	for i, j := range jobs.Content {
		if field(j, "template") == nil {
			continue
		}
		name := strconv.Itoa(i)
		if jn := field(j, "name"); jn != nil {
			name = jn.Value
		}
		pods := intAt(j, 1, "replicas") * intAt(j, 1, "template", "spec", "parallelism")
		out = append(out, templateLoc{role: "replicatedJobs[" + name + "]", path: Path{"spec", "replicatedJobs", i, "template"}, pods: pods, job: true})
	}
	return out
}

// leaderWorkerTemplates reads LeaderWorkerSet's leader and worker templates.
func leaderWorkerTemplates(n *yaml.Node) []templateLoc {
	lwt := field(field(n, "spec"), "leaderWorkerTemplate")
	groups := intAt(n, 1, "spec", "replicas")
	size := intAt(lwt, 1, "size")
	var out []templateLoc
	workers := groups * size
	if field(lwt, "leaderTemplate") != nil {
		out = append(out, templateLoc{role: "leader", path: Path{"spec", "leaderWorkerTemplate", "leaderTemplate"}, pods: groups})
		workers = groups * (size - 1)
	}
	if field(lwt, "workerTemplate") != nil {
		out = append(out, templateLoc{role: "worker", path: Path{"spec", "leaderWorkerTemplate", "workerTemplate"}, pods: workers})
	}
	return out
}

// operatorObject decodes the pod templates an operator kind holds. On
// error it returns the template's path and node with a *schemaError or
// *keyError.
func operatorObject(n *yaml.Node, locs []templateLoc) (*OperatorObject, Path, *yaml.Node, error) {
	o := &OperatorObject{}
	for _, loc := range locs {
		tn := n
		for _, e := range loc.path {
			switch k := e.(type) {
			case string:
				tn = field(tn, k)
			case int:
				tn = tn.Content[k]
			}
		}
		var buf bytes.Buffer
		if err := nodeJSON(&buf, tn, 0); err != nil {
			return nil, loc.path, tn, err
		}
		t := OperatorTemplate{Role: loc.role, Path: loc.path, Pods: loc.pods}
		if loc.job {
			var jt batchv1.JobTemplateSpec
			if err := json.Unmarshal(buf.Bytes(), &jt); err != nil {
				return nil, loc.path, tn, toSchemaError("JobTemplateSpec", err)
			}
			t.Job, t.JobPath = &jt.Spec, loc.path.Key("spec")
			t.Template, t.Path = &jt.Spec.Template, loc.path.Key("spec", "template")
		} else {
			var pt corev1.PodTemplateSpec
			if err := json.Unmarshal(buf.Bytes(), &pt); err != nil {
				return nil, loc.path, tn, toSchemaError("PodTemplateSpec", err)
			}
			t.Template = &pt
		}
		o.Templates = append(o.Templates, t)
	}
	return o, nil, nil, nil
}
