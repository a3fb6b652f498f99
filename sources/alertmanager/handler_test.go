package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/medichq/medic/event"
)

// recordingPublisher stands in for the JetStream publisher: it remembers
// what it was given and deduplicates by ID as JetStream does by Nats-Msg-Id.
type recordingPublisher struct {
	mu        sync.Mutex
	published []event.Event
	seen      map[string]bool
	err       error
}

func (p *recordingPublisher) Publish(_ context.Context, events []event.Event) (event.PublishResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return event.PublishResult{}, p.err
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	var res event.PublishResult
	for _, ev := range events {
		if p.seen[ev.ID] {
			res.Duplicates++
			continue
		}
		p.seen[ev.ID] = true
		p.published = append(p.published, ev)
		res.Stored++
	}
	return res, nil
}

func (p *recordingPublisher) events() []event.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]event.Event(nil), p.published...)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type fixture struct {
	h       http.Handler
	pub     *recordingPublisher
	metrics *Metrics
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	pub := &recordingPublisher{}
	h, err := NewHandler(opts, pub, testLogger(t), reg)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	// A second NewMetrics on the same registry hands back the collectors
	// the handler registered, as the manual trigger relies on.
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics on a registry that has them: %v", err)
	}
	return &fixture{h: h, pub: pub, metrics: m}
}

func (f *fixture) post(t *testing.T, body []byte, mutate func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/alerts", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if mutate != nil {
		mutate(req)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	return rec
}

func counter(t *testing.T, c *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.WithLabelValues(labels...).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func decodeBody[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("answer %q is not JSON: %v", rec.Body.String(), err)
	}
	return v
}

func TestHandlerAcceptsAndDeduplicates(t *testing.T) {
	f := newFixture(t, Options{})
	body := readPayload(t, "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json")

	rec := f.post(t, body, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if got := decodeBody[Response](t, rec); got != (Response{Accepted: 1, Duplicates: 0}) {
		t.Errorf("answer = %+v", got)
	}
	evs := f.pub.events()
	if len(evs) != 1 {
		t.Fatalf("published %d events", len(evs))
	}
	ev := evs[0]
	if ev.Kind != event.KindPrometheusAlert || ev.Source != DefaultSource || ev.Label("alertname") != "KubePodCrashLooping" ||
		ev.Subject.String() != "pod/default/web-1" || ev.ReceivedAt.IsZero() {
		t.Errorf("published %+v", ev)
	}

	// Alertmanager retries the same notification: same ID, reported duplicate.
	rec = f.post(t, body, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("retry: status %d: %s", rec.Code, rec.Body)
	}
	if got := decodeBody[Response](t, rec); got != (Response{Accepted: 1, Duplicates: 1}) {
		t.Errorf("retry answer = %+v", got)
	}
	if n := len(f.pub.events()); n != 1 {
		t.Errorf("%d events stored after a retry, want 1", n)
	}
	if got := counter(t, f.metrics.Received, "alertmanager"); got != 2 {
		t.Errorf("received = %v", got)
	}
	if got := counter(t, f.metrics.Stored, "alertmanager"); got != 1 {
		t.Errorf("stored = %v", got)
	}
	if got := counter(t, f.metrics.Deduplicated, "alertmanager"); got != 1 {
		t.Errorf("deduplicated = %v", got)
	}
}

func TestHandlerMultipleAlerts(t *testing.T) {
	f := newFixture(t, Options{Source: "am-eu"})
	rec := f.post(t, readPayload(t, "prom2teams__with_common_items.json"), nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	evs := f.pub.events()
	if len(evs) != 1 || evs[0].Source != "am-eu" {
		t.Fatalf("published %+v", evs)
	}

	// Two alerts that share a hand-written fingerprint: both are stored.
	rec = f.post(t, readPayload(t, "prom2teams__all_ok_multiple.json"), nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if got := decodeBody[Response](t, rec); got != (Response{Accepted: 2}) {
		t.Errorf("answer = %+v", got)
	}
	if n := len(f.pub.events()); n != 3 {
		t.Errorf("%d events stored, want 3", n)
	}
}

func TestHandlerRejects(t *testing.T) {
	valid := readPayload(t, "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json")
	holmes := readPayload(t, "holmesgpt__11_KubePodCrashLooping__issue_data.json")
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	tokenAuth := Options{Auth: Auth{BearerToken: "s3cret"}}
	basicAuth := Options{Auth: Auth{Username: "am", Password: "pw"}}

	tests := []struct {
		name      string
		opts      Options
		method    string
		body      []byte
		mutate    func(*http.Request)
		code      int
		reason    string
		errSubstr string
		header    [2]string
		limit     string // the setting the answer names
		max       int64  // and its value
	}{
		{name: "malformed", body: []byte(`{"version":"4","alerts":[`), code: 400, reason: ReasonMalformed, errSubstr: "malformed JSON"},
		{name: "not a webhook", body: holmes, code: 400, reason: ReasonNotWebhook, errSubstr: `"version" is missing`},
		{name: "bad alert status", body: []byte(`{"version":"4","alerts":[{"status":"open","labels":{"a":"b"}}]}`), code: 400, reason: ReasonNotWebhook,
			errSubstr: `alerts[0]: status "open" is not firing or resolved`},
		{name: "too large by Content-Length", opts: Options{MaxBodyBytes: 64}, body: valid, code: 413, reason: ReasonTooLarge, errSubstr: "limit of 64 bytes",
			limit: LimitMaxBodyBytes, max: 64},
		{name: "too many alerts", opts: Options{Caps: Caps{MaxAlerts: 2}}, body: manyAlerts(3), code: 413, reason: ReasonTooManyAlerts,
			errSubstr: "more than 2 alerts", limit: LimitMaxAlerts, max: 2},
		{name: "too many alerts, key escaped", opts: Options{Caps: Caps{MaxAlerts: 2}}, code: 413, reason: ReasonTooManyAlerts, limit: LimitMaxAlerts, max: 2,
			body: bytes.Replace(manyAlerts(3), []byte(`"alerts"`), []byte(`"\u0041LERTS"`), 1)},
		{name: "too large decoded", opts: Options{Caps: Caps{MaxDecodedBytes: 4096}}, body: manyAlerts(3), code: 413, reason: ReasonTooLarge,
			errSubstr: "more than 4096", limit: LimitMaxDecodedBytes, max: 4096},
		{name: "too large for the whole budget", opts: Options{Caps: Caps{Budget: NewDecodeBudget(4096, time.Second)}}, body: manyAlerts(3), code: 413,
			reason: ReasonTooLarge, limit: LimitMaxInFlightDecodedBytes, max: 4096},
		{name: "too large, chunked", opts: Options{MaxBodyBytes: 64}, body: valid, mutate: func(r *http.Request) { r.ContentLength = -1 },
			code: 413, reason: ReasonTooLarge, errSubstr: "limit of 64 bytes", limit: LimitMaxBodyBytes, max: 64},
		// A body shorter than its Content-Length is a cut request, not a
		// shorter webhook.
		{name: "shorter than Content-Length", body: valid, mutate: func(r *http.Request) { r.ContentLength = int64(len(valid)) + 10 },
			code: 400, reason: ReasonMalformed, errSubstr: "reading the body"},
		// Longer than announced (possible only outside net/http's server):
		// read on to the limit, not cut at Content-Length.
		{name: "longer than Content-Length, over the limit", opts: Options{MaxBodyBytes: int64(len(valid)) - 1}, body: valid,
			mutate: func(r *http.Request) { r.ContentLength = 10 }, code: 413, reason: ReasonTooLarge,
			limit: LimitMaxBodyBytes, max: int64(len(valid)) - 1},
		{name: "longer than Content-Length, cut there would be malformed", body: []byte(`{"version":"4","alerts":[]}`),
			mutate: func(r *http.Request) { r.ContentLength = 3 }, code: 400, reason: ReasonNotWebhook, errSubstr: `"alerts" is empty`},
		{name: "GET", method: http.MethodGet, code: 405, reason: ReasonMethod, header: [2]string{"Allow", "POST"}},
		{name: "missing bearer", opts: tokenAuth, body: valid, code: 401, reason: ReasonUnauthorized,
			header: [2]string{"WWW-Authenticate", `Bearer realm="medic"`}},
		{name: "wrong bearer", opts: tokenAuth, body: valid, mutate: bearer("guess"), code: 401, reason: ReasonUnauthorized},
		{name: "basic sent, bearer wanted", opts: tokenAuth, body: valid, mutate: basic("am", "s3cret"), code: 401, reason: ReasonUnauthorized},
		{name: "missing basic", opts: basicAuth, body: valid, code: 401, reason: ReasonUnauthorized,
			header: [2]string{"WWW-Authenticate", `Basic realm="medic", charset="UTF-8"`}},
		{name: "wrong password", opts: basicAuth, body: valid, mutate: basic("am", "nope"), code: 401, reason: ReasonUnauthorized},
		{name: "wrong user", opts: basicAuth, body: valid, mutate: basic("root", "pw"), code: 401, reason: ReasonUnauthorized},
		// Credentials are checked before the body is looked at, so an
		// unauthenticated caller learns nothing about what would be accepted.
		{name: "unauthorized garbage", opts: tokenAuth, body: []byte("garbage"), code: 401, reason: ReasonUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			mutate := tt.mutate
			if tt.method != "" {
				mutate = func(r *http.Request) { r.Method = tt.method }
			}
			rec := f.post(t, tt.body, mutate)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if n := len(f.pub.events()); n != 0 {
				t.Errorf("%d events published for a rejected request", n)
			}
			ans := decodeBody[errorBody](t, rec)
			if ans.Error == "" || !strings.Contains(ans.Error, tt.errSubstr) {
				t.Errorf("answer %s, want an error containing %q", rec.Body, tt.errSubstr)
			}
			if ans.Limit != tt.limit || ans.Max != tt.max {
				t.Errorf("answer names limit %q = %d, want %q = %d", ans.Limit, ans.Max, tt.limit, tt.max)
			}
			if tt.header[0] != "" && rec.Header().Get(tt.header[0]) != tt.header[1] {
				t.Errorf("%s = %q, want %q", tt.header[0], rec.Header().Get(tt.header[0]), tt.header[1])
			}
			if got := counter(t, f.metrics.Rejected, "alertmanager", tt.reason); got != 1 {
				t.Errorf("rejected{reason=%s} = %v", tt.reason, got)
			}
			if got := counter(t, f.metrics.Received, "alertmanager"); got != 0 {
				t.Errorf("received = %v", got)
			}
		})
	}
}

func TestHandlerAcceptsCredentials(t *testing.T) {
	valid := readPayload(t, "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json")
	both := Options{Auth: Auth{BearerToken: "tok", Username: "am", Password: "pw"}}
	tests := []struct {
		name   string
		opts   Options
		mutate func(*http.Request)
	}{
		{"no auth configured", Options{}, nil},
		{"bearer", both, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }},
		{"bearer, lower-case scheme", both, func(r *http.Request) { r.Header.Set("Authorization", "bearer tok") }},
		{"basic", both, func(r *http.Request) { r.SetBasicAuth("am", "pw") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			if rec := f.post(t, valid, tt.mutate); rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if n := len(f.pub.events()); n != 1 {
				t.Errorf("published %d", n)
			}
		})
	}
}

func TestHandlerBusUnavailable(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		reason     string
		retryAfter string
	}{
		// Any other refusal: the sender is told to come back soon.
		{"no responders", errors.New("nats: no responders available for request"), ReasonBusUnavailable, "2"},
		// The stream refused the events (DiscardNew at bus.max_bytes):
		// the sender is told when to come back, and nothing was dropped.
		{"stream full", fmt.Errorf("store 1f3a: %w: jetstream error 503 (10077): maximum bytes exceeded", event.ErrStreamFull), ReasonStreamFull, "5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			f.pub.err = tt.err
			rec := f.post(t, readPayload(t, "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json"), nil)
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			if ans := decodeBody[map[string]string](t, rec); !strings.Contains(ans["error"], "retry") {
				t.Errorf("answer %v", ans)
			}
			if got := counter(t, f.metrics.Rejected, "alertmanager", tt.reason); got != 1 {
				t.Errorf("rejected{%s} = %v", tt.reason, got)
			}
			if got := counter(t, f.metrics.Stored, "alertmanager"); got != 0 {
				t.Errorf("stored = %v", got)
			}
		})
	}
}

// Over a real connection the server must answer 413 and not hang on a body
// it refuses to read.
func TestHandlerOverHTTP(t *testing.T) {
	f := newFixture(t, Options{MaxBodyBytes: 1024})
	srv := httptest.NewServer(f.h)
	defer srv.Close()

	big := bytes.Repeat([]byte("x"), 1<<20)
	resp, err := http.Post(srv.URL+"/api/alerts", "application/json", io.MultiReader(bytes.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d", resp.StatusCode)
	}

	resp, err = http.Post(srv.URL+"/api/alerts", "application/json",
		bytes.NewReader(readPayload(t, "captured-alertmanager-v0.34.2__KubeNodeNotReady__firing.json")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
}

func TestNewHandlerValidates(t *testing.T) {
	if _, err := NewHandler(Options{}, nil, nil, nil); err == nil {
		t.Error("nil publisher accepted")
	}
	if _, err := NewHandler(Options{MaxBodyBytes: -1}, &recordingPublisher{}, nil, nil); err == nil {
		t.Error("negative MaxBodyBytes accepted")
	}
}

func TestNewMetricsConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Something else took the name with another type: that is a real error.
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "medic_events_received_total", Help: "x"}))
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("no error for a conflicting collector")
	}
}

// TestHandlerAcceptsOnlyJSON: what a browser can send across origins
// without a preflight (text/plain, a form, multipart) and a body without a
// type are refused with 415 and store nothing, even when the body is a
// valid notification.
func TestHandlerAcceptsOnlyJSON(t *testing.T) {
	body := readPayload(t, "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json")
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/jsonx", "text/json"} {
		t.Run(ct, func(t *testing.T) {
			f := newFixture(t, Options{})
			rec := f.post(t, body, func(r *http.Request) { r.Header.Set("Content-Type", ct) })
			if rec.Code != http.StatusUnsupportedMediaType {
				t.Errorf("status %d, want 415", rec.Code)
			}
			if n := len(f.pub.events()); n != 0 {
				t.Errorf("%d events stored", n)
			}
			if got := counter(t, f.metrics.Rejected, "alertmanager", ReasonMediaType); got != 1 {
				t.Errorf("rejected{reason=media_type} = %v", got)
			}
		})
	}
	f := newFixture(t, Options{})
	if rec := f.post(t, body, func(r *http.Request) { r.Header.Set("Content-Type", "application/json; charset=utf-8") }); rec.Code != http.StatusOK {
		t.Errorf("application/json with a charset: %d", rec.Code)
	}
}

// TestHandlerBodyTimeout: a sender that trickles its body is answered 408
// once the body deadline passes and stores nothing.
func TestHandlerBodyTimeout(t *testing.T) {
	f := newFixture(t, Options{BodyTimeout: 200 * time.Millisecond})
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte(`{"version":"4",`)) }() // then nothing more
	resp, err := http.Post(srv.URL+"/api/alerts", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	if n := len(f.pub.events()); n != 0 {
		t.Errorf("%d events stored", n)
	}
}
