package app

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
)

// alertDelivery is the engine's message for a firing alert, as the events
// stream hands it over at sequence seq.
func alertDelivery(t *testing.T, seq uint64) *bus.Delivery {
	t.Helper()
	starts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	ev := event.Event{
		ID: event.NewID("alertmanager", "fp-cart", event.StatusFiring, starts), Kind: event.KindPrometheusAlert,
		Source: "alertmanager", Status: event.StatusFiring, Severity: event.SeverityCritical, Title: "Pod shop/cart is crash looping",
		Labels:      map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart"},
		Subject:     event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart"},
		Fingerprint: "fp-cart", StartsAt: starts, ReceivedAt: starts,
	}
	data, err := event.MarshalEvent(&ev)
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Delivery{Subject: bus.EventSubject(ev.Kind), Data: data, Attempt: 1, StreamSeq: seq}
}

// TestAlertStateDecidesBeforeThePlaybooks drives the engine consumer's handler with the
// messages of one alert: the first is processed, a re-send (a later
// message) is acked without a finding, and when the alert-state bucket is
// unusable every message is processed (a possible duplicate, counted)
// rather than dropped; with bus.alert_state_ttl 0 every message is
// processed, as before alert lifetimes.
func TestAlertStateDecidesBeforeThePlaybooks(t *testing.T) {
	tests := []struct {
		name           string
		off            bool // bus.alert_state_ttl: 0
		breakBucket    bool
		wantSuppressed float64
		wantErrors     float64
	}{
		{"state available: the re-send is suppressed", false, false, 1, 0},
		{"state unusable: both are processed", false, true, 0, 2},
		{"lifetimes off: both are processed", true, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := webhookConfig(t, t.TempDir(), "http://127.0.0.1:9/unused")
			if tt.off {
				cfg.Bus.AlertStateTTL = 0
			}
			logger := slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
			ctx := context.Background()
			a, err := New(ctx, cfg, logger)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := a.Shutdown(context.Background()); err != nil {
					t.Error(err)
				}
			})
			if tt.breakBucket {
				if err := a.bus.JetStream().DeleteKeyValue(ctx, bus.AlertStateBucket); err != nil {
					t.Fatal(err)
				}
			}
			var runs [2]float64 // playbook runs after each message
			for i := range runs {
				if err := a.events.Handle(ctx, alertDelivery(t, uint64(i+1))); err != nil {
					t.Fatalf("message %d: %v", i+1, err)
				}
				runs[i] = playbookRuns(t, a)
			}
			if runs[0] == 0 {
				t.Fatal("the first message ran no playbook")
			}
			if processed := runs[1]/runs[0] - 1; processed != 1-tt.wantSuppressed {
				t.Errorf("the second message ran the playbooks %v times, want %v", processed, 1-tt.wantSuppressed)
			}
			if got := counter(t, a, "medic_alert_repeats_suppressed_total", map[string]string{"status": "firing"}); got != tt.wantSuppressed {
				t.Errorf("suppressed = %v, want %v", got, tt.wantSuppressed)
			}
			if got := counter(t, a, "medic_alert_state_errors_total", nil); got != tt.wantErrors {
				t.Errorf("state errors = %v, want %v", got, tt.wantErrors)
			}
		})
	}
}

// playbookRuns counts playbook runs, and events no playbook matched.
func playbookRuns(t *testing.T, a *App) float64 {
	t.Helper()
	return counter(t, a, "medic_playbook_runs_total", nil) + counter(t, a, "medic_events_unmatched_total", nil)
}

// counter sums the counter name in a's registry over its series whose
// labels include want (nil: every series); 0 when it has none yet.
func counter(t *testing.T, a *App, name string, want map[string]string) float64 {
	t.Helper()
	var labels []string
	for k, v := range want {
		labels = append(labels, k, v)
	}
	return testkit.Metric(t, a.registry, name, labels...)
}
