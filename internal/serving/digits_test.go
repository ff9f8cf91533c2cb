package serving

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/spec"
)

const digitsDir = "../../examples/digits"

// loadDigits reads digits.csv: 64 pixel values then the label.
func loadDigits(t testing.TB) (x [][]float64, y []int) {
	t.Helper()
	f, err := os.Open(filepath.Join(digitsDir, "data", "digits.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		v := make([]float64, 64)
		for i := range v {
			v[i], _ = strconv.ParseFloat(r[i], 64)
		}
		label, _ := strconv.Atoi(r[64])
		x, y = append(x, v), append(y, label)
	}
	return x, y
}

// nearestCentroidModel writes a model in train.py's format (digits.json,
// input_scale 1/16, held_out_rows): nearest centroid is linear, argmin
// |x−c|² = argmax (2c·x − |c|²). Rows with i%5 == 4 are held out.
func nearestCentroidModel(t testing.TB, dir string) {
	t.Helper()
	x, y := loadDigits(t)
	var sum [10][64]float64
	var n [10]float64
	for i := range x {
		if i%5 == 4 {
			continue
		}
		for j, v := range x[i] {
			sum[y[i]][j] += v
		}
		n[y[i]]++
	}
	m := map[string]any{"classes": []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}
	W, b := make([][]float64, 10), make([]float64, 10)
	for k := range 10 {
		W[k] = make([]float64, 64)
		for j := range 64 {
			c := sum[k][j] / n[k] / 16 // in scaled units
			W[k][j] = 2 * c
			b[k] -= c * c
		}
	}
	var held []int
	for i := range x {
		if i%5 == 4 {
			held = append(held, i)
		}
	}
	m["kind"], m["inputs"], m["input_scale"] = "softmax-regression", 64, 1.0/16
	m["W"], m["b"], m["held_out_rows"] = W, b, held
	data, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, "digits.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestServeYAMLIsAValidSpec(t *testing.T) {
	docs, err := spec.ParseFile(filepath.Join(digitsDir, "serve.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Validate(docs); err != nil {
		t.Fatal(err)
	}
	var svc *v1alpha1.InferenceService
	for _, d := range docs {
		if s, ok := d.Object.(*v1alpha1.InferenceService); ok {
			svc = s
		}
	}
	if svc == nil || svc.Spec.Autoscaling == nil || svc.Spec.Autoscaling.MaxReplicas != 4 || *svc.Spec.Autoscaling.Target.CPUUtilization != 70 {
		t.Fatalf("serve.yaml does not autoscale 1–4 on 70%% CPU: %+v", svc)
	}
}

// TestDigitsServerThroughTheService runs serve.py as the service's replica
// (the command and probes of serve.yaml) and checks the V2 protocol and
// the accuracy over held-out rows through the load balancer.
func TestDigitsServerThroughTheService(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed")
	}
	docs, err := spec.ParseFile(filepath.Join(digitsDir, "serve.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var svcSpec v1alpha1.InferenceServiceSpec
	for _, d := range docs {
		if s, ok := d.Object.(*v1alpha1.InferenceService); ok {
			svcSpec = s.Spec
		}
	}
	svcSpec.Autoscaling = nil
	svcSpec.Replicas = ptr[int32](2)
	models := t.TempDir()
	nearestCentroidModel(t, models)
	abs, _ := filepath.Abs(digitsDir)
	s := startService(t, Config{Name: "digits", Spec: svcSpec, Dir: abs, Env: []string{"MODEL_DIR=" + models}})
	waitFor(t, s, 60*time.Second, "two ready replicas", func(st backend.Service) bool { return st.ReadyReplicas == 2 })

	if code, body := get(t, s.URL()+"/v2/models/digits"); code != 200 || !bytes.Contains([]byte(body), []byte(`"input-0"`)) {
		t.Fatalf("model metadata: %d %s", code, body)
	}
	x, y := loadDigits(t)
	var batch []float64
	var want []int
	for i := range x {
		if i%5 == 4 {
			batch = append(batch, x[i]...)
			want = append(want, y[i])
		}
	}
	req := map[string]any{"id": "held-out", "inputs": []map[string]any{{"name": "input-0", "shape": []int{len(want), 64}, "datatype": "FP32", "data": batch}}}
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hreq, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/v2/models/digits/infer", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ModelName string `json:"model_name"`
		ID        string `json:"id"`
		Outputs   []struct {
			Name     string `json:"name"`
			Shape    []int  `json:"shape"`
			Datatype string `json:"datatype"`
			Data     []int  `json:"data"`
		} `json:"outputs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("infer: %d %v", resp.StatusCode, err)
	}
	if out.ModelName != "digits" || out.ID != "held-out" || len(out.Outputs) != 1 || out.Outputs[0].Datatype != "INT64" ||
		len(out.Outputs[0].Data) != len(want) || out.Outputs[0].Shape[0] != len(want) {
		t.Fatalf("response does not follow the V2 protocol: %+v", out)
	}
	correct := 0
	for i, p := range out.Outputs[0].Data {
		if p == want[i] {
			correct++
		}
	}
	acc := float64(correct) / float64(len(want))
	t.Logf("held-out accuracy through the load balancer: %.3f over %d rows", acc, len(want))
	if acc < 0.85 {
		t.Errorf("held-out accuracy %.3f, want at least 0.85 for a nearest-centroid model", acc)
	}
	// Each replica's output is in its log, prefixed when all are asked for.
	var logs bytes.Buffer
	if err := s.Logs(context.Background(), -1, false, &logs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[replica 0] serving digits on", "[replica 1] loaded model"} {
		if !bytes.Contains(logs.Bytes(), []byte(want)) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
	if err := s.Logs(context.Background(), 7, false, &logs); err == nil {
		t.Error("logs of a replica that does not exist did not fail")
	}
	// A malformed tensor is a 400 with a reason, not a crash.
	bad, _ := http.Post(s.URL()+"/v2/models/digits/infer", "application/json", bytes.NewReader([]byte(`{"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`)))
	if bad.StatusCode != 400 {
		t.Errorf("bad shape answered %d, want 400", bad.StatusCode)
	}
	bad.Body.Close()
}
