package testkit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestMetric(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "h"}, []string{"sink", "reason"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h_seconds", Help: "h"}, []string{"sink"})
	reg.MustRegister(c, h)
	c.WithLabelValues("a", "x").Add(2)
	c.WithLabelValues("a", "y").Add(3)
	c.WithLabelValues("b", "x").Add(5)
	h.WithLabelValues("a").Observe(1)
	h.WithLabelValues("a").Observe(2)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	scraped := Scraped(srv.URL)
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"c_total", nil, 10},
		{"c_total", []string{"sink", "a"}, 5},
		{"c_total", []string{"sink", "a", "reason", "x"}, 2},
		{"c_total", []string{"sink", "z"}, 0},
		{"h_seconds", []string{"sink", "a"}, 2},
		{"missing_total", nil, 0},
	} {
		if got := Metric(t, reg, tt.name, tt.labels...); got != tt.want {
			t.Errorf("Metric(%s, %v) = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
		// The same figures read back from the text format a process serves.
		if got := Metric(t, scraped, tt.name, tt.labels...); got != tt.want {
			t.Errorf("Metric(Scraped, %s, %v) = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
}

func TestScrapedReportsAFailedScrape(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := Scraped(srv.URL + "/metrics").Gather(); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a 404 scrape: err %v, want one naming the status", err)
	}
}
