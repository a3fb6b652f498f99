package testkit

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// Scraped is a Gatherer over a running process's Prometheus endpoint (the
// text format at url), so Metric reads a medic binary's /metrics the way it
// reads an in-process registry.
func Scraped(url string) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		resp, err := http.Get(url)
		if err != nil {
			return nil, fmt.Errorf("scrape %s: %w", url, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", url, err)
		}
		out := make([]*dto.MetricFamily, 0, len(families))
		for _, mf := range families {
			out = append(out, mf)
		}
		return out, nil
	})
}
