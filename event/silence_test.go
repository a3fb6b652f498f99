package event

import (
	"net/url"
	"testing"
)

func TestSilenceURL(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"severity": "critical", "alertname": "KubePodCrashLooping", "namespace": "shop", "pod": `cart "7d9"`}
	const filter = `{alertname="KubePodCrashLooping",namespace="shop",pod="cart \"7d9\"",severity="critical"}`
	for _, tc := range []struct {
		name, externalURL string
		labels            map[string]string
		want              string
	}{
		{"alertname first, then sorted, values quoted", "http://alertmanager:9093", labels,
			"http://alertmanager:9093/#/silences/new?filter=" + url.QueryEscape(filter)},
		{"a trailing slash is not doubled", "https://am.example.com/", labels,
			"https://am.example.com/#/silences/new?filter=" + url.QueryEscape(filter)},
		{"a path prefix is kept", "https://example.com/alertmanager", map[string]string{"alertname": "X"},
			"https://example.com/alertmanager/#/silences/new?filter=" + url.QueryEscape(`{alertname="X"}`)},
		{"no alertname: sorted", "http://am", map[string]string{"b": "2", "a": "1"},
			"http://am/#/silences/new?filter=" + url.QueryEscape(`{a="1",b="2"}`)},
		{"not from an Alertmanager", "", labels, ""},
		{"not a web URL", "am:9093", labels, ""},
		{"a scheme without a host", "http://", labels, ""},
		{"a scheme and a path without a host", "https:///x", labels, ""},
		{"no labels", "http://am", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := &Event{ExternalURL: tc.externalURL, Labels: tc.labels}
			if got := e.SilenceURL(); got != tc.want {
				t.Errorf("SilenceURL() = %q, want %q", got, tc.want)
			}
		})
	}
}

// BenchmarkSilenceURL is the link every alert's finding carries, so a storm
// builds it once per alert.
func BenchmarkSilenceURL(b *testing.B) {
	e := &Event{ExternalURL: "http://alertmanager.monitoring:9093", Labels: map[string]string{
		"alertname": "KubePodCrashLooping", "severity": "warning", "namespace": "shop", "pod": "cart-7d9-x2x4z",
		"container": "cart", "job": "kube-state-metrics", "prometheus": "monitoring/k8s", "bench_id": "12345",
	}}
	b.ReportAllocs()
	for b.Loop() {
		if e.SilenceURL() == "" {
			b.Fatal("no link")
		}
	}
}
