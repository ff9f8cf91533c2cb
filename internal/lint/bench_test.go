package lint_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/petrel-dev/petrel/internal/lint"
)

// benchManifests returns at least n documents made of copies of every
// testdata manifest (the cases and the correct set), each copy's object
// names suffixed so cross-object joins (HPA → target, Service → pods,
// claim → mounters) stay within the copy, as in a real repository.
func benchManifests(b *testing.B, n int) ([]lint.Source, int) {
	b.Helper()
	files, _ := filepath.Glob("testdata/cases/*.yaml")
	good, _ := filepath.Glob("testdata/good/*.yaml")
	files = append(files, good...)
	var texts []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		texts = append(texts, string(data))
	}
	names := regexp.MustCompile(`\b(name|claimName): ([a-z0-9-]+)`)
	var srcs []lint.Source
	docs := 0
	for copyN := 0; docs < n; copyN++ {
		for i, text := range texts {
			text = names.ReplaceAllString(text, fmt.Sprintf("$1: $2-%d", copyN))
			text = inNamespace(b, text, copyN)
			srcs = append(srcs, lint.Source{Name: fmt.Sprintf("copy%d/%s", copyN, filepath.Base(files[i])), Data: []byte(text)})
			docs += strings.Count(text, "\nkind: ")
			if strings.HasPrefix(text, "kind: ") {
				docs++
			}
		}
	}
	return srcs, docs
}

// inNamespace puts every object of text in a namespace of copy n (its own
// namespace suffixed, or copy-n): namespace-wide joins (a ResourceQuota
// and the workloads it constrains) stay within the copy, as they would
// in a repository of many applications.
func inNamespace(b *testing.B, text string, n int) string {
	dec := yaml.NewDecoder(strings.NewReader(text))
	var out strings.Builder
	enc := yaml.NewEncoder(&out)
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
			root := doc.Content[0]
			for i := 0; i+1 < len(root.Content); i += 2 {
				if root.Content[i].Value != "metadata" || root.Content[i+1].Kind != yaml.MappingNode {
					continue
				}
				meta := root.Content[i+1]
				found := false
				for j := 0; j+1 < len(meta.Content); j += 2 {
					if meta.Content[j].Value == "namespace" {
						meta.Content[j+1].Value = fmt.Sprintf("%s-%d", meta.Content[j+1].Value, n)
						found = true
					}
				}
				if !found {
					meta.Content = append(meta.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "namespace"},
						&yaml.Node{Kind: yaml.ScalarNode, Value: fmt.Sprintf("copy-%d", n)})
				}
			}
		}
		if err := enc.Encode(&doc); err != nil {
			b.Fatal(err)
		}
	}
	enc.Close()
	return out.String()
}

// BenchmarkLint1000 lints 1,000 manifests (parse, decode, every rule);
// one op is the whole set.
func BenchmarkLint1000(b *testing.B) {
	srcs, docs := benchManifests(b, 1000)
	l := newLinter(b, lint.Options{})
	b.ReportAllocs()
	b.ResetTimer()
	var objects int
	for b.Loop() {
		objects = l.Lint(srcs).Objects
	}
	b.ReportMetric(float64(objects)*float64(b.N)/b.Elapsed().Seconds(), "manifests/s")
	b.ReportMetric(float64(docs), "documents")
}

// BenchmarkLint1000FromDisk adds reading the files from a directory tree,
// as `petrel lint DIR` does.
func BenchmarkLint1000FromDisk(b *testing.B) {
	srcs, _ := benchManifests(b, 1000)
	dir := b.TempDir()
	for _, s := range srcs {
		path := filepath.Join(dir, s.Name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, s.Data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	l := newLinter(b, lint.Options{})
	b.ReportAllocs()
	b.ResetTimer()
	var objects int
	for b.Loop() {
		got, errs := lint.ReadSources([]string{dir}, nil)
		objects = l.Lint(got, errs...).Objects
	}
	b.ReportMetric(float64(objects)*float64(b.N)/b.Elapsed().Seconds(), "manifests/s")
}

// releaseManifests returns sets of Deployment + Service + HPA + Job, all in
// one namespace, as a large Helm release renders them: n/4 sets.
func releaseManifests(n int) ([]lint.Source, int) {
	var b strings.Builder
	sets := n / 4
	for i := 0; i < sets; i++ {
		fmt.Fprintf(&b, `apiVersion: apps/v1
kind: Deployment
metadata: {name: model-%[1]d, namespace: serving}
spec:
  replicas: 2
  selector: {matchLabels: {app: model-%[1]d}}
  template:
    metadata: {labels: {app: model-%[1]d, tier: inference}}
    spec:
      containers:
      - name: server
        image: ghcr.io/example/server:1.%[1]d
        ports: [{name: http, containerPort: 8080}]
        resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 1Gi}}
        readinessProbe: {httpGet: {path: /ready, port: http}}
---
apiVersion: v1
kind: Service
metadata: {name: model-%[1]d, namespace: serving}
spec:
  selector: {app: model-%[1]d}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: model-%[1]d, namespace: serving}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: model-%[1]d}
  minReplicas: 2
  maxReplicas: 8
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: warmup-%[1]d, namespace: serving}
spec:
  backoffLimit: 2
  activeDeadlineSeconds: 600
  ttlSecondsAfterFinished: 3600
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: warmup
        image: ghcr.io/example/warmup:1.%[1]d
        resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 128Mi}}
---
`, i)
	}
	return []lint.Source{{Name: "release.yaml", Data: []byte(b.String())}}, sets * 4
}

// BenchmarkLintScale lints 1k, 4k and 16k documents of two shapes: copies
// of every testdata case and correct manifest (many small namespaces of
// objects), and one large single-namespace release. The time per document
// stays flat when relations are indexed once per run (README figures).
func BenchmarkLintScale(b *testing.B) {
	for _, n := range []int{1000, 4000, 16000} {
		for _, shape := range []string{"cases", "release"} {
			b.Run(fmt.Sprintf("%s-%dk", shape, n/1000), func(b *testing.B) {
				var srcs []lint.Source
				var docs int
				if shape == "cases" {
					srcs, docs = benchManifests(b, n)
				} else {
					srcs, docs = releaseManifests(n)
				}
				l := newLinter(b, lint.Options{})
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					l.Lint(srcs)
				}
				b.ReportMetric(float64(docs), "documents")
				b.ReportMetric(b.Elapsed().Seconds()*1e6/float64(b.N)/float64(docs), "µs/document")
			})
		}
	}
}
