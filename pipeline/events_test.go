package pipeline

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/natstest"
	"github.com/medichq/medic/internal/testkit"
)

// events wires the engine consumer's stages over b, as internal/app does.
func events(t testing.TB, b FindingPublisher, claimer AlertClaimer, doc string, reg *prometheus.Registry) *Events {
	t.Helper()
	lifetimes, err := NewLifetimes(claimer, discard, reg)
	if err != nil {
		t.Fatal(err)
	}
	route, err := NewRoute(specs(t, `
- {name: oncall, type: webhook, url: "http://127.0.0.1:9/a"}
- {name: firing-only, type: webhook, url: "http://127.0.0.1:9/b", send_resolved: false}
`), discard, reg)
	if err != nil {
		t.Fatal(err)
	}
	return &Events{
		Lifetimes: lifetimes,
		Evaluate:  &Evaluate{Engine: newEngine(t, doc), Redactor: newRedactor(t)},
		Keep:      &Keep{Logger: discard},
		Route:     route,
		Publish:   &Publish{Bus: b, Logger: discard},
	}
}

// TestEventsPublishOncePerSink drives the engine consumer's handler with
// n distinct alerts, each handed over twice (a redelivery: the same
// message) and re-sent once (a later message), n resolved alerts, and n
// silenced Watchdogs: each firing finding is on each default sink's
// subject once, each resolved one only where send_resolved allows it,
// the silenced ones nowhere; the re-sends are suppressed and counted.
func TestEventsPublishOncePerSink(t *testing.T) {
	t.Parallel()
	const n = 10
	b := openBus(t)
	state, err := b.AlertState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h := events(t, b, state, silenceWatchdog, reg)
	ctx := context.Background()
	seq := uint64(0)
	handle := func(ev *event.Event, seq uint64) {
		t.Helper()
		if err := h.Handle(ctx, eventDelivery(t, ev, seq)); err != nil {
			t.Fatalf("event %s (seq %d): %v", ev.ID, seq, err)
		}
	}
	for i := range n {
		pod := fmt.Sprintf("cart-%d", i)
		firing := alert("KubePodCrashLooping", pod, event.StatusFiring, nil)
		seq++
		handle(firing, seq)
		handle(firing, seq) // redelivered: the claim is its own
		seq++
		handle(firing, seq) // re-sent by Alertmanager
		seq++
		handle(alert("KubePodCrashLooping", pod, event.StatusResolved, nil), seq)
		seq++
		handle(alert("Watchdog", pod, event.StatusFiring, nil), seq)
	}
	got := published(t, b)
	want := map[string]uint64{bus.FindingSubject("oncall"): 2 * n, bus.FindingSubject("firing-only"): n}
	for subject, w := range want {
		// The bus deduplicates by finding ID and sink (Nats-Msg-Id), so a
		// second publish would not show here: what shows is what the
		// handler published, once.
		t.Logf("%s: published %d, want %d (lost %d)", subject, got[subject], w, int(w)-int(got[subject]))
		if got[subject] != w {
			t.Errorf("%s: %d findings, want %d", subject, got[subject], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("findings on subjects %v, want only %v", got, want)
	}
	if v := testkit.Metric(t, reg, "medic_alert_repeats_suppressed_total", "status", "firing"); v != n {
		t.Errorf("suppressed re-sends %v, want %d", v, n)
	}
	if v := testkit.Metric(t, reg, "medic_sink_skipped_total", "sink", "firing-only"); v != n {
		t.Errorf("skipped for firing-only %v, want %d", v, n)
	}
}

// brokenState is an alert state whose bucket is gone: bus.AlertState
// after its KV bucket was deleted.
func brokenState(t *testing.T, b *bus.Bus) AlertClaimer {
	t.Helper()
	state, err := b.AlertState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.JetStream().DeleteKeyValue(context.Background(), bus.AlertStateBucket); err != nil {
		t.Fatal(err)
	}
	return state
}

// The alert-state check decides before the playbooks: with the state a
// re-send is suppressed; without a usable state (or with lifetimes off)
// every message is processed, a possible duplicate counted rather than a
// lost notification.
func TestLifetimes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		state          func(*testing.T, *bus.Bus) AlertClaimer
		wantRepeat     bool
		wantSuppressed float64
		wantErrors     float64
	}{
		{"state available: the re-send is suppressed", func(t *testing.T, b *bus.Bus) AlertClaimer {
			s, err := b.AlertState(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, true, 1, 0},
		{"state unusable: both are processed", brokenState, false, 0, 2},
		{"lifetimes off: both are processed", func(*testing.T, *bus.Bus) AlertClaimer { return nil }, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := openBus(t)
			reg := prometheus.NewRegistry()
			l, err := NewLifetimes(tt.state(t, b), discard, reg)
			if err != nil {
				t.Fatal(err)
			}
			ev := alert("KubePodCrashLooping", "cart", event.StatusFiring, nil)
			ctx := context.Background()
			if _, repeat := l.Claim(ctx, eventDelivery(t, ev, 1), ev); repeat {
				t.Fatal("the first message is a repeat")
			}
			if _, repeat := l.Claim(ctx, eventDelivery(t, ev, 2), ev); repeat != tt.wantRepeat {
				t.Errorf("the re-send: repeat %v, want %v", repeat, tt.wantRepeat)
			}
			if v := testkit.Metric(t, reg, "medic_alert_repeats_suppressed_total"); v != tt.wantSuppressed {
				t.Errorf("suppressed %v, want %v", v, tt.wantSuppressed)
			}
			if v := testkit.Metric(t, reg, "medic_alert_state_errors_total"); v != tt.wantErrors {
				t.Errorf("state errors %v, want %v", v, tt.wantErrors)
			}
		})
	}
}

// A message whose publish failed gives its claim back, so its redelivery
// (or, once dead-lettered, the alert's next re-send) is processed, not
// suppressed as a repeat.
func TestEventsReleaseTheClaimOnFailure(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, nil)
	b := openBusAt(t, srv.URL())
	state, err := b.AlertState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The finding goes to a connection that is already closed: the claim
	// is taken, the publish fails.
	closed := openBusAt(t, srv.URL())
	closed.Close()
	reg := prometheus.NewRegistry()
	ev := alert("KubePodCrashLooping", "cart", event.StatusFiring, nil)
	ctx := context.Background()
	if err := events(t, closed, state, "", reg).Handle(ctx, eventDelivery(t, ev, 1)); err == nil || bus.IsPermanent(err) {
		t.Fatalf("publish on a closed bus: err = %v, want a retryable error", err)
	}
	// The alert's next message (seq 2) is processed, not a repeat.
	reg2 := prometheus.NewRegistry()
	if err := events(t, b, state, "", reg2).Handle(ctx, eventDelivery(t, ev, 2)); err != nil {
		t.Fatal(err)
	}
	if v := testkit.Metric(t, reg2, "medic_alert_repeats_suppressed_total"); v != 0 {
		t.Errorf("suppressed %v, want 0", v)
	}
	if got := published(t, b)[bus.FindingSubject("oncall")]; got != 1 {
		t.Errorf("%d findings for oncall, want 1: the failed message kept its claim", got)
	}
}
