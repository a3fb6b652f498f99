package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/sinks/vendortest"
)

// TestVendorSinksDeliverEachFindingOnce: a burst of alerts goes through
// medic's bus to each vendor sink, whose endpoint (a test double speaking
// the vendor's wire format, or kfake for Kafka) fails the first request
// with a 5xx; medic retries it, and every finding reaches the vendor once:
// lost 0, duplicates 0.
func TestVendorSinksDeliverEachFindingOnce(t *testing.T) {
	const alerts = 6
	type receiver struct {
		spec string
		// delivered counts what the vendor accepted, by finding ID.
		delivered func() map[string]int
		refused   func() []string
		// failed is how many requests the receiver failed on purpose.
		failed func() int
	}
	fake := func(f *vendortest.Fake, spec string) receiver {
		f.FailNext(vendortest.Failure{Status: http.StatusServiceUnavailable, Body: `{"message": "down for a moment"}`})
		return receiver{spec: spec, delivered: f.ByFinding, refused: f.Refused, failed: f.Failed}
	}
	tests := []struct {
		name  string
		start func(t *testing.T) receiver
	}{
		{"mattermost", func(t *testing.T) receiver {
			f := vendortest.MattermostAPI(t, "bot-token", "ch1", "ops", "alerts")
			return fake(f, fmt.Sprintf("{name: mm, type: mattermost, url: %q, token: bot-token, channel_id: ch1}", f.URL))
		}},
		{"discord", func(t *testing.T) receiver {
			f := vendortest.DiscordWebhook(t, "1", "tok")
			return fake(f, fmt.Sprintf("{name: dc, type: discord, webhook_url: %q}", f.URL+"/api/webhooks/1/tok"))
		}},
		{"telegram", func(t *testing.T) receiver {
			f := vendortest.TelegramBot(t, "123:abc")
			return fake(f, fmt.Sprintf("{name: tg, type: telegram, bot_token: '123:abc', chat_id: '-1001', api_url: %q}", f.URL))
		}},
		{"google_chat", func(t *testing.T) receiver {
			f := vendortest.GoogleChat(t, "S", "k", "t")
			return fake(f, fmt.Sprintf("{name: gc, type: google_chat, webhook_url: %q}", f.URL+"/v1/spaces/S/messages?key=k&token=t"))
		}},
		{"webex", func(t *testing.T) receiver {
			f := vendortest.Webex(t, "wx-token", "room1")
			return fake(f, fmt.Sprintf("{name: wx, type: webex, bot_token: wx-token, room_id: room1, api_url: %q}", f.URL))
		}},
		{"kafka", func(t *testing.T) receiver {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "findings"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			// The broker drops every produce for its first 3 seconds (a
			// leader moving away): longer than the sink's 2s timeout, so
			// the first deliveries fail and medic's consumer retries them.
			var first sync.Once
			var since time.Time
			var dropped atomic.Int32
			c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
				first.Do(func() { since = time.Now() })
				if time.Since(since) < 3*time.Second {
					c.KeepControl()
					dropped.Add(1)
					return nil, errors.New("broker unavailable"), true
				}
				return nil, nil, false
			})
			return receiver{
				spec:      fmt.Sprintf("{name: kf, type: kafka, brokers: [%q], topic: findings, timeout: 2s}", c.ListenAddrs()[0]),
				delivered: func() map[string]int { return consumeKeys(t, c.ListenAddrs()) },
				refused:   func() []string { return nil },
				failed:    func() int { return int(dropped.Load()) },
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := tt.start(t)
			dir := t.TempDir()
			cfg := testConfig(t, dir)
			var specs []config.SinkSpec
			if err := yaml.Unmarshal([]byte("- "+rc.spec+"\n"), &specs); err != nil {
				t.Fatal(err)
			}
			cfg.Sinks = append(cfg.Sinks, specs...)
			m := startMedic(t, cfg)
			if status, answer := post(t, m.url+"/api/alerts", burst(alerts, 0), nil); status != http.StatusOK {
				t.Fatalf("alerts: %d %v", status, answer)
			}
			recs := waitFindings(t, m.findings, 30*time.Second, func(r []record) bool { return len(r) >= alerts })
			want := countByID(recs)
			deadline := time.Now().Add(30 * time.Second)
			var got map[string]int
			for {
				got = rc.delivered()
				if len(got) >= len(want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			lost, dups := 0, 0
			for id := range want {
				if got[id] == 0 {
					lost++
				}
				dups += max(got[id]-1, 0)
			}
			t.Logf("%s: %d findings, %d requests failed on purpose, accepted %d, lost %d, duplicates %d", tt.name, len(want), rc.failed(), len(got), lost, dups)
			if rc.failed() == 0 {
				t.Error("the receiver never failed a request: the retry was not exercised")
			}
			if lost != 0 || dups != 0 || len(got) != len(want) {
				t.Fatalf("accepted %v for findings %v (refused %v): lost %d, duplicates %d", got, want, rc.refused(), lost, dups)
			}
		})
	}
}

// consumeKeys reads the Kafka topic from the start and counts records by
// the finding ID header.
func consumeKeys(t *testing.T, brokers []string) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("findings"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == "medic-finding-id" {
					out[string(h.Value)]++
				}
			}
		})
	}
	return out
}
