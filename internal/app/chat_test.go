package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/interact"
	"github.com/medichq/medic/internal/testkit"
	sslack "github.com/medichq/medic/sinks/slack"
	"github.com/medichq/medic/sinks/slack/slackrec"
)

// startLoggedApp is startApp with medic's log in the test's output.
func startLoggedApp(t *testing.T, cfg config.Config) *App {
	t.Helper()
	ctx := context.Background()
	a, err := New(ctx, cfg, slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
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
	return a
}

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

const chatSecret = "signing-secret-for-tests"

// chatConfig is the AI test config (file sink, crash-loop playbook) with a
// Slack sink posting to rec.
func chatConfig(t *testing.T, rec *slackrec.Server) config.Config {
	t.Helper()
	cfg := aiConfig(t, nil)
	var slackSpec []config.SinkSpec
	if err := yaml.Unmarshal([]byte("- {name: oncall, type: slack, channel: '#alerts', rate_limit: 0}\n"), &slackSpec); err != nil {
		t.Fatal(err)
	}
	cfg.Sinks = append(cfg.Sinks, slackSpec...)
	cfg.Slack.BotToken = "xoxb-app-test"
	cfg.Slack.SigningSecret = chatSecret
	cfg.Slack.APIURL = rec.APIURL()
	cfg.PublicURL = "https://medic.example"
	cfg.Bus.Backoff = []time.Duration{20 * time.Millisecond}
	cfg.Bus.MaxDeliver = 3
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestSlackOutageDoesNotBlockOtherSinksAndIsDeadLettered(t *testing.T) {
	rec := slackrec.New(t)
	rec.Fail(slackrec.PostMessage, 100, slackrec.Failure{Status: http.StatusServiceUnavailable})
	cfg := chatConfig(t, rec)
	a := startApp(t, cfg)
	postCrashLoop(t, a)

	f := waitFinding(t, cfg) // the file sink delivers while Slack is down
	if f.Title == "" {
		t.Fatal("no finding in the file sink")
	}
	testkit.Eventually(t, 30*time.Second, "the Slack delivery dead-lettered after bus.max_deliver attempts", func() bool {
		return counter(t, a, "medic_dead_letters_total", map[string]string{"consumer": "sink-oncall"}) == 1
	})
	if n := len(rec.Calls(slackrec.PostMessage)); n != cfg.Bus.MaxDeliver {
		t.Errorf("%d attempts at Slack, want bus.max_deliver = %d", n, cfg.Bus.MaxDeliver)
	}
	st, err := a.Bus().JetStream().Stream(context.Background(), bus.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(context.Background(), bus.DeadLetterSubjectPrefix+"sink-oncall")
	if err != nil {
		t.Fatalf("no dead letter for sink-oncall: %v", err)
	}
	if reason := msg.Header.Get(bus.HeaderDeadReason); !strings.Contains(reason, "503") || strings.Contains(reason, "xoxb-") {
		t.Errorf("dead-letter reason %q", reason)
	}
	if !strings.Contains(string(msg.Data), f.ID) {
		t.Error("the dead letter does not hold the finding")
	}
}

func TestSlackServerErrorIsRetriedByTheConsumer(t *testing.T) {
	rec := slackrec.New(t)
	rec.Fail(slackrec.PostMessage, 1, slackrec.Failure{Status: http.StatusInternalServerError})
	cfg := chatConfig(t, rec)
	a := startApp(t, cfg)
	postCrashLoop(t, a)
	rec.Wait(t, 30*time.Second, "the finding posted after the retry", func(s *slackrec.Server) bool { return len(s.Messages()) == 1 })
	if n := len(rec.Calls(slackrec.PostMessage)); n != 2 {
		t.Errorf("%d postMessage calls, want the failed one and the retry", n)
	}
	if v := counter(t, a, "medic_sink_failures_total", map[string]string{"sink": "oncall"}); v != 1 {
		t.Errorf("medic_sink_failures_total{sink=oncall} = %v, want 1", v)
	}
}

// TestSlackClickThroughMedic: an alert becomes a Slack message; a signed
// Ask AI click on medic's own endpoint is answered in the thread (here:
// AI is not configured); the message links to the finding page, which
// opens.
func TestSlackClickThroughMedic(t *testing.T) {
	rec := slackrec.New(t)
	cfg := chatConfig(t, rec)
	a := startLoggedApp(t, cfg)
	postCrashLoop(t, a)
	rec.Wait(t, 30*time.Second, "the finding in Slack", func(s *slackrec.Server) bool { return len(s.Calls(slackrec.PostMessage)) == 1 })
	msg := rec.Calls(slackrec.PostMessage)[0]
	var findingID string
	for _, id := range strings.Split(msg.BlocksJSON(), `"value":"`)[1:] {
		findingID = id[:strings.IndexByte(id, '"')]
		break
	}
	if findingID == "" {
		t.Fatalf("no button in %s", msg.Blocks)
	}

	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": "U1", "name": "bob"},
		"container": map[string]any{"type": "message", "message_ts": msg.TS, "channel_id": rec.ChannelID("#alerts")},
		"actions":   []any{map[string]any{"action_id": sslack.ActionAskAI, "block_id": sslack.ActionsBlockID, "value": findingID, "action_ts": "1.2", "type": "button"}},
	})
	body := url.Values{"payload": {string(payload)}}.Encode()
	if code := postSigned(t, a, "/slack/interactions", "application/x-www-form-urlencoded", body); code != http.StatusOK {
		t.Fatalf("interaction answered %d", code)
	}
	rec.Wait(t, 30*time.Second, "the answer in the thread", func(s *slackrec.Server) bool {
		for _, u := range s.Calls(slackrec.Update) {
			if strings.Contains(u.BlocksJSON(), "AI is not configured") {
				return true
			}
		}
		return false
	})

	i := strings.Index(msg.BlocksJSON(), "https://medic.example/findings/"+findingID+"?")
	if i < 0 {
		t.Fatalf("no finding page link in %s", msg.Blocks)
	}
	link := msg.BlocksJSON()[i:]
	link = link[:strings.IndexByte(link, '|')]
	link = strings.NewReplacer("\\u0026amp;", "&", "&amp;", "&", "https://medic.example", "http://"+a.Addr()).Replace(link)
	code, page := get(t, link)
	if code != http.StatusOK || !strings.Contains(page, "cart-7d9 is crash looping") {
		t.Errorf("finding page: %d", code)
	}
}

// postSigned posts body to medic's path as Slack signs its requests and
// returns the status.
func postSigned(t *testing.T, a *App, path, contentType, body string) int {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	m := hmac.New(sha256.New, []byte(chatSecret))
	fmt.Fprintf(m, "v0:%s:%s", ts, body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.Addr()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The finding store keeps whole findings for every chat delivery and every
// silenced finding: its bucket is bounded on disk by bus.max_bytes and in
// keys, the oldest going first, so a storm cannot fill the volume the
// events share (bus/kvbucket.go).
func TestFindingStoreIsBounded(t *testing.T) {
	cfg := aiConfig(t, nil)
	cfg.Bus.MaxBytes = 8 << 20
	a := startApp(t, cfg)
	s, err := a.bus.JetStream().Stream(context.Background(), "KV_"+interact.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	sc := s.CachedInfo().Config
	if sc.MaxBytes != 8<<20 || sc.MaxMsgs != config.DefaultBucketRecords || sc.Discard != jetstream.DiscardOld || sc.MaxAge != cfg.FindingPage.Retention {
		t.Errorf("finding store: MaxBytes %d, MaxMsgs %d, Discard %v, MaxAge %s; want %d, %d, DiscardOld, %s",
			sc.MaxBytes, sc.MaxMsgs, sc.Discard, sc.MaxAge, 8<<20, config.DefaultBucketRecords, cfg.FindingPage.Retention)
	}
}
