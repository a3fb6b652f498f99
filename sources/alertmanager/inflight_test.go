package alertmanager

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/event"
)

// blockingPublisher holds every Publish until release is closed.
type blockingPublisher struct {
	entered chan struct{}
	release chan struct{}
}

func (p *blockingPublisher) Publish(ctx context.Context, events []event.Event) (event.PublishResult, error) {
	p.entered <- struct{}{}
	select {
	case <-p.release:
	case <-ctx.Done():
		return event.PublishResult{}, ctx.Err()
	}
	return event.PublishResult{Stored: len(events)}, nil
}

// checkBusy: with opts bounding the intake to one request of body, a
// request that arrives while another is being stored waits, then gets 503
// with Retry-After and is counted as busy; nothing of it is published; once
// the first is done, the next request is stored.
func checkBusy(t *testing.T, opts Options, body []byte) {
	t.Helper()
	pub := &blockingPublisher{entered: make(chan struct{}, 4), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	h, err := NewHandler(opts, pub, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	post := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/api/alerts", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	first := make(chan *httptest.ResponseRecorder, 1)
	go func() { first <- post() }()
	select {
	case <-pub.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the publisher")
	}

	busy := post()
	if busy.Code != http.StatusServiceUnavailable || busy.Header().Get("Retry-After") != "1" {
		t.Fatalf("second request: %d, Retry-After %q: %s", busy.Code, busy.Header().Get("Retry-After"), busy.Body)
	}
	if got := counter(t, metrics.Rejected, "alertmanager", ReasonBusy); got != 1 {
		t.Errorf("rejected{reason=busy} = %v, want 1", got)
	}
	select {
	case <-pub.entered:
		t.Fatal("the refused request reached the publisher")
	default:
	}

	close(pub.release)
	if rec := <-first; rec.Code != http.StatusOK {
		t.Fatalf("first request: %d %s", rec.Code, rec.Body)
	}
	if rec := post(); rec.Code != http.StatusOK {
		t.Fatalf("request after the first was done: %d %s", rec.Code, rec.Body)
	}
}

// TestInFlightBound: one slot (webhook.max_in_flight 1).
func TestInFlightBound(t *testing.T) {
	t.Parallel()
	body := readPayload(t, "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json")
	checkBusy(t, Options{InFlight: NewInFlight(1, 50*time.Millisecond)}, body)
}

func TestNoInFlightBound(t *testing.T) {
	if NewInFlight(0, time.Second) != nil {
		t.Fatal("max 0 must mean no bound")
	}
	var none *InFlight
	if !none.acquire(context.Background()) {
		t.Fatal("a nil bound refused a request")
	}
	none.release()
}
