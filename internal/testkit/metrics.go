package testkit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric reads the metric name from g: the sum of its counters' and
// gauges' values, or of its histograms' sample counts, over the series
// whose labels include every pair of labels (name, value, name, value, …);
// 0 when no series matches yet.
func Metric(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetHistogram() != nil:
				n += float64(m.GetHistogram().GetSampleCount())
			case m.GetGauge() != nil:
				n += m.GetGauge().GetValue()
			default:
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
