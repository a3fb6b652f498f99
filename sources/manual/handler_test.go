package manual

import (
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sources/alertmanager"
	"github.com/medichq/medic/sources/httpauth"
)

// recordingPublisher stands in for the JetStream publisher.
type recordingPublisher struct {
	mu     sync.Mutex
	events []event.Event
	seen   map[string]bool
	err    error
}

func (p *recordingPublisher) Publish(_ context.Context, evs []event.Event) (event.PublishResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return event.PublishResult{}, p.err
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	var res event.PublishResult
	for _, ev := range evs {
		if p.seen[ev.ID] {
			res.Duplicates++
			continue
		}
		p.seen[ev.ID] = true
		p.events = append(p.events, ev)
		res.Stored++
	}
	return res, nil
}

func (p *recordingPublisher) published() []event.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]event.Event(nil), p.events...)
}

func newServer(t *testing.T, opts Options) (*httptest.Server, *recordingPublisher) {
	t.Helper()
	reg := prometheus.NewRegistry()
	metrics, err := alertmanager.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	pub := &recordingPublisher{}
	h, err := NewHandler(opts, pub, slog.New(slog.DiscardHandler), metrics)
	if err != nil {
		t.Fatal(err)
	}
	// The webhook on the same registry must share the metrics, not fail.
	if _, err := alertmanager.NewHandler(alertmanager.Options{}, pub, nil, reg); err != nil {
		t.Fatalf("webhook next to the manual trigger: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/trigger", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, pub
}

func TestClientAndHandler(t *testing.T) {
	srv, pub := newServer(t, Options{Auth: httpauth.Auth{BearerToken: "tok"}})
	c := &Client{BaseURL: srv.URL + "/", Token: "tok", HTTP: srv.Client()}
	ctx := context.Background()

	params := map[string]string{"alert_name": "KubePodCrashLooping", "namespace": "shop", "pod_name": "cart-1",
		"starts_at": "2026-11-22T10:00:00Z"}
	res, err := c.Trigger(ctx, "prometheus_alert", params)
	if err != nil {
		t.Fatalf("Trigger: %v", err)
	}
	evs := pub.published()
	if len(evs) != 1 || len(res.IDs) != 1 || res.IDs[0] != evs[0].ID || res.Duplicates != 0 {
		t.Fatalf("result %+v, published %+v", res, evs)
	}
	if ev := evs[0]; ev.Kind != event.KindPrometheusAlert || ev.Source != Source || ev.Subject.String() != "pod/shop/cart-1" {
		t.Errorf("published %+v", ev)
	}

	// Same alert, same start: the same occurrence, reported as a duplicate.
	res2, err := c.Trigger(ctx, "prometheus_alert", params)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Duplicates != 1 || res2.IDs[0] != res.IDs[0] {
		t.Errorf("second trigger %+v", res2)
	}
}

func TestClientErrors(t *testing.T) {
	srv, pub := newServer(t, Options{Auth: httpauth.Auth{BearerToken: "tok"}})
	ctx := context.Background()
	tests := []struct {
		name    string
		token   string
		trigger string
		params  map[string]string
		code    int
		want    string
	}{
		{"wrong token", "nope", "prometheus_alert", map[string]string{"alert_name": "X"}, 401, "credentials"},
		{"no token", "", "prometheus_alert", map[string]string{"alert_name": "X"}, 401, "credentials"},
		{"unknown trigger", "tok", "pod_crash_loop", nil, 400, `unknown trigger "pod_crash_loop" (known: prometheus_alert)`},
		{"no trigger", "tok", "", nil, 400, `"trigger" is required (known: prometheus_alert)`},
		{"unknown parameter", "tok", "prometheus_alert", map[string]string{"alert_name": "X", "pod": "p"}, 400,
			`prometheus_alert: unknown parameter "pod" (known: alert_name`},
		{"missing alert name", "tok", "prometheus_alert", map[string]string{}, 400, "alert_name is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{BaseURL: srv.URL, Token: tt.token, HTTP: srv.Client()}
			_, err := c.Trigger(ctx, tt.trigger, tt.params)
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want an *APIError", err)
			}
			if apiErr.StatusCode != tt.code || !strings.Contains(apiErr.Message, tt.want) {
				t.Errorf("got %d %q, want %d containing %q", apiErr.StatusCode, apiErr.Message, tt.code, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Error() = %q loses the server's message", err)
			}
		})
	}
	if n := len(pub.published()); n != 0 {
		t.Errorf("%d events published by rejected requests", n)
	}
}

func TestHandlerBodies(t *testing.T) {
	srv, pub := newServer(t, Options{MaxBodyBytes: 256})
	tests := []struct {
		name string
		body string
		code int
		want string
	}{
		{"malformed", `{"trigger":`, 400, "malformed JSON"},
		{"unknown field", `{"trigger":"prometheus_alert","parms":{}}`, 400, `unknown field "parms"`},
		{"param not a string", `{"trigger":"prometheus_alert","params":{"alert_name":1}}`, 400, "params values must be strings"},
		{"array", `[]`, 400, "send an object"},
		{"trailing data", `{"trigger":"prometheus_alert","params":{"alert_name":"X"}} {}`, 400, "unexpected data after the JSON object"},
		{"too large", `{"trigger":"prometheus_alert","params":{"summary":"` + strings.Repeat("x", 300) + `"}}`, 413, "limit of 256 bytes"},
		{"ok", `{"trigger":"prometheus_alert","params":{"alert_name":"X"}}` + "\n", 200, `"ids":["`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := srv.Client().Post(srv.URL+"/api/trigger", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			got := string(b)
			var e struct{ Error string }
			if json.Unmarshal(b, &e) == nil && e.Error != "" {
				got = e.Error
			}
			if resp.StatusCode != tt.code || !strings.Contains(got, tt.want) {
				t.Errorf("got %d %s, want %d containing %q", resp.StatusCode, b, tt.code, tt.want)
			}
		})
	}
	if n := len(pub.published()); n != 1 {
		t.Errorf("%d events published, want 1 (the ok case)", n)
	}
}

func TestHandlerBusUnavailable(t *testing.T) {
	srv, pub := newServer(t, Options{})
	pub.err = errors.New("jetstream: stream not found")
	c := &Client{BaseURL: srv.URL, HTTP: srv.Client()}
	_, err := c.Trigger(context.Background(), "prometheus_alert", map[string]string{"alert_name": "X"})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("err = %v", err)
	}
}

func TestHandlerStreamFull(t *testing.T) {
	srv, pub := newServer(t, Options{})
	pub.err = fmt.Errorf("store x: %w", event.ErrStreamFull)
	resp, err := srv.Client().Post(srv.URL+"/api/trigger", "application/json",
		strings.NewReader(`{"trigger":"prometheus_alert","params":{"alert_name":"X"}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d with Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestClientNonJSONError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := (&Client{BaseURL: srv.URL}).Trigger(context.Background(), "prometheus_alert", nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 502 || apiErr.Message != "<html>bad gateway</html>" {
		t.Fatalf("err = %#v", err)
	}
}

// TestHandlerAcceptsOnlyJSON: /api/trigger shares the webhook's intake, so
// text/plain, form and multipart bodies get 415 and store nothing.
func TestHandlerAcceptsOnlyJSON(t *testing.T) {
	srv, pub := newServer(t, Options{})
	body := `{"trigger":"prometheus_alert","params":{"alert_name":"X"}}`
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		resp, err := srv.Client().Post(srv.URL+"/api/trigger", ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("%s: status %d, want 415", ct, resp.StatusCode)
		}
	}
	if n := len(pub.published()); n != 0 {
		t.Errorf("%d events stored", n)
	}
}
