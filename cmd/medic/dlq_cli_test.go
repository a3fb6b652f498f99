package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/app"
)

// dlqServe runs `medic serve` in-process with a webhook sink, hook, whose
// receiver answers 500 to everything, so every finding published to it is
// dead-lettered on its first try. It returns medic's URL and a JetStream
// client on medic's embedded NATS (bus.listen) to publish findings with.
func dlqServe(t *testing.T, token string) (string, jetstream.JetStream) {
	t.Helper()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "receiver is down", http.StatusInternalServerError)
	}))
	t.Cleanup(down.Close)
	dir := t.TempDir()
	httpAddr, natsAddr := closedPort(t), closedPort(t)
	conf := fmt.Sprintf(`data_dir: %q
log: {level: error}
http: {addr: %q}
webhook: {bearer_token: %q}
playbooks: {dirs: [], reload_interval: 0s}
bus: {max_deliver: 1, listen: %q}
sinks:
  - {name: hook, type: webhook, url: %q}
`, dir, httpAddr, token, natsAddr, down.URL)
	path := filepath.Join(dir, "medic.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cmd := newRootCmd()
		cmd.SetArgs([]string{"serve", "-c", path})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		done <- cmd.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("medic serve: %v", err)
		}
	})
	url := "http://" + httpAddr
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("medic serve stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("medic serve not ready after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return url, js
}

// waitDeadLetters waits until medic at url holds n dead letters, asking
// as medic dlq does.
func waitDeadLetters(t *testing.T, url, token string, n int) {
	t.Helper()
	c := &dlqClient{server: url, token: token, timeout: 5 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var l app.DLQList
		if err := c.do(context.Background(), http.MethodGet, "/api/dlq", nil, &l); err != nil {
			t.Fatal(err)
		}
		if len(l.DeadLetters) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters after 20s, want %d", len(l.DeadLetters), n)
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

// TestDLQGolden runs medic dlq against medic serve through a dead
// letter's life: listed, shown, replayed while the sink is still down (it
// comes back as a new dead letter), purged.
func TestDLQGolden(t *testing.T) {
	const token = "dlq-cli-token"
	url, js := dlqServe(t, token)
	ctx := context.Background()
	for i, pod := range []string{"cart-7d9", "checkout-5f2"} {
		start, _ := time.Parse(time.RFC3339, dlqFixedStart+"Z")
		ev := event.Event{ID: event.NewID("test", pod, event.StatusFiring, start), Kind: event.KindPrometheusAlert, Source: "test",
			Status: event.StatusFiring, Title: "Pod shop/" + pod + " is crash looping", StartsAt: start,
			Labels: map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": pod}}
		f := event.NewFinding(ev, start)
		data, err := event.MarshalFinding(f)
		if err != nil {
			t.Fatal(err)
		}
		// As the engine publishes a finding for a sink (bus.PublishFindings).
		msg := &nats.Msg{Subject: bus.FindingSubject("hook"), Data: data, Header: nats.Header{bus.HeaderFindingID: {f.ID}}}
		if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(f.ID+".hook")); err != nil {
			t.Fatal(err)
		}
		waitDeadLetters(t, url, token, i+1) // one at a time: their sequences are fixed
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
			waitDeadLetters(t, url, token, st.then)
		}
	}
}
