package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/spec"
)

// kindInfo says which API groups a kind is accepted from and how to build
// its typed form.
type kindInfo struct {
	groups []string
	new    func() any
}

// kinds lists every kind lint reads. Older group versions (extensions,
// apps/v1beta2, batch/v1beta1, autoscaling/v2beta2) are read into the
// current types: the fields the rules look at did not change.
var kinds = map[string]kindInfo{
	"Pod":                     {[]string{""}, func() any { return &corev1.Pod{} }},
	"Service":                 {[]string{""}, func() any { return &corev1.Service{} }},
	"PersistentVolumeClaim":   {[]string{""}, func() any { return &corev1.PersistentVolumeClaim{} }},
	"ResourceQuota":           {[]string{""}, func() any { return &corev1.ResourceQuota{} }},
	"LimitRange":              {[]string{""}, func() any { return &corev1.LimitRange{} }},
	"Job":                     {[]string{"batch"}, func() any { return &batchv1.Job{} }},
	"CronJob":                 {[]string{"batch"}, func() any { return &batchv1.CronJob{} }},
	"Deployment":              {[]string{"apps", "extensions"}, func() any { return &appsv1.Deployment{} }},
	"StatefulSet":             {[]string{"apps"}, func() any { return &appsv1.StatefulSet{} }},
	"DaemonSet":               {[]string{"apps", "extensions"}, func() any { return &appsv1.DaemonSet{} }},
	"ReplicaSet":              {[]string{"apps", "extensions"}, func() any { return &appsv1.ReplicaSet{} }},
	"HorizontalPodAutoscaler": {[]string{"autoscaling"}, func() any { return &autoscalingv2.HorizontalPodAutoscaler{} }},
	v1alpha1.KindTrainingJob:  {[]string{"petrel.dev"}, func() any { return &v1alpha1.TrainingJob{} }},
	v1alpha1.KindInferenceService: {[]string{"petrel.dev"},
		func() any { return &v1alpha1.InferenceService{} }},
	v1alpha1.KindVolume: {[]string{"petrel.dev"}, func() any { return &v1alpha1.Volume{} }},
}

// KnownKinds returns the kinds lint checks, for help text.
func KnownKinds() []string {
	return []string{"Pod", "Job", "CronJob", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
		"HorizontalPodAutoscaler", "PersistentVolumeClaim", "ResourceQuota", "LimitRange", "Service",
		v1alpha1.KindTrainingJob, v1alpha1.KindInferenceService, v1alpha1.KindVolume}
}

// OperatorKinds returns the ML operator kinds whose pod templates lint
// checks, for help text.
func OperatorKinds() []string {
	return []string{"PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "PaddleJob", "JAXJob", "MXJob (kubeflow.org)",
		"RayCluster", "RayJob", "RayService (ray.io)", "JobSet (jobset.x-k8s.io)", "LeaderWorkerSet (leaderworkerset.x-k8s.io)"}
}

// decoder turns one source into objects; problems with the input become
// findings of the PTL-IN rules.
type decoder struct {
	src      Source
	objects  []*Object
	findings []backend.Finding
	// unreadable is set when a document is not YAML at all.
	unreadable bool
	// petrel holds the chunks with petrel documents (validated by
	// internal/spec as well).
	petrel []chunk
}

func (d *decoder) report(rule *Rule, sev backend.Severity, line, col int, object, msg, fix string) {
	if sev == "" {
		sev = rule.Severity
	}
	if fix == "" {
		fix = rule.Fix
	}
	d.findings = append(d.findings, backend.Finding{RuleID: rule.ID, Severity: sev, Object: object,
		Message: msg, Fix: fix, File: d.src.Name, Line: line, Col: col})
}

func (d *decoder) decode() {
	docIndex := 0
	for _, ch := range splitDocuments(d.src.Data) {
		isPetrel := false
		dec := yaml.NewDecoder(bytes.NewReader(ch.data))
		for {
			var root yaml.Node
			err := dec.Decode(&root)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				line, msg := yamlErrorLine(err)
				d.unreadable = true
				d.report(RuleInputUnreadable, "", line+ch.lineOffset, 1, "",
					"document is not valid YAML: "+msg,
					"fix the YAML syntax (indentation, a space after each ':', matching quotes); the other documents were still checked")
				docIndex++
				break
			}
			if len(root.Content) == 0 || isNull(root.Content[0]) {
				continue // an empty document or only comments (kubectl skips both)
			}
			if av := field(root.Content[0], "apiVersion"); av != nil && strings.HasPrefix(av.Value, "petrel.dev/") {
				isPetrel = true
			}
			d.object(root.Content[0], ch.lineOffset, docIndex)
			docIndex++
		}
		if isPetrel {
			d.petrel = append(d.petrel, ch)
		}
	}
	if len(d.petrel) > 0 {
		d.validatePetrel()
	}
}

// validatePetrel runs petrel's own spec validation (internal/spec, what
// apply runs) over the petrel documents of the source, so lint reports
// unknown fields, invalid names and values with spec's messages. Other
// documents are blanked out line for line, so positions stay the file's.
func (d *decoder) validatePetrel() {
	masked := make([]byte, 0, len(d.src.Data))
	next := 0 // index into d.petrel
	for _, ch := range splitDocuments(d.src.Data) {
		if next < len(d.petrel) && d.petrel[next].lineOffset == ch.lineOffset {
			masked = append(masked, ch.data...)
			next++
			continue
		}
		// Keep the line breaks, drop the content (the separator too: an
		// empty document would read as null).
		masked = append(masked, bytes.Repeat([]byte("\n"), bytes.Count(ch.data, []byte("\n")))...)
	}
	_, err := spec.ParseDir(d.src.Name, ".", masked)
	var list spec.ErrorList
	if !errors.As(err, &list) {
		return
	}
	for _, fe := range list {
		o := d.objectAt(fe.Pos.Line)
		ref := ""
		if o != nil {
			if o.Disabled(RuleInputPetrelSpec.ID) {
				continue
			}
			ref = o.Ref()
		}
		msg := fe.Msg
		if fe.Path != "" {
			msg = fe.Path + ": " + msg
		}
		d.report(RuleInputPetrelSpec, "", fe.Pos.Line, fe.Pos.Col, ref, msg, fe.Fix)
		if fe.Path != "" {
			d.findings[len(d.findings)-1].Evidence = []string{fe.Path}
		}
	}
}

// objectAt returns the petrel object whose document holds line, or nil.
func (d *decoder) objectAt(line int) *Object {
	var best *Object
	for _, o := range d.objects {
		if start, _, _ := o.Pos(Path{}); start <= line && strings.HasPrefix(o.APIVersion, "petrel.dev/") {
			best = o
		}
	}
	return best
}

// yamlErrorLine splits yaml.v3's "yaml: line N: msg" into N and msg.
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ":"); ok {
			if n, e := strconv.Atoi(num); e == nil {
				return n, strings.TrimSpace(after)
			}
		}
	}
	return 1, msg
}

func (d *decoder) object(n *yaml.Node, lineOffset, docIndex int) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	line, col := n.Line+lineOffset, n.Column
	if n.Kind != yaml.MappingNode {
		d.report(RuleInputNotObject, "", line, col, "",
			fmt.Sprintf("document is a %s, not a Kubernetes object", nodeKindName(n)), "")
		return
	}
	apiVersion, kind := field(n, "apiVersion"), field(n, "kind")
	if apiVersion == nil || kind == nil || apiVersion.Kind != yaml.ScalarNode || kind.Kind != yaml.ScalarNode ||
		apiVersion.Value == "" || kind.Value == "" {
		missing := []string{}
		if apiVersion == nil || apiVersion.Value == "" {
			missing = append(missing, "apiVersion")
		}
		if kind == nil || kind.Value == "" {
			missing = append(missing, "kind")
		}
		d.report(RuleInputNotObject, "", line, col, "",
			fmt.Sprintf("document has no %s, so it is not a Kubernetes object", strings.Join(missing, " or ")), "")
		return
	}
	name := ""
	if m := field(n, "metadata"); m != nil {
		if nm := field(m, "name"); nm != nil {
			name = nm.Value
		}
	}
	ref := kind.Value + "/" + name
	group, _, _ := strings.Cut(apiVersion.Value, "/")
	if !strings.Contains(apiVersion.Value, "/") {
		group = ""
	}
	if items := field(n, "items"); strings.HasSuffix(kind.Value, "List") && items != nil && items.Kind == yaml.SequenceNode {
		// kubectl's v1 List, or a typed list from the API (DeploymentList)
		// whose items carry no apiVersion and kind of their own.
		itemKind := strings.TrimSuffix(kind.Value, "List")
		for _, it := range items.Content {
			if it.Kind == yaml.MappingNode && itemKind != "" {
				if field(it, "kind") == nil {
					it.Content = append(it.Content, scalar("kind", it), scalar(itemKind, it))
				}
				if field(it, "apiVersion") == nil {
					it.Content = append(it.Content, scalar("apiVersion", it), scalar(apiVersion.Value, it))
				}
			}
			d.object(it, lineOffset, docIndex)
		}
		return
	}
	info, ok := kinds[kind.Value]
	locate := operatorKinds[group][kind.Value]
	kline, kcol := kind.Line+lineOffset, kind.Column
	if !ok && locate == nil {
		if group == "petrel.dev" {
			return // internal/spec reports it, with the valid kinds (validatePetrel)
		}
		if s := suggestKind(kind.Value); s != "" {
			d.report(RuleInputUnknownKind, backend.SeverityError, kline, kcol, ref,
				fmt.Sprintf("unknown kind %q; did you mean %q?", kind.Value, s), "correct the kind to "+s)
			return
		}
		d.report(RuleInputUnknownKind, "", kline, kcol, ref,
			fmt.Sprintf("kind %s (%s) is not checked by petrel lint", kind.Value, apiVersion.Value), "")
		return
	}
	if locate == nil && !contains(info.groups, group) && strings.Contains(group, ".") && group != "petrel.dev" {
		// A custom resource of another API group that reuses a kind name
		// (KServe's serving.kserve.io InferenceService, Knative's
		// serving.knative.dev Service): CRD groups always contain a dot,
		// so this is not a mistyped built-in group.
		d.report(RuleInputUnknownKind, "", kline, kcol, ref,
			fmt.Sprintf("kind %s (%s) is not checked by petrel lint", kind.Value, apiVersion.Value), "")
		return
	}
	if locate == nil && !contains(info.groups, group) {
		d.report(RuleInputUnknownKind, backend.SeverityError, line, col, ref,
			fmt.Sprintf("apiVersion %q does not serve kind %s", apiVersion.Value, kind.Value),
			fmt.Sprintf("use the API group %s", groupVersionHint(kind.Value)))
		return
	}
	o := &Object{File: d.src.Name, Doc: docIndex, APIVersion: apiVersion.Value, Kind: kind.Value, Name: name,
		node: n, lineOffset: lineOffset}
	if m := field(n, "metadata"); m != nil {
		if ns := field(m, "namespace"); ns != nil {
			o.Namespace = ns.Value
		}
	}
	if refs := field(field(n, "metadata"), "ownerReferences"); refs != nil && refs.Kind == yaml.SequenceNode {
		for _, r := range refs.Content {
			if c := field(r, "controller"); c != nil && c.Value == "true" {
				if k, nm := field(r, "kind"), field(r, "name"); k != nil && nm != nil {
					o.owner = k.Value + "/" + nm.Value
				}
			}
		}
	}
	o.Labels = scalarMap(n, "metadata", "labels")
	o.Annotations = scalarMap(n, "metadata", "annotations")
	if v, ok := o.Annotations[DisableAnnotation]; ok {
		o.disabled = map[string]bool{}
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				o.disabled[id] = true
			}
		}
	}
	if locate != nil {
		op, at, tn, err := operatorObject(n, locate(n))
		if err != nil {
			l, c, _ := o.Pos(at)
			var ke *keyError
			if errors.As(err, &ke) {
				l, c = ke.node.Line+lineOffset, ke.node.Column
			} else if p := jsonErrorPath(err); len(p) > 0 {
				if k := looseLookup(tn, p); k != nil {
					l, c = k.Line+lineOffset, k.Column
				}
			}
			d.report(RuleInputSchema, "", l, c, ref, fmt.Sprintf("in %s: %v", at, err), "")
			return
		}
		o.Typed = op
		d.objects = append(d.objects, o)
		return
	}
	typed, err := typedObject(n, kind.Value, apiVersion.Value, info)
	if err != nil && group == "petrel.dev" {
		return // internal/spec reports it, with its own words (validatePetrel)
	}
	if err != nil {
		l, c := line, col
		var ke *keyError
		if errors.As(err, &ke) {
			l, c = ke.node.Line+lineOffset, ke.node.Column
		} else if p := jsonErrorPath(err); len(p) > 0 {
			if k := looseLookup(n, p); k != nil {
				l, c = k.Line+lineOffset, k.Column
			}
		}
		d.report(RuleInputSchema, "", l, c, ref, err.Error(), "")
		return
	}
	o.Typed = typed
	o.hpaV1 = kind.Value == "HorizontalPodAutoscaler" && apiVersion.Value == "autoscaling/v1"
	d.objects = append(d.objects, o)
}

// scalar returns a string node placed at at's position, for fields a typed
// list implies.
func scalar(value string, at *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, Line: at.Line, Column: at.Column}
}

func groupVersionHint(kind string) string {
	switch kind {
	case "Job", "CronJob":
		return "batch/v1"
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet":
		return "apps/v1"
	case "HorizontalPodAutoscaler":
		return "autoscaling/v2"
	case v1alpha1.KindTrainingJob, v1alpha1.KindInferenceService, v1alpha1.KindVolume:
		return v1alpha1.APIVersion
	}
	return "v1"
}

// schemaError is a field whose value does not fit the kind's schema.
type schemaError struct {
	kind  string
	field string
	msg   string
	cause error
}

func (e *schemaError) Unwrap() error { return e.cause }

func (e *schemaError) Error() string {
	if e.field == "" {
		return fmt.Sprintf("document does not fit the %s schema: %s", e.kind, e.msg)
	}
	return fmt.Sprintf("field %s does not fit the %s schema: %s", e.field, e.kind, e.msg)
}

// typedObject converts the node tree into the kind's Go type through JSON,
// which is how the API server reads manifests: resource quantities and
// int-or-string fields decode as they would there.
func typedObject(n *yaml.Node, kind, apiVersion string, info kindInfo) (any, error) {
	var buf bytes.Buffer
	if err := nodeJSON(&buf, n, 0); err != nil {
		return nil, &schemaError{kind: kind, msg: err.Error(), cause: err}
	}
	data := buf.Bytes()
	if kind == "HorizontalPodAutoscaler" && apiVersion == "autoscaling/v1" {
		var v1 autoscalingv1.HorizontalPodAutoscaler
		if err := json.Unmarshal(data, &v1); err != nil {
			return nil, toSchemaError(kind, err)
		}
		return hpaFromV1(&v1), nil
	}
	obj := info.new()
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, toSchemaError(kind, err)
	}
	return obj, nil
}

func toSchemaError(kind string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &schemaError{kind: kind, field: te.Field,
			msg: fmt.Sprintf("expected %s, got a %s", goTypeName(te.Type.String()), te.Value)}
	}
	return &schemaError{kind: kind, msg: err.Error()}
}

func goTypeName(t string) string {
	switch {
	case strings.Contains(t, "int"):
		return "an integer"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	}
	return "a " + t
}

// jsonErrorPath turns a json field path ("spec.template.spec.containers.image")
// into a Path, following the first list item where the path crosses a list.
func jsonErrorPath(err error) Path {
	var se *schemaError
	if !errors.As(err, &se) || se.field == "" {
		return nil
	}
	var p Path
	for _, k := range strings.Split(se.field, ".") {
		p = append(p, k)
	}
	return p
}

// looseLookup finds the key node of a json error path, whose list indices
// are dropped ("spec.containers.ports.hostPort"): at a list it tries every
// item and returns the first full match, or nil.
func looseLookup(n *yaml.Node, path Path) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if len(path) == 0 {
		return nil
	}
	key, _ := path[0].(string)
	switch n.Kind {
	case yaml.SequenceNode:
		for _, it := range n.Content {
			if k := looseLookup(it, path); k != nil {
				return k
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value != key {
				continue
			}
			if len(path) == 1 {
				return n.Content[i]
			}
			return looseLookup(n.Content[i+1], path[1:])
		}
	}
	return nil
}

// hpaFromV1 converts an autoscaling/v1 HPA to the v2 shape the rules read.
func hpaFromV1(v1 *autoscalingv1.HorizontalPodAutoscaler) *autoscalingv2.HorizontalPodAutoscaler {
	h := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: v1.ObjectMeta}
	h.TypeMeta = metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"}
	h.Spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{Kind: v1.Spec.ScaleTargetRef.Kind,
		Name: v1.Spec.ScaleTargetRef.Name, APIVersion: v1.Spec.ScaleTargetRef.APIVersion}
	h.Spec.MinReplicas = v1.Spec.MinReplicas
	h.Spec.MaxReplicas = v1.Spec.MaxReplicas
	if v1.Spec.TargetCPUUtilizationPercentage != nil {
		h.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType,
					AverageUtilization: v1.Spec.TargetCPUUtilizationPercentage}}}}
	}
	return h
}

func nodeKindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "plain value (" + strconv.Quote(truncate(n.Value, 40)) + ")"
	}
	return "value"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggestKind returns the known kind closest to k (case-insensitive) when
// it is within edit distance 1 (kinds of up to 5 letters) or 2, or "": so
// "Deploymnet" and "pods" are typos, while Node is not taken for Pod.
func suggestKind(k string) string {
	bestD := 3
	if len(k) <= 5 {
		bestD = 2
	}
	best := ""
	lk := strings.ToLower(k)
	for known := range kinds {
		if d := spec.EditDistance(lk, strings.ToLower(known)); d < bestD {
			best, bestD = known, d
		}
	}
	return best
}

// isNull reports whether n is a YAML null: what a document holding only
// comments after a "---" separator decodes to.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}
