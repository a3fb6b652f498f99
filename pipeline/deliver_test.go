package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
)

// receiver is a webhook receiver counting requests by Idempotency-Key; it
// answers failStatus to the first fail requests.
type receiver struct {
	mu   sync.Mutex
	n    map[string]int
	fail int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	r.n[req.Header.Get("Idempotency-Key")]++
	w.WriteHeader(http.StatusNoContent)
}

// tally is what the receiver accepted: distinct findings and extra copies.
func (r *receiver) tally() (accepted, duplicates int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.n {
		accepted++
		duplicates += c - 1
	}
	return accepted, duplicates
}

// startSinks starts the sinks doc configures, as medic serve does.
func startSinks(t testing.TB, doc string) *sinks.Set {
	t.Helper()
	set, err := builtin.Sinks.Start(t.Context(), specs(t, doc), sinks.Deps{Log: discard, HTTP: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	return set
}

// deliverTo is the Deliver stage of the one sink doc configures, with
// delivery records in KV on a bus of its own.
func deliverTo(t *testing.T, doc string) (*Deliver, DeliveryRecords, *prometheus.Registry) {
	t.Helper()
	set := startSinks(t, doc)
	records, err := openBus(t).Deliveries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ds, err := NewDeliveries(records, discard, reg)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := set.Get(set.Names()[0])
	return ds.For(c), records, reg
}

// TestDeliverOnce hands a webhook sink n findings, each of them again (a
// redelivery after a crash between the send and the ack), with and
// without the finding-ID header, and through a receiver that fails the
// first attempts: each finding is accepted once, the redeliveries are
// skipped by the delivery record and counted, failures are returned to the
// bus for a retry and counted.
func TestDeliverOnce(t *testing.T) {
	t.Parallel()
	const n = 5
	tests := []struct {
		name   string
		header bool // the hot path: the sink is handed the stored JSON
		fail   int
	}{
		{"encoded, receiver up", true, 0},
		{"decoded (no finding-ID header), receiver up", false, 0},
		{"encoded, receiver fails twice first", true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			recv := &receiver{n: map[string]int{}, fail: tt.fail}
			srv := httptest.NewServer(recv)
			t.Cleanup(srv.Close)
			deliver, _, reg := deliverTo(t, fmt.Sprintf("- {name: hook, type: webhook, url: %q}\n", srv.URL))
			ctx := context.Background()
			failed := 0
			for i := range n {
				d, _ := findingDelivery(t, "hook", alert("KubePodCrashLooping", fmt.Sprintf("cart-%d", i), event.StatusFiring, nil), tt.header)
				for attempt := 1; attempt <= 2; attempt++ { // the send, then its redelivery
					d.Attempt = attempt
					for {
						err := deliver.Handle(ctx, d)
						if err == nil {
							break
						}
						if bus.IsPermanent(err) {
							t.Fatal(err)
						}
						failed++ // the bus retries it
					}
				}
			}
			accepted, dups := recv.tally()
			t.Logf("accepted %d, lost %d, duplicates %d, failed attempts %d", accepted, n-accepted, dups, failed)
			if accepted != n || dups != 0 {
				t.Errorf("accepted %d (want %d), duplicates %d (want 0)", accepted, n, dups)
			}
			for _, m := range []struct {
				name string
				want int
			}{
				{"medic_sink_deliveries_total", n},
				{"medic_sink_redeliveries_skipped_total", n},
				{"medic_sink_failures_total", tt.fail},
				{"medic_sink_delivery_duration_seconds", n},
				{"medic_event_to_delivery_seconds", n},
			} {
				if v := testkit.Metric(t, reg, m.name, "sink", "hook"); v != float64(m.want) {
					t.Errorf("%s = %v, want %d", m.name, v, m.want)
				}
			}
			if failed != tt.fail {
				t.Errorf("%d failed attempts, want %d", failed, tt.fail)
			}
		})
	}
}

// A sink that keeps its own record (the file sink: the file) gets no
// second one in KV; a message that is not a finding is dead-lettered at
// once.
func TestDeliverFileSinkAndUndecodable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "findings.jsonl")
	deliver, records, _ := deliverTo(t, fmt.Sprintf("- {name: file, type: file, path: %q}\n", path))
	if deliver.records != nil {
		t.Error("the file sink got a KV delivery record")
	}
	ctx := context.Background()
	d, f := findingDelivery(t, "file", alert("KubePodCrashLooping", "cart", event.StatusFiring, nil), true)
	for range 2 {
		if err := deliver.Handle(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if data, err := os.ReadFile(path); err != nil || bytes.Count(data, []byte("\n")) != 1 {
		t.Errorf("findings file: %d lines (%v), want the finding once", bytes.Count(data, []byte("\n")), err)
	}
	if done, err := records.Delivered(ctx, sinks.IdempotencyKey("file", f.ID)); err != nil || done {
		t.Errorf("KV record for the file sink: %v, %v; want none", done, err)
	}
	err := deliver.Handle(ctx, &bus.Delivery{Subject: bus.FindingSubject("file"), Data: []byte("{not json"), Attempt: 1})
	if !bus.IsPermanent(err) {
		t.Errorf("undecodable finding: err = %v, want a permanent error", err)
	}
}
