package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
)

// keyCounter is a webhook receiver counting requests by Idempotency-Key.
type keyCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (k *keyCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.n[r.Header.Get("Idempotency-Key")]++
	k.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (k *keyCounter) counts() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]int, len(k.n))
	for key, n := range k.n {
		out[key] = n
	}
	return out
}

func webhookConfig(t *testing.T, dir, url string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Bus.StoreDir = filepath.Join(dir, "jetstream")
	cfg.Playbooks.Dirs = nil
	cfg.Playbooks.ReloadInterval = 0
	if err := yaml.Unmarshal(fmt.Appendf(nil, "- {name: hook, type: webhook, url: %q}\n", url), &cfg.Sinks); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// findingDelivery is the message a sink's consumer hands its handler.
func findingDelivery(t testing.TB, id string) *bus.Delivery {
	t.Helper()
	ev := event.Event{ID: id, Kind: event.KindPrometheusAlert, Status: event.StatusFiring, Title: "T " + id,
		StartsAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	f := event.NewFinding(ev, ev.StartsAt)
	data, err := event.MarshalFinding(f)
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Delivery{Subject: bus.FindingSubject("hook"), Data: data, Attempt: 1,
		Header: nats.Header{bus.HeaderFindingID: []string{f.ID}}}
}

// A finding sent, then redelivered because the ack never reached JetStream
// (medic crashed between the two), reaches the receiver once: the delivery
// record written after the send is checked before the next one, in the same
// process and in the one started after the crash.
func TestRedeliveredFindingIsSentOnce(t *testing.T) {
	tests := []struct {
		name    string
		restart bool
	}{
		{"redelivered to the same process", false},
		{"redelivered after a restart", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recv := &keyCounter{n: map[string]int{}}
			srv := httptest.NewServer(recv)
			defer srv.Close()
			cfg := webhookConfig(t, t.TempDir(), srv.URL)
			logger := slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
			ctx := context.Background()

			open := func() (*App, bus.Handler) {
				a, err := New(ctx, cfg, logger)
				if err != nil {
					t.Fatal(err)
				}
				c, ok := a.sinks.Get("hook")
				if !ok {
					t.Fatal("no sink hook")
				}
				return a, a.deliveries.For(c).Handle
			}
			a, deliver := open()
			d := findingDelivery(t, "evt-1")
			if err := deliver(ctx, d); err != nil {
				t.Fatal(err)
			}
			if tt.restart {
				// kill -9 loses nothing JetStream stored; Shutdown here only
				// releases the data dir for the next process.
				if err := a.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
				a, deliver = open()
			}
			d.Attempt = 2
			if err := deliver(ctx, d); err != nil {
				t.Fatal(err)
			}
			// A different finding is not mistaken for the first.
			if err := deliver(ctx, findingDelivery(t, "evt-2")); err != nil {
				t.Fatal(err)
			}
			if err := a.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}

			got := recv.counts()
			key := sinks.IdempotencyKey("hook", "evt-1")
			if got[key] != 1 || len(got) != 2 {
				t.Fatalf("requests by Idempotency-Key: %v; want %s once and one other", got, key)
			}
		})
	}
}
