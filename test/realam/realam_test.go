package realam_test

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medichq/medic/test/realam"
)

// webhookMessage is Alertmanager's webhook body (version 4).
type webhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	} `json:"alerts"`
}

type request struct {
	header http.Header
	body   []byte
	msg    webhookMessage
	err    error // JSON decoding error, if any
}

// recorder is a webhook receiver that keeps every POST it gets.
type recorder struct {
	mu   sync.Mutex
	reqs []request
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rec := request{header: req.Header.Clone(), body: body}
	rec.err = json.Unmarshal(body, &rec.msg)
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// waitFor polls until some recorded request satisfies match, for at most 30s.
func (r *recorder) waitFor(t *testing.T, what string, match func(request) bool) request {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		reqs := append([]request(nil), r.reqs...)
		r.mu.Unlock()
		for _, rq := range reqs {
			if rq.err == nil && match(rq) {
				return rq
			}
		}
		if time.Now().After(deadline) {
			for i, rq := range reqs {
				t.Logf("webhook request %d (decode err %v): %s", i, rq.err, rq.body)
			}
			t.Fatalf("no webhook request with %s after 30s (%d requests seen)", what, len(reqs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasLabels(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestBinaryIsTheExpectedRelease(t *testing.T) {
	for _, get := range []func() (string, error){realam.Binary, realam.Amtool} {
		bin, err := get()
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --version: %v\n%s", bin, err, out)
		}
		if want := "version " + strings.TrimPrefix(realam.Version, "v"); !strings.Contains(string(out), want) {
			t.Errorf("%s --version = %q, want it to contain %q", bin, out, want)
		}
	}
}

func TestFiringThenResolvedWebhook(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)

	am := realam.Start(t, srv.URL+"/hooks/alertmanager")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	labels := map[string]string{
		"alertname": "KubePodCrashLooping",
		"namespace": "shop",
		"pod":       "cart-7d9f8b6c5-x2x4k",
		"severity":  "critical",
	}
	annotations := map[string]string{"summary": "cart is crash looping"}
	const genURL = "http://prometheus.example/graph?g0.expr=up"
	startsAt := time.Now().Add(-2 * time.Minute).UTC().Truncate(time.Millisecond)

	if err := am.PostAlert(ctx, labels, annotations, startsAt, time.Time{}, genURL); err != nil {
		t.Fatal(err)
	}
	firing := rec.waitFor(t, "a firing alert", func(rq request) bool {
		return rq.msg.Status == "firing" && len(rq.msg.Alerts) == 1 && hasLabels(rq.msg.Alerts[0].Labels, labels)
	})
	m := firing.msg
	if m.Version != "4" {
		t.Errorf("version = %q, want 4", m.Version)
	}
	if m.Receiver != realam.ReceiverName {
		t.Errorf("receiver = %q, want %q", m.Receiver, realam.ReceiverName)
	}
	wantGroup := map[string]string{"alertname": labels["alertname"], "namespace": labels["namespace"], "pod": labels["pod"]}
	if !maps.Equal(m.GroupLabels, wantGroup) {
		t.Errorf("groupLabels = %v, want %v", m.GroupLabels, wantGroup)
	}
	if !maps.Equal(m.CommonLabels, labels) {
		t.Errorf("commonLabels = %v, want %v", m.CommonLabels, labels)
	}
	a := m.Alerts[0]
	if a.Status != "firing" || !maps.Equal(a.Annotations, annotations) || a.GeneratorURL != genURL || a.Fingerprint == "" {
		t.Errorf("firing alert = %+v", a)
	}
	if !a.StartsAt.Equal(startsAt) {
		t.Errorf("startsAt = %v, want %v", a.StartsAt, startsAt)
	}
	if ct := firing.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	if ua, want := firing.header.Get("User-Agent"), "Alertmanager/"+strings.TrimPrefix(realam.Version, "v"); ua != want {
		t.Errorf("User-Agent = %q, want %q", ua, want)
	}

	alerts, err := am.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].Labels["pod"] != labels["pod"] {
		t.Errorf("Alertmanager holds %d alerts, want the posted one", len(alerts))
	}

	endsAt := time.Now().Add(-time.Second).UTC().Truncate(time.Millisecond)
	if err := am.PostAlert(ctx, labels, annotations, startsAt, endsAt, genURL); err != nil {
		t.Fatal(err)
	}
	resolved := rec.waitFor(t, "the resolved alert", func(rq request) bool {
		return rq.msg.Status == "resolved" && len(rq.msg.Alerts) == 1 && hasLabels(rq.msg.Alerts[0].Labels, labels)
	})
	r := resolved.msg.Alerts[0]
	if r.Status != "resolved" || !r.EndsAt.Equal(endsAt) || r.Fingerprint != a.Fingerprint {
		t.Errorf("resolved alert = %+v, want status resolved, endsAt %v, fingerprint %s", r, endsAt, a.Fingerprint)
	}
	if resolved.msg.GroupKey != m.GroupKey {
		t.Errorf("groupKey changed from %q to %q", m.GroupKey, resolved.msg.GroupKey)
	}

	silences, err := am.Silences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(silences) != 0 {
		t.Errorf("fresh Alertmanager has %d silences", len(silences))
	}
}

func TestWebhookAuthOptions(t *testing.T) {
	cases := []struct {
		name string
		opt  realam.Option
		want func(*http.Request) bool
	}{
		{"bearer", realam.WithBearerToken("s3cret-token"), func(r *http.Request) bool {
			return r.Header.Get("Authorization") == "Bearer s3cret-token"
		}},
		{"basic", realam.WithBasicAuth("medic", "pa55"), func(r *http.Request) bool {
			u, p, ok := r.BasicAuth()
			return ok && u == "medic" && p == "pa55"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			var unauthorized int
			var mu sync.Mutex
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !tc.want(r) {
					mu.Lock()
					unauthorized++
					mu.Unlock()
					http.Error(w, "unauthorized", http.StatusUnauthorized)
					return
				}
				rec.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)

			am := realam.Start(t, srv.URL, tc.opt)
			labels := map[string]string{"alertname": "AuthCheck", "namespace": "medic", "pod": tc.name}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := am.PostAlert(ctx, labels, nil, time.Time{}, time.Time{}, ""); err != nil {
				t.Fatal(err)
			}
			rec.waitFor(t, "credentials accepted", func(rq request) bool {
				return rq.msg.Status == "firing" && len(rq.msg.Alerts) == 1 && hasLabels(rq.msg.Alerts[0].Labels, labels)
			})
			mu.Lock()
			defer mu.Unlock()
			if unauthorized != 0 {
				t.Errorf("%d webhook requests came without the expected credentials", unauthorized)
			}
		})
	}
}
