package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/natstest"
	"github.com/medichq/medic/internal/testkit"
)

// oversizeAlert is a webhook body with one alert per description, each
// alert named by its index.
func oversizeAlert(descriptions ...string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"version":"4","status":"firing","receiver":"medic","groupKey":"{}:{}","externalURL":"http://am","alerts":[`)
	for i, d := range descriptions {
		if i > 0 {
			b.WriteByte(',')
		}
		desc, _ := json.Marshal(d)
		fmt.Fprintf(&b, `{"status":"firing","labels":{"alertname":"DiskFull%d","instance":"db-%d:9100","severity":"warning"},`+
			`"annotations":{"summary":"The disk is full.","description":%s},"startsAt":"2026-11-22T10:00:00Z"}`, i, i, desc)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func streamMsgs(t *testing.T, a *App, stream string) uint64 {
	t.Helper()
	st, err := a.Bus().JetStream().Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestOversizeAgainstASmallMaxPayload runs medic on an external NATS that
// takes 64 KiB messages. medic reads that limit from the server. An alert
// whose event fits but whose finding (its description four times over:
// finding, event, annotation, the enricher's table) does not is delivered
// once, its evidence trimmed and marked, with nothing redelivered or
// dead-lettered. A request holding an alert whose event cannot fit is
// answered 413 naming that alert, again on the retry, and nothing of it is
// stored; so is such an alert sent to the manual trigger.
func TestOversizeAgainstASmallMaxPayload(t *testing.T) {
	t.Parallel()
	const maxPayload = 64 << 10
	// An external NATS whose operator set max_payload low (a nats-server's
	// default is 1 MiB; medic's embedded one takes 8 MiB).
	ns := natstest.Start(t, func(o *server.Options) { o.MaxPayload = maxPayload })
	cfg := kubeTestConfig(t) // built-in playbooks, the file sink
	dir := cfg.DataDir
	cfg.Bus.URL, cfg.Bus.StoreDir = ns.URL(), ""
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := runApp(t, cfg, tlog{t})
	if got := a.Bus().MaxPayload(); got != maxPayload {
		t.Fatalf("the bus reads a max payload of %d, the server's is %d", got, maxPayload)
	}
	url := "http://" + a.Addr() + "/api/alerts"

	// The event (description twice) fits; the finding (four times) not.
	desc := strings.Repeat("the volume /var/lib/postgresql is full; ", 640) // 25 KiB
	if code, ans := post(t, url, oversizeAlert(desc), nil); code != http.StatusOK {
		t.Fatalf("alert whose finding is too large: %d %v", code, ans)
	}
	findingsFile := filepath.Join(dir, "findings.jsonl")
	testkit.Eventually(t, 30*time.Second, "the trimmed finding", func() bool { return len(readFindings(t, findingsFile)) > 0 })

	// An alert whose event cannot fit, between two that could: 413, twice.
	huge := strings.Repeat("x", 100<<10)
	for try := range 2 {
		code, ans := post(t, url, oversizeAlert("small", huge, "small too"), nil)
		if code != http.StatusRequestEntityTooLarge {
			t.Fatalf("try %d: %d %v, want 413", try, code, ans)
		}
		if ans["alert"] != 1.0 || ans["limit"] != "max_payload" || ans["max"] != float64(maxPayload) ||
			!strings.Contains(fmt.Sprint(ans["error"]), `alerts[1] (alertname "DiskFull1")`) {
			t.Fatalf("try %d: the answer does not name the alert and the limit: %v", try, ans)
		}
	}

	// The manual trigger shares the intake, and the check.
	manualBody, _ := json.Marshal(map[string]any{"trigger": "prometheus_alert",
		"params": map[string]string{"alert_name": "ManualHuge", "description": huge}})
	if code, ans := post(t, "http://"+a.Addr()+"/api/trigger", manualBody, nil); code != http.StatusRequestEntityTooLarge ||
		ans["alert"] != 0.0 || !strings.Contains(fmt.Sprint(ans["error"]), `"ManualHuge"`) {
		t.Fatalf("manual trigger of a huge alert: %d %v, want 413 naming it", code, ans)
	}

	// Settle: the engine's consumer has acked everything it was given.
	testkit.Eventually(t, 30*time.Second, "the engine to ack", func() bool {
		info, err := a.Bus().JetStream().Consumer(context.Background(), bus.EventsStream, "engine")
		if err != nil {
			t.Fatal(err)
		}
		ci, err := info.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ci.NumRedelivered > 0 {
			t.Fatalf("%d events redelivered: a finding failed to publish", ci.NumRedelivered)
		}
		return ci.NumAckPending == 0 && ci.NumPending == 0
	})
	findings := readFindings(t, findingsFile)
	events, deadLetters := streamMsgs(t, a, bus.EventsStream), streamMsgs(t, a, bus.DeadLetterStream)
	t.Logf("events stored %d, findings delivered %d, dead letters %d", events, len(findings), deadLetters)
	if events != 1 || len(findings) != 1 || deadLetters != 0 {
		t.Fatalf("events stored %d (want 1), findings %d (want 1), dead letters %d (want 0)", events, len(findings), deadLetters)
	}
	f := findings[0].Finding
	if f.Event.Labels["alertname"] != "DiskFull0" {
		t.Fatalf("the finding is about %q", f.Event.Labels["alertname"])
	}
	last := f.Enrichments[len(f.Enrichments)-1]
	if last.Source != event.TrimmedSource || !strings.Contains(last.Blocks[0].Markdown, "bytes of evidence were trimmed") {
		t.Errorf("the finding does not say it was trimmed: %+v", last)
	}
	if !strings.Contains(f.Description, fmt.Sprintf("to fit the bus's max payload (%d bytes)…", maxPayload)) ||
		!strings.HasPrefix(f.Description, "the volume") || !strings.HasSuffix(f.Description, "is full; ") {
		t.Errorf("the description is not trimmed around a marker, head and tail kept: %.300q", f.Description)
	}
}

// TestSlowBodiesDoNotStarveWebhooks: more slow senders than intake slots
// (webhook.max_in_flight) announce 4 MiB bodies and dribble them a byte at
// a time; meanwhile real webhooks are sent. Every real webhook is answered
// 200 and stored once (none lost, none duplicated): a body being read holds
// no slot and no memory it was not sent. The slow senders get 408 once
// webhook.body_timeout passes.
func TestSlowBodiesDoNotStarveWebhooks(t *testing.T) {
	t.Parallel()
	const (
		slots   = 4
		slow    = 4 * slots
		webhook = 20
	)
	cfg := kubeTestConfig(t)
	cfg.Playbooks.Builtin = false // intake only: what is stored is counted on the stream
	cfg.Webhook.MaxInFlight = slots
	cfg.Webhook.BodyTimeout = 4 * time.Second
	cfg.HTTP.ReadTimeout = 30 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := runApp(t, cfg, tlog{t})

	// The slow senders: headers announcing 4 MiB, then a byte every 50ms.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	slowCodes := make(chan string, slow)
	for range slow {
		conn, err := net.Dial("tcp", a.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "POST /api/alerts HTTP/1.1\r\nHost: medic\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"version\":\"4\",", 4<<20)
		go func() {
			for ctx.Err() == nil {
				if _, err := conn.Write([]byte(" ")); err != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		go func() {
			line, _ := bufio.NewReader(conn).ReadString('\n')
			slowCodes <- strings.TrimSpace(line)
		}()
	}
	time.Sleep(300 * time.Millisecond) // every slow body is being read

	url := "http://" + a.Addr() + "/api/alerts"
	accepted := 0
	for i := range webhook {
		body := fmt.Sprintf(`{"version":"4","status":"firing","receiver":"medic","alerts":[{"labels":{"alertname":"Real","n":"%d"},"startsAt":"2026-11-22T10:00:00Z"}]}`, i)
		code, ans := post(t, url, []byte(body), nil)
		if code != http.StatusOK {
			t.Fatalf("webhook %d while %d slow bodies are read: %d %v", i, slow, code, ans)
		}
		accepted += int(ans["accepted"].(float64))
		if d := ans["duplicates"].(float64); d != 0 {
			t.Errorf("webhook %d: %v duplicates", i, d)
		}
	}
	stored := streamMsgs(t, a, bus.EventsStream)
	t.Logf("real webhooks: %d sent, %d accepted, %d stored (lost %d) beside %d slow bodies", webhook, accepted, stored, webhook-int(stored), slow)
	if accepted != webhook || stored != webhook {
		t.Fatalf("accepted %d, stored %d, want %d", accepted, stored, webhook)
	}
	for range slow {
		select {
		case line := <-slowCodes:
			if !strings.Contains(line, " 408 ") {
				t.Errorf("a slow sender was answered %q, want 408", line)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a slow sender was never answered")
		}
	}
}
