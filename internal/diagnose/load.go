package diagnose

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// KindContainerLog is the kind of the dump document that carries log lines,
// since `kubectl get -o yaml` has no place for them:
//
//	apiVersion: petrel.dev/v1alpha1
//	kind: ContainerLog
//	metadata: {name: POD, namespace: NS}
//	container: NAME
//	previous: true
//	lines: ["…", "…"]
const KindContainerLog = "ContainerLog"

// LoadFiles reads saved state from every path ("-" reads stdin) and merges
// it. Warnings name documents that were skipped (not a Kubernetes object,
// or a kind whose shape cannot be told); the error is for input that
// cannot be read or parsed at all.
func LoadFiles(paths []string, stdin io.Reader) (*State, []string, error) {
	all := &State{}
	var warnings []string
	for _, p := range paths {
		s, w, err := loadPath(p, stdin)
		if err != nil {
			return nil, nil, err
		}
		all.Merge(s)
		warnings = append(warnings, w...)
	}
	return all, warnings, nil
}

func loadPath(p string, stdin io.Reader) (*State, []string, error) {
	if p == "-" {
		return Load(stdin, "<stdin>")
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("open dump %s: %w; pass a file written by kubectl get … -o yaml", p, err)
	}
	defer f.Close()
	return Load(f, p)
}

// Load reads saved state from r, named name in messages. It accepts what
// `kubectl get pods,events,nodes,… -o yaml` writes (a v1 List with items),
// multi-document YAML of single objects, JSON, and the fragments people
// paste into issues:
//   - a YAML sequence of objects, or a mapping {events: [...]};
//   - an object without apiVersion/kind, whose kind is told from its shape
//     (an event has reason and message; a node has status.allocatable or
//     spec.taints; a pod has spec.containers or status.containerStatuses);
//   - an event without involvedObject, which then belongs to the object of
//     the document before it.
//
// Documents of kinds diagnose does not read (Services, ConfigMaps …) are
// skipped silently; documents it cannot interpret produce a warning.
func Load(r io.Reader, name string) (*State, []string, error) {
	l := &loader{state: &State{}, name: name}
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for doc := 1; ; doc++ {
		raw, err := yr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", name, err)
		}
		l.doc = doc
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: document %d is not valid YAML: %w; fix the YAML or save the state again with kubectl get … -o yaml", name, doc, err)
		}
		js = bytes.TrimSpace(js)
		if len(js) == 0 || string(js) == "null" {
			continue
		}
		var v any
		if err := json.Unmarshal(js, &v); err != nil {
			return nil, nil, fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		if err := l.value(v); err != nil {
			return nil, nil, err
		}
	}
	return l.state, l.warnings, nil
}

type loader struct {
	state    *State
	name     string
	doc      int
	warnings []string
	// last is the object an event without involvedObject refers to.
	last *corev1.ObjectReference
	// events counts events, to name those saved without a name.
	events int
}

func (l *loader) warnf(format string, args ...any) {
	l.warnings = append(l.warnings, fmt.Sprintf("%s: document %d: ", l.name, l.doc)+fmt.Sprintf(format, args...))
}

// value handles one decoded YAML value: a sequence of objects or one object.
func (l *loader) value(v any) error {
	switch t := v.(type) {
	case []any:
		for _, item := range t {
			if err := l.value(item); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		return l.object(t)
	default:
		l.warnf("a %T is not a Kubernetes object; skipped", v)
		return nil
	}
}

func (l *loader) object(m map[string]any) error {
	kind, _ := m["kind"].(string)
	apiVersion, _ := m["apiVersion"].(string)
	if items, ok := m["items"].([]any); ok && (kind == "" || strings.HasSuffix(kind, "List")) {
		return l.value(items)
	}
	if kind == "" {
		if evs, ok := m["events"].([]any); ok && len(m) == 1 {
			for _, e := range evs {
				if em, ok := e.(map[string]any); ok {
					em["kind"], em["apiVersion"] = "Event", "v1"
				}
			}
			return l.value(evs)
		}
		kind, apiVersion = inferKind(m)
		if kind == "" {
			l.warnf("cannot tell what kind of object this is; add apiVersion and kind")
			return nil
		}
		m["kind"], m["apiVersion"] = kind, apiVersion
	}
	if kind == KindContainerLog {
		return l.containerLog(m)
	}
	meta, _ := m["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		m["metadata"] = meta
	}
	if n, _ := meta["name"].(string); n == "" && kind != "Event" {
		meta["name"] = fmt.Sprintf("unnamed-%s-%d", strings.ToLower(kind), l.doc)
	}
	if kind == "Event" {
		l.events++
		normalizeEvent(m, l.last, fmt.Sprintf("event-%d-%d", l.doc, l.events))
	}
	gvk := schema.FromAPIVersionAndKind(apiVersion, kind)
	if gvk.Group == "events.k8s.io" {
		return l.eventsV1(m)
	}
	js, err := json.Marshal(m)
	if err != nil {
		return err
	}
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(js, &gvk, nil)
	if err != nil {
		if runtime.IsNotRegisteredError(err) {
			l.warnf("kind %s (%s) is not a Kubernetes kind that diagnose knows; skipped", kind, apiVersion)
			return nil
		}
		return fmt.Errorf("%s: document %d: %s %v: %w; fix the field or save the state again with kubectl get … -o yaml", l.name, l.doc, kind, meta["name"], err)
	}
	if l.add(obj) {
		ns, _ := meta["namespace"].(string)
		n, _ := meta["name"].(string)
		l.last = &corev1.ObjectReference{Kind: kind, APIVersion: apiVersion, Name: n, Namespace: ns}
	}
	return nil
}

// inferKind tells the kind of a pasted fragment from its fields.
func inferKind(m map[string]any) (kind, apiVersion string) {
	spec, _ := m["spec"].(map[string]any)
	status, _ := m["status"].(map[string]any)
	_, hasInvolved := m["involvedObject"]
	_, hasReason := m["reason"]
	_, hasMessage := m["message"]
	switch {
	case hasInvolved || (hasReason && hasMessage && spec == nil && status == nil):
		return "Event", "v1"
	case status["allocatable"] != nil || status["capacity"] != nil || spec["taints"] != nil:
		return "Node", "v1"
	case status["containerStatuses"] != nil || spec["containers"] != nil:
		return "Pod", "v1"
	}
	return "", ""
}

// normalizeEvent fixes the shapes people write by hand: source as a plain
// string, and no involvedObject (it then refers to the previous object).
func normalizeEvent(m map[string]any, last *corev1.ObjectReference, name string) {
	if s, ok := m["source"].(string); ok {
		m["source"] = map[string]any{"component": s}
	}
	if _, ok := m["involvedObject"]; !ok && last != nil {
		m["involvedObject"] = map[string]any{
			"kind": last.Kind, "name": last.Name, "namespace": last.Namespace, "apiVersion": last.APIVersion,
		}
	}
	meta := m["metadata"].(map[string]any)
	if n, _ := meta["name"].(string); n == "" {
		meta["name"] = name
	}
}

// eventsV1 converts an events.k8s.io/v1 Event to the core/v1 shape.
func (l *loader) eventsV1(m map[string]any) error {
	js, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var e eventsv1.Event
	if err := json.Unmarshal(js, &e); err != nil {
		return fmt.Errorf("%s: document %d: events.k8s.io/v1 Event: %w", l.name, l.doc, err)
	}
	ce := corev1.Event{
		ObjectMeta:     e.ObjectMeta,
		InvolvedObject: e.Regarding,
		Reason:         e.Reason,
		Message:        e.Note,
		Type:           e.Type,
		Source:         corev1.EventSource{Component: e.ReportingController},
		LastTimestamp:  e.DeprecatedLastTimestamp,
		FirstTimestamp: e.DeprecatedFirstTimestamp,
		Count:          e.DeprecatedCount,
		EventTime:      e.EventTime,
	}
	if e.Series != nil {
		ce.Count = e.Series.Count
	}
	l.state.Events = append(l.state.Events, ce)
	return nil
}

func (l *loader) containerLog(m map[string]any) error {
	js, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var d struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		ContainerLog `json:",inline"`
	}
	if err := json.Unmarshal(js, &d); err != nil {
		return fmt.Errorf("%s: document %d: ContainerLog: %w; write lines as a list of strings", l.name, l.doc, err)
	}
	cl := d.ContainerLog
	if cl.Pod == "" {
		cl.Pod = d.Metadata.Name
	}
	if cl.Namespace == "" {
		cl.Namespace = d.Metadata.Namespace
	}
	if cl.Pod == "" {
		l.warnf("ContainerLog names no pod (metadata.name); skipped")
		return nil
	}
	l.state.Logs = append(l.state.Logs, cl)
	return nil
}

// add files a decoded object into the state; it reports whether the object
// can be the subject of the events that follow it.
func (l *loader) add(obj runtime.Object) bool {
	s := l.state
	switch o := obj.(type) {
	case *corev1.Pod:
		s.Pods = append(s.Pods, *o)
	case *corev1.Event:
		s.Events = append(s.Events, *o)
		return false
	case *corev1.Node:
		s.Nodes = append(s.Nodes, *o)
	case *corev1.PersistentVolumeClaim:
		s.PersistentVolumeClaims = append(s.PersistentVolumeClaims, *o)
	case *storagev1.StorageClass:
		s.StorageClasses = append(s.StorageClasses, *o)
	case *corev1.ResourceQuota:
		s.ResourceQuotas = append(s.ResourceQuotas, *o)
	case *corev1.Service:
		s.Services = append(s.Services, *o)
	case *batchv1.Job:
		s.Jobs = append(s.Jobs, *o)
	case *appsv1.Deployment:
		s.Deployments = append(s.Deployments, *o)
	case *appsv1.ReplicaSet:
		s.ReplicaSets = append(s.ReplicaSets, *o)
	case *appsv1.StatefulSet:
		s.StatefulSets = append(s.StatefulSets, *o)
	case *appsv1.DaemonSet:
		s.DaemonSets = append(s.DaemonSets, *o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		s.HorizontalPodAutoscalers = append(s.HorizontalPodAutoscalers, *o)
	case *corev1.List:
		for _, raw := range o.Items {
			var m map[string]any
			if err := json.Unmarshal(raw.Raw, &m); err == nil {
				_ = l.object(m)
			}
		}
		return false
	default:
		// A kind diagnose does not read; skipped without a warning.
	}
	return true
}
