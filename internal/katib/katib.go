// Package katib parses training metrics printed in Katib's stdout format
// ("epoch=3 loss=0.41 accuracy=0.93"), the same way on the local engine
// (from attempt log files) and on Kubernetes (from pod logs).
package katib

import (
	"regexp"
	"strconv"
)

// metric is Katib's default StdOut metrics filter
// (pkg/metricscollector/v1beta1/common: `([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)`).
var metric = regexp.MustCompile(`([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)`)

// Metric is one name=value pair of a line.
type Metric struct {
	Name  string
	Value float64
}

// ParseLine returns the metrics of one output line, in order; pairs whose
// value is not a number are skipped.
func ParseLine(line string) []Metric {
	var out []Metric
	for _, m := range metric.FindAllStringSubmatch(line, -1) {
		if m[2] == "" || m[2] == "+" || m[2] == "-" {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		out = append(out, Metric{Name: m[1], Value: v})
	}
	return out
}
