package app

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
)

// postAlert posts one KubePodCrashLooping alert of its own (its pod and
// fingerprint) in status firing or resolved.
func postAlert(t *testing.T, a *App, i int, status string) {
	t.Helper()
	ends := "0001-01-01T00:00:00Z"
	if status == "resolved" {
		ends = "2024-05-01T10:30:00Z"
	}
	body := fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"KubePodCrashLooping\"}","status":%[2]q,"receiver":"medic",
"groupLabels":{"alertname":"KubePodCrashLooping"},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://alertmanager:9093","truncatedAlerts":0,
"alerts":[{"status":%[2]q,"labels":{"alertname":"KubePodCrashLooping","namespace":"shop","pod":"cart-%[1]d","severity":"warning"},
"annotations":{"summary":"Pod is crash looping."},"startsAt":"2024-05-01T10:00:00Z","endsAt":%[3]q,"fingerprint":"fp%[1]d"}]}`, i, status, ends)
	resp, err := http.Post("http://"+a.Addr()+"/api/alerts", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %s", resp.Status)
	}
}

// Routing keys end to end through the bus: a muted sink gets nothing, a
// send_resolved: false sink gets only the firing findings, an unmuted sink
// gets every finding once; what a sink's keys kept from it is counted by
// reason, not dead-lettered.
func TestRoutingKeysThroughTheBus(t *testing.T) {
	const n = 5
	recv := map[string]*keyCounter{}
	cfg := aiConfig(t, nil)
	cfg.Sinks = nil
	var doc strings.Builder
	for _, s := range []struct{ name, keys string }{
		{"open", ""},
		// Muted for the whole century: whatever the wall clock says.
		{"muted", `, mute_intervals: [{start_date: "2000-01-01", end_date: "2099-12-31"}]`},
		{"firing-only", ", send_resolved: false"},
	} {
		recv[s.name] = &keyCounter{n: map[string]int{}}
		srv := httptest.NewServer(recv[s.name])
		t.Cleanup(srv.Close)
		fmt.Fprintf(&doc, "- {name: %s, type: webhook, url: %q%s}\n", s.name, srv.URL, s.keys)
	}
	if err := yaml.Unmarshal([]byte(doc.String()), &cfg.Sinks); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cfg)
	for i := range n {
		postAlert(t, a, i, "firing")
	}
	testkit.Eventually(t, 30*time.Second, "every firing finding delivered to firing-only", func() bool {
		return len(recv["firing-only"].counts()) == n
	})
	for i := range n {
		postAlert(t, a, i, "resolved")
	}
	testkit.Eventually(t, 30*time.Second, "every finding delivered to open", func() bool {
		return len(recv["open"].counts()) == 2*n
	})

	for name, want := range map[string]int{"open": 2 * n, "firing-only": n, "muted": 0} {
		accepted, dups := 0, 0
		for _, c := range recv[name].counts() {
			accepted++
			dups += c - 1
		}
		t.Logf("sink %s: accepted %d, lost %d, duplicates %d", name, accepted, want-accepted, dups)
		if accepted != want || dups != 0 {
			t.Errorf("sink %s: accepted %d (want %d), duplicates %d (want 0)", name, accepted, want, dups)
		}
	}
	for _, c := range []struct {
		sink, reason string
		want         float64
	}{{"muted", sinks.SkipMuted, 2 * n}, {"firing-only", sinks.SkipResolved, n}, {"open", sinks.SkipMuted, 0}} {
		if got := counter(t, a, "medic_sink_skipped_total", map[string]string{"sink": c.sink, "reason": c.reason}); got != c.want {
			t.Errorf("medic_sink_skipped_total{sink=%q,reason=%q} = %v, want %v", c.sink, c.reason, got, c.want)
		}
	}
	for _, consumer := range []string{"sink-open", "sink-muted", "sink-firing-only"} {
		if got := counter(t, a, "medic_dead_letters_total", map[string]string{"consumer": consumer}); got != 0 {
			t.Errorf("%s dead-lettered %v findings", consumer, got)
		}
	}
}

// Probes and scrapes leave the binary's idle paging on; every other request
// is work and ends it (memtrim.Wake).
func TestWakeOnWorkSparesProbesAndScrapes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, path string
		wakes        bool
	}{
		{"GET", "/healthz", false},
		{"GET", "/readyz", false},
		{"GET", "/metrics", false},
		{"POST", "/api/alerts", true},
		{"POST", "/api/trigger", true},
		{"POST", "/slack/interactions", true},
		{"GET", "/findings/f1", true},
		{"GET", "/nowhere", true},
	} {
		woke := 0
		served := false
		h := wakeOnWork(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true }), func() { woke++ })
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tc.method, tc.path, nil))
		if !served {
			t.Errorf("%s %s: not passed on to the handler", tc.method, tc.path)
		}
		if got := woke == 1; got != tc.wakes {
			t.Errorf("%s %s: woke %d times, want a wake: %v", tc.method, tc.path, woke, tc.wakes)
		}
	}
}
