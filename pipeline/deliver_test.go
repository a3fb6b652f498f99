package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/natstest"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
)

// receiver is a webhook receiver counting requests by Idempotency-Key; it
// answers failStatus to the first fail requests.
type receiver struct {
	mu    sync.Mutex
	n     map[string]int
	fail  int
	delay time.Duration // before each answer, outside the lock
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	time.Sleep(r.delay)
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

// The findings stream remembers a finding's message ID for
// bus.findings_dedup_window only. A finding the engine publishes again after
// it (its event redelivered: a crash between the publish and the ack) is
// stored twice, and the sink still sends it once, even with both copies
// handed to two workers at the same moment: the delivery record, and the
// in-process wait on the key while the first copy is being sent.
func TestFindingPublishedAgainAfterItsWindowIsSentOnce(t *testing.T) {
	t.Parallel()
	const window = 300 * time.Millisecond
	b := openBusAt(t, natstest.Start(t, nil).URL(), func(c *bus.Config) {
		c.FindingsDedupWindow = window
		c.Compression = "none" // read back below as the consumer hands it over
	})
	state, err := b.AlertState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h := events(t, b, state, "", prometheus.NewRegistry())
	ctx := context.Background()
	firing := alert("KubePodCrashLooping", "cart-0", event.StatusFiring, nil)
	if err := h.Handle(ctx, eventDelivery(t, firing, 1)); err != nil {
		t.Fatal(err)
	}
	// Within the window the same publish is dropped as a duplicate.
	if err := h.Handle(ctx, eventDelivery(t, firing, 1)); err != nil {
		t.Fatal(err)
	}
	if got := published(t, b)[bus.FindingSubject("oncall")]; got != 1 {
		t.Fatalf("%d copies stored within the window, want 1", got)
	}
	time.Sleep(window + 200*time.Millisecond)
	if err := h.Handle(ctx, eventDelivery(t, firing, 1)); err != nil { // the redelivery, after the window
		t.Fatal(err)
	}
	copies := storedFindings(t, b, "oncall")
	if len(copies) != 2 {
		t.Fatalf("%d copies stored after the window, want 2 (is the findings window %s?)", len(copies), window)
	}

	recv := &receiver{n: map[string]int{}, delay: 100 * time.Millisecond}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	deliver, _, reg := deliverTo(t, fmt.Sprintf("- {name: oncall, type: webhook, url: %q}\n", srv.URL))
	var wg sync.WaitGroup
	for _, d := range copies { // two sink workers, one copy each
		wg.Go(func() {
			if err := deliver.Handle(ctx, d); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	accepted, dups := recv.tally()
	t.Logf("2 copies stored: accepted %d, duplicates %d", accepted, dups)
	if accepted != 1 || dups != 0 {
		t.Errorf("accepted %d (want 1), duplicates %d (want 0)", accepted, dups)
	}
	if v := testkit.Metric(t, reg, "medic_sink_redeliveries_skipped_total", "sink", "oncall"); v != 1 {
		t.Errorf("medic_sink_redeliveries_skipped_total = %v, want 1", v)
	}
}

// storedFindings reads back the findings stored for sink, as the sink's
// consumer would hand them over (the bus must store plain JSON).
func storedFindings(t *testing.T, b *bus.Bus, sink string) []*bus.Delivery {
	t.Helper()
	ctx := context.Background()
	st, err := b.JetStream().Stream(ctx, bus.FindingsStream)
	if err != nil {
		t.Fatal(err)
	}
	var out []*bus.Delivery
	for seq := uint64(1); ; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject == bus.FindingSubject(sink) {
			out = append(out, &bus.Delivery{Subject: m.Subject, Data: m.Data, Header: m.Header, Attempt: 1, StreamSeq: seq})
		}
	}
}
