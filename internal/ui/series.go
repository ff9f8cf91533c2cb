package ui

import (
	"slices"
	"strconv"

	"github.com/petrel-dev/petrel/internal/backend"
)

// xNames are the metric names that, when a job reports them, become the
// charts' x axis instead of time, in order of preference.
var xNames = []string{"epoch", "step", "iteration", "iter"}

// Chart data sent to the browser (/api/…/series): one chart per metric,
// one line per run (job attempt, or job when runs are compared).
type chartData struct {
	// XName is the metric used as x axis ("epoch", "step"), or "" when
	// the job reports none and charts are against time.
	XName  string        `json:"xName"`
	Series []chartSeries `json:"series"`
	// Running is true while some job shown still runs (the page polls).
	Running bool `json:"running"`
}

// chartSeries is one run's values of one metric.
type chartSeries struct {
	Label  string `json:"label"`
	Metric string `json:"metric"`
	// Points are [elapsed seconds since the run's first metric, x, y];
	// x is null when the line that reported y had no XName value.
	Points [][3]any `json:"points"`
}

// pickXName returns the first of xNames among the points' names, or "".
func pickXName(pts []backend.MetricPoint) string {
	seen := map[string]bool{}
	for _, p := range pts {
		seen[p.Name] = true
	}
	for _, n := range xNames {
		if seen[n] {
			return n
		}
	}
	return ""
}

// buildSeries turns one job's metric points into series, one per
// (attempt, metric), labelled prefix plus the attempt when the job has
// several. Points of one attempt are grouped into records: a record ends
// when a name repeats, so "epoch=3 loss=0.4" on one line — or on two —
// gives loss the x value 3. xName is the shared x axis ("" = time).
func buildSeries(prefix string, pts []backend.MetricPoint, xName string, attemptLabels bool) []chartSeries {
	type key struct {
		attempt int
		metric  string
	}
	out := []chartSeries{} // JSON [] rather than null for a job without metrics
	idx := map[key]int{}
	starts := map[int]float64{}
	var attempts []int
	byAttempt := map[int][]backend.MetricPoint{}
	for _, p := range pts {
		if _, ok := byAttempt[p.Attempt]; !ok {
			attempts = append(attempts, p.Attempt)
		}
		byAttempt[p.Attempt] = append(byAttempt[p.Attempt], p)
	}
	slices.Sort(attempts)
	for _, a := range attempts {
		ps := byAttempt[a]
		starts[a] = float64(ps[0].Time.UnixMilli()) / 1000
		label := prefix
		if attemptLabels {
			if label != "" {
				label += " "
			}
			label += "attempt " + strconv.Itoa(a)
		}
		// Walk records: a record is a run of points without a repeated name.
		i := 0
		for i < len(ps) {
			j := i
			names := map[string]bool{}
			var x any
			for j < len(ps) && !names[ps[j].Name] {
				names[ps[j].Name] = true
				if xName != "" && ps[j].Name == xName {
					x = ps[j].Value
				}
				j++
			}
			for _, p := range ps[i:j] {
				if p.Name == xName {
					continue
				}
				k := key{a, p.Name}
				n, ok := idx[k]
				if !ok {
					n = len(out)
					idx[k] = n
					out = append(out, chartSeries{Label: label, Metric: p.Name})
				}
				t := float64(p.Time.UnixMilli())/1000 - starts[a]
				out[n].Points = append(out[n].Points, [3]any{t, x, p.Value})
			}
			i = j
		}
	}
	return out
}
