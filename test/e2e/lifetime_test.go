package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/file/filetest"
	"github.com/medichq/medic/sinks/slack/slackrec"
	"github.com/medichq/medic/test/realam"
)

const (
	crashLoopFiring   = "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json"
	crashLoopResolved = "captured-alertmanager-v0.34.2__KubePodCrashLooping__resolved.json"
)

// TestOneNotificationPerAlertLifetime: Alertmanager re-sends a firing alert
// every repeat_interval, long after bus.dedup_window. Each re-send is stored
// as a new event, and medic acks it without running the playbooks again: one
// finding for the firing alert, one for its resolve, however often either is
// sent.
func TestOneNotificationPerAlertLifetime(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, t.TempDir())
	cfg.Bus.DedupWindow = time.Second
	m := startMedic(t, cfg)
	firing, resolved := samplePayload(t, crashLoopFiring), samplePayload(t, crashLoopResolved)

	// sendAfterWindow posts body once the previous copy has left the
	// duplicate window, and checks that it was stored as a new event.
	sendAfterWindow := func(body []byte) {
		t.Helper()
		time.Sleep(cfg.Bus.DedupWindow + 500*time.Millisecond)
		status, answer := post(t, m.url+"/api/alerts", body, nil)
		if status != http.StatusOK || answer["accepted"] != 1.0 || answer["duplicates"] != 0.0 {
			t.Fatalf("re-send: %d %v; want 200 with the alert stored as a new event", status, answer)
		}
	}

	if status, answer := post(t, m.url+"/api/alerts", firing, nil); status != http.StatusOK {
		t.Fatalf("firing: %d %v", status, answer)
	}
	waitFindings(t, m.findings, 30*time.Second, func(r []record) bool { return len(r) == 1 })
	const resends = 3
	for i := 1; i <= resends; i++ {
		sendAfterWindow(firing)
		waitCounter(t, m, "medic_alert_repeats_suppressed_total", "firing", i)
	}
	if status, answer := post(t, m.url+"/api/alerts", resolved, nil); status != http.StatusOK {
		t.Fatalf("resolved: %d %v", status, answer)
	}
	waitFindings(t, m.findings, 30*time.Second, func(r []record) bool { return len(r) == 2 })
	sendAfterWindow(resolved)
	waitCounter(t, m, "medic_alert_repeats_suppressed_total", "resolved", 1)

	recs := filetest.Read(t, m.findings)
	lost, dups := lifetimeCounts(recs)
	events := streamMsgs(t, m, bus.EventsStream)
	published := streamMsgs(t, m, bus.FindingsStream)
	t.Logf("events stored=%d findings published=%d delivered=%d lost=%d duplicates=%d", events, published, len(recs), lost, dups)
	if events != 1+resends+2 {
		t.Errorf("events stream holds %d events, want %d: the re-sends were not stored anew", events, 1+resends+2)
	}
	if lost != 0 || dups != 0 || len(recs) != 2 {
		t.Fatalf("delivered %d findings, lost %d, duplicates %d; want 2, 0, 0", len(recs), lost, dups)
	}
	// Nothing was published for the repeats: the playbooks did not run.
	if published != 2 {
		t.Fatalf("findings stream holds %d findings, want 2", published)
	}
}

// TestReplicasNotifyOncePerAlertLifetime: two medic replicas on one NATS
// both receive every copy of an alert, in waves just longer apart than the
// duplicate window (JetStream's shortest, 100 ms), so each wave stores a new
// event that either replica's engine may process, while earlier ones may
// still be in flight on the other. One finding comes out for the firing
// alert and one for its resolve.
func TestReplicasNotifyOncePerAlertLifetime(t *testing.T) {
	t.Parallel()
	addr := testkit.FreeAddr(t)
	replica := func(setBus func(*config.Config)) *medic {
		cfg := testConfig(t, t.TempDir())
		cfg.Bus.DedupWindow = 100 * time.Millisecond
		cfg.Engine.Workers = 4
		setBus(&cfg)
		return startMedic(t, cfg)
	}
	// a runs the embedded NATS and lets b connect to it.
	a := replica(func(c *config.Config) { c.Bus.Listen = addr })
	b := replica(func(c *config.Config) { c.Bus.URL = "nats://" + addr })
	replicas := []*medic{a, b}

	const waves, perReplica = 6, 2
	burst := func(body []byte) {
		t.Helper()
		for range waves {
			var wg sync.WaitGroup
			for _, r := range replicas {
				for range perReplica {
					wg.Go(func() {
						if status, answer := post(t, r.url+"/api/alerts", body, nil); status != http.StatusOK {
							t.Errorf("post to a replica: %d %v", status, answer)
						}
					})
				}
			}
			wg.Wait()
			time.Sleep(150 * time.Millisecond) // past the duplicate window
		}
	}
	delivered := func() []record {
		return append(filetest.ReadSoFar(t, a.findings), filetest.ReadSoFar(t, b.findings)...)
	}
	waitDelivered := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for len(delivered()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("replicas delivered %d findings within 30s, want %d", len(delivered()), n)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	burst(samplePayload(t, crashLoopFiring))
	waitDelivered(1)
	waitAcked(t, a, bus.EventsStream)
	burst(samplePayload(t, crashLoopResolved))
	waitDelivered(2)
	waitAcked(t, a, bus.EventsStream)
	waitAcked(t, a, bus.FindingsStream)

	events := streamMsgs(t, a, bus.EventsStream)
	suppressed := counterValue(t, a, "medic_alert_repeats_suppressed_total", "firing") + counterValue(t, b, "medic_alert_repeats_suppressed_total", "firing") +
		counterValue(t, a, "medic_alert_repeats_suppressed_total", "resolved") + counterValue(t, b, "medic_alert_repeats_suppressed_total", "resolved")
	recs := delivered()
	lost, dups := lifetimeCounts(recs)
	t.Logf("posts=%d events stored=%d suppressed=%d delivered=%d lost=%d duplicates=%d",
		2*waves*len(replicas)*perReplica, events, suppressed, len(recs), lost, dups)
	if events < 4 {
		t.Fatalf("only %d events were stored: the replicas never raced", events)
	}
	if lost != 0 || dups != 0 || len(recs) != 2 {
		t.Fatalf("delivered %d findings, lost %d, duplicates %d; want 2, 0, 0", len(recs), lost, dups)
	}
	if int(events)-suppressed != 2 {
		t.Fatalf("%d events stored, %d suppressed: %d were processed, want 2", events, suppressed, int(events)-suppressed)
	}
}

// lifetimeCounts checks the findings of the crash-loop alert's lifetime:
// one firing and one resolved expected.
func lifetimeCounts(recs []record) (lost, dups int) {
	n := map[event.Status]int{}
	for _, r := range recs {
		n[r.Finding.Event.Status]++
	}
	for _, s := range []event.Status{event.StatusFiring, event.StatusResolved} {
		switch {
		case n[s] == 0:
			lost++
		case n[s] > 1:
			dups += n[s] - 1
		}
	}
	return lost, dups
}

// counterValue reads one labelled counter from medic's registry; 0 when it
// was never incremented.
func counterValue(t *testing.T, m *medic, name, label string) int {
	t.Helper()
	mfs, err := m.app.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, metric := range mf.GetMetric() {
			for _, lp := range metric.GetLabel() {
				if lp.GetValue() == label {
					return int(metric.GetCounter().GetValue())
				}
			}
		}
	}
	return 0
}

func waitCounter(t *testing.T, m *medic, name, label string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for counterValue(t, m, name, label) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s{%q} is %d after 30s, want %d", name, label, counterValue(t, m, name, label), want)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestSlackOneMessagePerAlertLifetime: a real Alertmanager with a 2 s
// repeat_interval re-sends a firing alert past medic's 1 s duplicate
// window; the alert then resolves, and its resolve is delivered once more
// after the window (as an Alertmanager HA peer would). Slack gets one
// message, updated once to resolved, with one "resolved after" reply; the
// file sink one firing and one resolved finding.
func TestSlackOneMessagePerAlertLifetime(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the real Alertmanager")
	}
	t.Parallel()
	rec := slackrec.New(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Bus.DedupWindow = time.Second
	var slackSinks []config.SinkSpec
	if err := yaml.Unmarshal([]byte("- {name: oncall, type: slack, channel: '#alerts', rate_limit: 0}\n"), &slackSinks); err != nil {
		t.Fatal(err)
	}
	cfg.Sinks = append(cfg.Sinks, slackSinks...)
	cfg.Slack.BotToken, cfg.Slack.SigningSecret, cfg.Slack.APIURL = "xoxb-e2e", slackSecret, rec.APIURL()
	m := startMedic(t, cfg)
	tap := newWebhookTap(t, m.url+"/api/alerts")
	am := realam.Start(t, tap.URL, realam.WithGroupInterval(time.Second), realam.WithRepeatInterval(2*time.Second))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	labels := map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-lifetime", "severity": "critical"}
	ann := map[string]string{"summary": "Pod shop/cart-lifetime is crash looping"}
	startsAt := time.Now().Add(-5 * time.Minute).UTC().Truncate(time.Second)
	if err := am.PostAlert(ctx, labels, ann, startsAt, time.Time{}, "http://prometheus.local/graph"); err != nil {
		t.Fatal(err)
	}
	const resends = 2
	waitCounter(t, m, "medic_alert_repeats_suppressed_total", "firing", resends)
	if err := am.PostAlert(ctx, labels, ann, startsAt, time.Now().Add(-time.Second), "http://prometheus.local/graph"); err != nil {
		t.Fatal(err)
	}
	waitFindings(t, m.findings, time.Minute, func(r []record) bool { return len(r) == 2 })
	resolvedReplies := func(s *slackrec.Server) int {
		n := 0
		for _, c := range s.Calls(slackrec.PostMessage) {
			if c.ThreadTS != "" && strings.Contains(c.BlocksJSON(), "Resolved after") {
				n++
			}
		}
		return n
	}
	rec.Wait(t, time.Minute, "a \"resolved after\" reply", func(s *slackrec.Server) bool { return resolvedReplies(s) == 1 })

	// Alertmanager sends a resolve once; deliver its body again after the
	// window, as its HA peer or a retry would.
	resolved := tap.last(t, `"status":"resolved"`)
	time.Sleep(cfg.Bus.DedupWindow + 500*time.Millisecond)
	if status, answer := post(t, m.url+"/api/alerts", resolved, nil); status != http.StatusOK || answer["duplicates"] != 0.0 {
		t.Fatalf("repeated resolve: %d %v; want it stored as a new event", status, answer)
	}
	waitCounter(t, m, "medic_alert_repeats_suppressed_total", "resolved", 1)
	// Whatever the sinks do with the messages they got, they have them now.
	waitAcked(t, m, bus.FindingsStream)

	var top []slackrec.Call
	for _, c := range rec.Calls(slackrec.PostMessage) {
		if c.ThreadTS == "" {
			top = append(top, c)
		}
	}
	if len(top) != 1 {
		t.Fatalf("%d top-level Slack messages, want 1", len(top))
	}
	msg, ok := rec.Message(rec.ChannelID(top[0].Channel), top[0].TS)
	if !ok || msg.Updates != 1 || !strings.Contains(string(msg.Blocks), "RESOLVED") {
		t.Fatalf("the alert's message: found %v, %d updates, resolved %v; want one update to RESOLVED",
			ok, msg.Updates, strings.Contains(string(msg.Blocks), "RESOLVED"))
	}
	if n := resolvedReplies(rec); n != 1 {
		t.Fatalf("%d \"resolved after\" replies, want 1", n)
	}
	recs := filetest.Read(t, m.findings)
	lost, dups := lifetimeCounts(recs)
	t.Logf("webhooks=%d slack posts=%d updates=%d resolved replies=%d file findings=%d lost=%d duplicates=%d",
		tap.count(), len(top), msg.Updates, resolvedReplies(rec), len(recs), lost, dups)
	if lost != 0 || dups != 0 {
		t.Fatalf("file sink: lost %d, duplicates %d", lost, dups)
	}
}

// webhookTap forwards Alertmanager's webhooks to medic and keeps their bodies.
type webhookTap struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
}

func newWebhookTap(t *testing.T, target string) *webhookTap {
	tap := &webhookTap{}
	tap.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tap.mu.Lock()
		tap.bodies = append(tap.bodies, body)
		tap.mu.Unlock()
		resp, err := http.Post(target, "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	}))
	t.Cleanup(tap.Close)
	return tap
}

// last returns the newest body containing substr.
func (tap *webhookTap) last(t *testing.T, substr string) []byte {
	t.Helper()
	tap.mu.Lock()
	defer tap.mu.Unlock()
	for i := len(tap.bodies) - 1; i >= 0; i-- {
		if bytes.Contains(tap.bodies[i], []byte(substr)) {
			return tap.bodies[i]
		}
	}
	t.Fatalf("no webhook with %s among %d", substr, len(tap.bodies))
	return nil
}

func (tap *webhookTap) count() int {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return len(tap.bodies)
}

// waitAcked waits until every consumer of stream has acked everything in
// it: nothing is still on its way.
func waitAcked(t *testing.T, m *medic, stream string) {
	t.Helper()
	s, err := m.app.Bus().JetStream().Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		busy := 0
		consumers := s.ListConsumers(t.Context())
		for c := range consumers.Info() {
			busy += int(c.NumPending) + c.NumAckPending
		}
		if err := consumers.Err(); err != nil {
			t.Fatal(err)
		}
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages of %s still unacked after 30s", busy, stream)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
