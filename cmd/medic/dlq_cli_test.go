package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/app"
)

// dlqMedic runs a medic whose only sink, a webhook, answers 500 to
// everything, so every finding published to it is dead-lettered on its
// first try; it returns the app and its URL.
func dlqMedic(t *testing.T, token string) (*app.App, string) {
	t.Helper()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "receiver is down", http.StatusInternalServerError)
	}))
	t.Cleanup(down.Close)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Bus.StoreDir = filepath.Join(dir, "jetstream")
	cfg.Bus.MaxDeliver = 1
	cfg.Playbooks.Dirs = nil
	cfg.Playbooks.ReloadInterval = 0
	cfg.Webhook.BearerToken = token
	if err := yaml.Unmarshal(fmt.Appendf(nil, "- {name: hook, type: webhook, url: %q}\n", down.URL), &cfg.Sinks); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = a.Shutdown(sctx)
	})
	return a, "http://" + a.Addr()
}

// waitDeadLetters waits until medic holds n dead letters.
func waitDeadLetters(t *testing.T, a *app.App, n int) {
	t.Helper()
	ctx := context.Background()
	dl, err := a.Bus().DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		l, err := dl.List(ctx, bus.DeadLetterFilter{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(l) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters after 20s, want %d", len(l), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dlqFixedStart is the alerts' start time; the golden files keep it and hide
// the times that change from run to run.
const dlqFixedStart = "2026-11-22T10:00:00"

var dlqTimestamps = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)

func dlqHideTimes(s string) string {
	return dlqTimestamps.ReplaceAllStringFunc(s, func(ts string) string {
		if strings.HasPrefix(ts, dlqFixedStart) {
			return ts
		}
		return "YYYY-MM-DDTHH:MM:SSZ"
	})
}

// TestDLQGolden runs medic dlq against a running medic through a dead
// letter's life: listed, shown, replayed while the sink is still down (it
// comes back as a new dead letter), purged.
func TestDLQGolden(t *testing.T) {
	const token = "dlq-cli-token"
	a, url := dlqMedic(t, token)
	ctx := context.Background()
	for i, pod := range []string{"cart-7d9", "checkout-5f2"} {
		start, _ := time.Parse(time.RFC3339, dlqFixedStart+"Z")
		ev := event.Event{ID: event.NewID("test", pod, event.StatusFiring, start), Kind: event.KindPrometheusAlert, Source: "test",
			Status: event.StatusFiring, Title: "Pod shop/" + pod + " is crash looping", StartsAt: start,
			Labels: map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": pod}}
		if err := a.Bus().PublishFinding(ctx, "hook", event.NewFinding(ev, start)); err != nil {
			t.Fatal(err)
		}
		waitDeadLetters(t, a, i+1) // one at a time: their sequences are fixed
	}
	closed := "http://" + closedPort(t)
	on := func(args ...string) []string {
		return append(append([]string{"dlq"}, args...), "--server", url, "--token", token)
	}
	steps := []struct {
		goldenCase
		then int // wait for this many dead letters afterwards
	}{
		{goldenCase{"dlq-list.txt", on("list"), 0}, 0},
		{goldenCase{"dlq-list.json", on("list", "--json"), 0}, 0},
		{goldenCase{"dlq-list-limit.txt", on("list", "--limit", "1"), 0}, 0},
		{goldenCase{"dlq-list-other-sink.txt", on("list", "--sink", "slack"), 0}, 0},
		{goldenCase{"dlq-show.txt", on("show", "1"), 0}, 0},
		{goldenCase{"dlq-show.json", on("show", "1", "--json"), 0}, 0},
		{goldenCase{"dlq-show-missing.txt", on("show", "99"), 1}, 0},
		{goldenCase{"dlq-show-not-a-seq.txt", on("show", "first"), 1}, 0},
		{goldenCase{"dlq-unauthorized.txt", []string{"dlq", "list", "--server", url, "--token", ""}, 1}, 0},
		{goldenCase{"dlq-replay-which.txt", on("replay"), 1}, 0},
		{goldenCase{"dlq-purge-which.txt", on("purge"), 1}, 0},
		// The sink is still down: the replayed finding fails again and
		// comes back as dead letter 3.
		{goldenCase{"dlq-replay.txt", on("replay", "1"), 0}, 2},
		{goldenCase{"dlq-list-after-replay.txt", on("list"), 0}, 0},
		{goldenCase{"dlq-replay-gone.txt", on("replay", "1"), 1}, 0},
		{goldenCase{"dlq-replay-sink.json", on("replay", "--sink", "hook", "--json"), 0}, 2},
		{goldenCase{"dlq-purge-one.txt", on("purge", "4"), 0}, 0},
		{goldenCase{"dlq-purge-all.txt", on("purge", "--yes"), 0}, 0},
		{goldenCase{"dlq-list-empty.txt", on("list"), 0}, 0},
		{goldenCase{"dlq-not-running.txt", []string{"dlq", "list", "--server", closed}, 1}, 0},
		{goldenCase{"dlq-not-running.json", []string{"dlq", "list", "--server", closed, "--json"}, 1}, 0},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			out, code := medic(t, st.args...)
			if code != st.code {
				t.Errorf("exit %d, want %d\n%s", code, st.code, out)
			}
			out = strings.ReplaceAll(dlqHideTimes(out), strings.TrimPrefix(closed, "http://"), "127.0.0.1:PORT")
			golden(t, st.name, out)
		})
		if !ok {
			return // the steps build on each other
		}
		if st.then > 0 {
			waitDeadLetters(t, a, st.then)
		}
	}
}
