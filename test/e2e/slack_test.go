package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/app"
	sslack "github.com/medichq/medic/sinks/slack"
	"github.com/medichq/medic/sinks/slack/slackrec"
	"github.com/medichq/medic/test/realam"
)

// switchProxy forwards to a target that can change (a restarted medic, an
// Alertmanager started after medic).
type switchProxy struct {
	*httptest.Server
	target atomic.Pointer[url.URL]
}

func newSwitchProxy(t *testing.T) *switchProxy {
	p := &switchProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := p.target.Load()
		if u == nil {
			http.Error(w, "no target yet", http.StatusBadGateway)
			return
		}
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *switchProxy) set(t *testing.T, target string) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p.target.Store(u)
}

const slackSecret = "e2e-signing-secret"

// runMedic starts medic and returns a stop function (also run at cleanup).
func runMedic(t *testing.T, cfg config.Config) (*app.App, func()) {
	t.Helper()
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("start medic: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("start medic: %v", err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}
	t.Cleanup(stop)
	return a, stop
}

func click(t *testing.T, medicURL string, rec *slackrec.Server, msg slackrec.Call, actionID, findingID, actionTS string) {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": "U0ONCALL", "name": "alice"},
		"container": map[string]any{"type": "message", "message_ts": msg.TS, "channel_id": rec.ChannelID(msg.Channel)},
		"actions": []any{map[string]any{"action_id": actionID, "block_id": sslack.ActionsBlockID, "value": findingID,
			"action_ts": actionTS, "type": "button"}},
	})
	body := url.Values{"payload": {string(payload)}}.Encode()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	m := hmac.New(sha256.New, []byte(slackSecret))
	fmt.Fprintf(m, "v0:%s:%s", ts, body)
	req, _ := http.NewRequest(http.MethodPost, medicURL+"/slack/interactions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("click answered %d", resp.StatusCode)
	}
}

// TestSlackEndToEnd: a real Alertmanager fires two alerts into medic; each
// becomes a Slack message with its buttons; Silence 1h creates a silence in
// that Alertmanager; Ask AI answers in the thread; medic restarts; the
// other alert resolves and its original message is updated, with a
// "resolved after" reply in its thread.
func TestSlackEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the real Alertmanager")
	}
	rec := slackrec.New(t)
	amProxy, medicProxy := newSwitchProxy(t), newSwitchProxy(t)
	cfg := testConfig(t, t.TempDir())
	var slackSinks []config.SinkSpec
	if err := yaml.Unmarshal([]byte("- {name: oncall, type: slack, channel: '#alerts', rate_limit: 0}\n"), &slackSinks); err != nil {
		t.Fatal(err)
	}
	cfg.Sinks = append(cfg.Sinks, slackSinks...)
	cfg.Slack.BotToken, cfg.Slack.SigningSecret, cfg.Slack.APIURL = "xoxb-e2e", slackSecret, rec.APIURL()
	cfg.Alertmanager.URL = amProxy.URL
	cfg.PublicURL = "https://medic.example"

	m, stop := runMedic(t, cfg)
	medicProxy.set(t, "http://"+m.Addr())
	am := realam.Start(t, medicProxy.URL+"/api/alerts")
	amProxy.set(t, am.URL())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	startsAt := time.Now().Add(-14 * time.Minute).UTC().Truncate(time.Second)
	labels := func(pod string) map[string]string {
		return map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": pod, "severity": "critical"}
	}
	ann := map[string]string{"summary": "Pod is crash looping", "runbook_url": "https://runbooks.example/kubepodcrashlooping"}
	for _, pod := range []string{"cart-a", "cart-b"} {
		if err := am.PostAlert(ctx, labels(pod), ann, startsAt, time.Time{}, "http://prometheus.local/graph"); err != nil {
			t.Fatal(err)
		}
	}
	rec.Wait(t, time.Minute, "both alerts in Slack", func(s *slackrec.Server) bool { return len(s.Calls(slackrec.PostMessage)) >= 2 })
	msgs := map[string]slackrec.Call{}
	findingOf := map[string]string{}
	for _, c := range rec.Calls(slackrec.PostMessage) {
		for _, pod := range []string{"cart-a", "cart-b"} {
			if c.ThreadTS == "" && strings.Contains(c.BlocksJSON(), pod) {
				msgs[pod] = c
				for _, part := range strings.Split(c.BlocksJSON(), `"action_id":"`+sslack.ActionSilence1h+`","value":"`)[1:] {
					findingOf[pod] = part[:strings.IndexByte(part, '"')]
				}
			}
		}
	}
	if len(msgs) != 2 || findingOf["cart-a"] == "" || findingOf["cart-b"] == "" {
		t.Fatalf("messages with silence buttons: %v", findingOf)
	}
	a := msgs["cart-a"]
	for _, id := range []string{sslack.ActionAskAI, sslack.ActionSilence4h} {
		if !strings.Contains(a.BlocksJSON(), id) {
			t.Errorf("message lacks the %s button", id)
		}
	}

	// Silence 1h on cart-a: a silence in the real Alertmanager.
	click(t, "http://"+m.Addr(), rec, a, sslack.ActionSilence1h, findingOf["cart-a"], "1700000500.000001")
	rec.Wait(t, time.Minute, "the silence confirmed in cart-a's thread", func(s *slackrec.Server) bool {
		for _, c := range s.Calls(slackrec.PostMessage) {
			if c.ThreadTS == a.TS && strings.Contains(c.BlocksJSON(), "silenced this alert for 1h") {
				return true
			}
		}
		return false
	})
	sils, err := am.Silences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sils) != 1 {
		t.Fatalf("%d silences, want 1", len(sils))
	}
	pods := ""
	for _, mt := range sils[0].Matchers {
		if *mt.Name == "pod" {
			pods = *mt.Value
		}
	}
	if pods != "cart-a" || *sils[0].Status.State != "active" {
		t.Errorf("silence for pod %q, state %s", pods, *sils[0].Status.State)
	}

	// Ask AI without a model: the thread says so.
	click(t, "http://"+m.Addr(), rec, a, sslack.ActionAskAI, findingOf["cart-a"], "1700000500.000002")
	rec.Wait(t, time.Minute, "the AI answer in cart-a's thread", func(s *slackrec.Server) bool {
		for _, u := range s.Calls(slackrec.Update) {
			if strings.Contains(u.BlocksJSON(), "AI is not configured") {
				return true
			}
		}
		return false
	})

	// medic restarts; then cart-b resolves.
	stop()
	m2, _ := runMedic(t, cfg)
	medicProxy.set(t, "http://"+m2.Addr())
	if err := am.PostAlert(ctx, labels("cart-b"), ann, startsAt, time.Now().Add(-time.Second), "http://prometheus.local/graph"); err != nil {
		t.Fatal(err)
	}
	b := msgs["cart-b"]
	chB := rec.ChannelID(b.Channel)
	rec.Wait(t, time.Minute, "cart-b's original message updated to resolved", func(s *slackrec.Server) bool {
		msg, ok := s.Message(chB, b.TS)
		return ok && msg.Updates > 0 && strings.Contains(string(msg.Blocks), "RESOLVED")
	})
	rec.Wait(t, time.Minute, "a \"resolved after\" reply in cart-b's thread", func(s *slackrec.Server) bool {
		for _, c := range s.Calls(slackrec.PostMessage) {
			if c.ThreadTS == b.TS && strings.Contains(c.BlocksJSON(), "Resolved after 1") {
				return true
			}
		}
		return false
	})
	for _, c := range rec.Calls(slackrec.PostMessage) {
		if c.ThreadTS == "" && strings.Contains(c.BlocksJSON(), "cart-b") && c.TS != b.TS {
			t.Errorf("cart-b got a second top-level message %s instead of an update", c.TS)
		}
	}
}
