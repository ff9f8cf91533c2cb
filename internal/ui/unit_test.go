package ui

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
)

func TestBuildSeriesGivesEachMetricTheEpochOfItsRecord(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pt := func(a int, sec int, name string, v float64) backend.MetricPoint {
		return backend.MetricPoint{Attempt: a, Time: t0.Add(time.Duration(sec) * time.Second), Name: name, Value: v}
	}
	tests := []struct {
		name     string
		pts      []backend.MetricPoint
		attempts bool
		want     map[string]string // label/metric → points as "t,x,y;…"
	}{
		{"one line per epoch, read in one batch (same time)",
			[]backend.MetricPoint{pt(0, 0, "epoch", 1), pt(0, 0, "loss", .9), pt(0, 0, "epoch", 2), pt(0, 0, "loss", .8)}, false,
			map[string]string{"/loss": "0,1,0.9;0,2,0.8"}},
		{"epoch and loss on separate lines",
			[]backend.MetricPoint{pt(0, 0, "epoch", 1), pt(0, 1, "loss", .9), pt(0, 2, "epoch", 2), pt(0, 3, "loss", .8)}, false,
			map[string]string{"/loss": "1,1,0.9;3,2,0.8"}},
		{"two attempts are two lines, each timed from its own start",
			[]backend.MetricPoint{pt(0, 5, "epoch", 1), pt(0, 5, "loss", .9), pt(1, 50, "epoch", 1), pt(1, 52, "loss", .7)}, true,
			map[string]string{"attempt 0/loss": "0,1,0.9", "attempt 1/loss": "2,1,0.7"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, s := range buildSeries("", tc.pts, pickXName(tc.pts), tc.attempts) {
				var parts []string
				for _, p := range s.Points {
					parts = append(parts, strings.Trim(strings.Join(strings.Fields(strings.Trim(fmtPoint(p), "[]")), ","), ","))
				}
				got[s.Label+"/"+s.Metric] = strings.Join(parts, ";")
			}
			if len(got) != len(tc.want) {
				t.Fatalf("series %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func fmtPoint(p [3]any) string {
	var s []string
	for _, v := range p {
		if v == nil {
			s = append(s, "null")
		} else {
			s = append(s, fmt.Sprint(v))
		}
	}
	return strings.Join(s, ",")
}

func TestJobWithoutMetricsHasAnEmptySeriesList(t *testing.T) {
	s := newTestServer(t, &fakeBackend{jobs: manyJobs(1)})
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:9/api/jobs/job-0000/series", nil)
	req.Header.Set("Authorization", "Bearer "+benchToken)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"series":[]`) {
		t.Errorf("GET series: %d %s, want an empty list (the page's script maps over it)", rec.Code, rec.Body)
	}
}

func TestQuantileInterpolatesInsideTheBucketAsHistogramQuantile(t *testing.T) {
	bounds := []float64{0.1, 0.5, 1, math.Inf(1)}
	tests := []struct {
		name string
		q    float64
		cum  []float64
		want float64
	}{
		{"median in the first bucket", 0.5, []float64{10, 10, 10, 10}, 0.05},
		{"p99 in the second bucket", 0.99, []float64{50, 100, 100, 100}, 0.1 + 0.4*(99-50)/50},
		{"rank in +Inf gives the highest finite bound", 0.99, []float64{0, 0, 1, 10}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := quantile(tc.q, bounds, tc.cum); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("quantile = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseMetricReadsTheAutoscalersSummary(t *testing.T) {
	for in, want := range map[string][3]any{
		"cpu 142% / 70%":          {"cpu", 142.0, 70.0},
		"concurrency 1.50 / 2.00": {"concurrency", 1.5, 2.0},
	} {
		n, v, tg, ok := parseMetric(in)
		if !ok || n != want[0] || v != want[1] || tg != want[2] {
			t.Errorf("parseMetric(%q) = %q %v %v %v, want %v", in, n, v, tg, ok, want)
		}
	}
	if _, _, _, ok := parseMetric("autoscaling off (scaled by hand until the next serve -f)"); ok {
		t.Error("a manual-scale note parsed as a metric")
	}
}

func TestGuardMovesTheTokenIntoAStrictHttpOnlyCookie(t *testing.T) {
	s := newTestServer(t, &fakeBackend{jobs: manyJobs(2)})
	h := s.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1:9/jobs/job-0001?token="+benchToken, nil))
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/jobs/job-0001" {
		t.Fatalf("first visit: %d to %q, want 303 to the URL without the token", rec.Code, rec.Header().Get("Location"))
	}
	c := rec.Result().Cookies()
	if len(c) != 1 || !c[0].HttpOnly || c[0].SameSite != http.SameSiteStrictMode || c[0].Value != benchToken {
		t.Fatalf("cookie %+v, want HttpOnly SameSite=Strict with the token", c)
	}
	req := httptest.NewRequest(http.MethodGet, "http://localhost:9/jobs/job-0001", nil)
	req.AddCookie(c[0])
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "job-0001") {
		t.Fatalf("with the cookie: %d %s", rec.Code, rec.Body.String())
	}
	for _, tc := range []struct {
		name string
		req  *http.Request
		want int
	}{
		{"no token", httptest.NewRequest(http.MethodGet, "http://127.0.0.1:9/jobs", nil), http.StatusUnauthorized},
		{"other host", httptest.NewRequest(http.MethodGet, "http://attacker.example/jobs?token="+benchToken, nil), http.StatusForbidden},
		{"write method", httptest.NewRequest(http.MethodDelete, "http://127.0.0.1:9/jobs/job-0001?token="+benchToken, nil), http.StatusMethodNotAllowed},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, tc.req)
		if rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, rec.Code, tc.want)
		}
	}
}

func TestListenRefusesANonLoopbackAddress(t *testing.T) {
	s := newTestServer(t, &fakeBackend{})
	if _, err := s.Listen(t.Context(), "0.0.0.0:0"); err == nil {
		t.Fatal("listening on all interfaces was allowed")
	}
}
