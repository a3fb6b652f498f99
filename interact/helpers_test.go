package interact

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/sinks"
	sslack "github.com/medichq/medic/sinks/slack"
	"github.com/medichq/medic/sinks/slack/slackrec"
)

const (
	botToken      = "xoxb-bot-token-never-shown"
	signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	appToken      = "xapp-1-app-token"
)

// fakeAI answers with a fixed text; with hold set it waits for release.
type fakeAI struct {
	mu       sync.Mutex
	requests []rag.Request
	hold     chan struct{}
	started  chan struct{}
}

func (a *fakeAI) Answer(ctx context.Context, req rag.Request) (rag.Answer, error) {
	a.mu.Lock()
	a.requests = append(a.requests, req)
	hold, started := a.hold, a.started
	a.mu.Unlock()
	if started != nil {
		select {
		case started <- struct{}{}:
		default:
		}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return rag.Answer{}, ctx.Err()
		}
	}
	return rag.Answer{
		Text:      "**What is happening:** the cart service cannot reach its database <db-primary>.",
		Citations: []rag.Citation{{N: 1, Title: "KubePodCrashLooping", URL: "https://runbooks.example/kubepodcrashlooping", Source: "kubepodcrashlooping.md"}},
		Model:     "test-model",
	}, nil
}

func (a *fakeAI) calls() []rag.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]rag.Request(nil), a.requests...)
}

type harness struct {
	t        *testing.T
	bus      *bus.Bus
	slack    *slackrec.Server
	kv       KVFunc
	findings *FindingStore
	links    *Links
	svc      *Service
	srv      *httptest.Server
	sink     *sslack.Sink
	ai       *fakeAI
}

type harnessOpts struct {
	noAI            bool
	socketMode      bool
	alertmanagerURL string
	// alertmanagerAllowed and alertmanagerToken are alertmanager.allowed_urls
	// and the bearer token the Silence buttons send.
	alertmanagerAllowed []string
	alertmanagerToken   string
	// remediator and approvers are remediation's (approve_test.go).
	remediator Remediator
	approvers  []string
}

func newHarness(t *testing.T, ho harnessOpts) *harness {
	t.Helper()
	h := &harness{t: t, slack: slackrec.New(t), ai: &fakeAI{}}
	b, err := bus.Open(context.Background(), bus.Config{
		StoreDir: filepath.Join(t.TempDir(), "js"), Replicas: 1, DedupWindow: time.Minute, MaxDeliver: 4,
		Backoff: []time.Duration{20 * time.Millisecond}, AckWait: 5 * time.Second, PublishTimeout: 5 * time.Second, Compression: "s2",
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h.bus = b
	t.Cleanup(b.Close)
	ctx := context.Background()
	h.kv = KVOpener(b.JetStream(), 1)
	if h.findings, err = NewFindingStore(ctx, h.kv, time.Hour); err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewUnstartedServer(nil)
	h.links = NewLinksWithKey([]byte("0123456789abcdef0123456789abcdef"), "http://"+h.srv.Listener.Addr().String(), time.Hour)
	o := Options{
		Bus: b, Replicas: 1, Logger: slog.New(slog.DiscardHandler), KV: h.kv, Findings: h.findings, Links: h.links,
		Slack:           SlackOptions{BotToken: botToken, SigningSecret: signingSecret, APIURL: h.slack.APIURL()},
		AlertmanagerURL: ho.alertmanagerURL, AlertmanagerAllowed: ho.alertmanagerAllowed,
		Remediator: ho.remediator, Approvers: ho.approvers,
	}
	if ho.alertmanagerToken != "" {
		o.AlertmanagerToken = func() (string, error) { return ho.alertmanagerToken, nil }
	}
	if !ho.noAI {
		o.Answerer = h.ai
	}
	if ho.socketMode {
		o.Slack.SocketMode, o.Slack.AppToken = true, appToken
	}
	if h.svc, err = New(ctx, o); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := h.svc.Start(runCtx, nil); err != nil {
		t.Fatal(err)
	}
	if ho.socketMode {
		go h.svc.RunSocketMode(runCtx)
	}
	mux := http.NewServeMux()
	h.svc.RegisterRoutes(mux)
	h.srv.Config.Handler = mux
	h.srv.Start()
	t.Cleanup(h.srv.Close)

	p := *sslack.Defaults()
	p.Channel, p.RateLimit = "#alerts", 0
	h.sink, err = sslack.New(t.Context(), "oncall", p, sinks.Deps{
		Log: slog.New(slog.DiscardHandler), HTTP: &http.Client{Timeout: 10 * time.Second},
		OpenKV: h.kv, FindingStore: h.findings, PageURL: h.links.URL,
		SlackSettings: sinks.SlackSettings{BotToken: botToken, APIURL: h.slack.APIURL()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func alertFinding(id string) *event.Finding {
	ev := event.Event{
		ID: id, Kind: event.KindPrometheusAlert, Source: "alertmanager", Status: event.StatusFiring,
		Severity: event.SeverityCritical, Title: "Pod shop/cart-7d9 is crash looping <script>alert(1)</script>",
		Description: "Back-off restarting failed container & <b>bold</b>",
		Labels: map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9",
			"severity": "critical", "instance": id},
		Subject:     event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9"},
		StartsAt:    t0,
		Fingerprint: "fp-" + id,
	}
	f := event.NewFinding(ev, t0)
	f.Add(event.Enrichment{Title: "Logs", Source: "logs_enricher", Blocks: []event.Block{
		event.LogTextBlock("shop/cart-7d9 app", logText(150), false),
	}})
	return f
}

func logText(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %d: dial tcp db-primary:5432: connection refused\n", i)
	}
	return b.String()
}

// deliver posts a finding through the Slack sink and returns its message.
func (h *harness) deliver(f *event.Finding) slackrec.Call {
	h.t.Helper()
	if err := h.sink.Send(context.Background(), f); err != nil {
		h.t.Fatal(err)
	}
	for _, c := range h.slack.Calls(slackrec.PostMessage) {
		if c.ThreadTS == "" && strings.Contains(c.BlocksJSON(), f.ID) {
			return c
		}
	}
	h.t.Fatalf("no message for %s", f.ID)
	return slackrec.Call{}
}

// clickPayload is a block_actions payload as Slack sends it.
func (h *harness) clickPayload(msg slackrec.Call, actionID, findingID, actionTS string) map[string]any {
	ch := h.slack.ChannelID(msg.Channel)
	return map[string]any{
		"type":       "block_actions",
		"trigger_id": "trig-" + actionTS,
		"user":       map[string]any{"id": "U0ONCALL", "name": "alice"},
		"team":       map[string]any{"id": "T0TEAM"},
		"container":  map[string]any{"type": "message", "message_ts": msg.TS, "channel_id": ch, "is_ephemeral": false},
		"channel":    map[string]any{"id": ch, "name": "alerts"},
		"message":    map[string]any{"ts": msg.TS, "type": "message"},
		"actions": []any{map[string]any{
			"action_id": actionID, "block_id": sslack.ActionsBlockID, "value": findingID, "type": "button",
			"action_ts": actionTS, "text": map[string]any{"type": "plain_text", "text": "x"},
		}},
	}
}

// signed builds a request signed like Slack signs it.
func signed(t *testing.T, target string, body []byte, ts time.Time, secret string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	stamp := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%s:%s", stamp, body)
	req.Header.Set("X-Slack-Request-Timestamp", stamp)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(m.Sum(nil)))
	return req
}

func formBody(t *testing.T, payload any) []byte {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(url.Values{"payload": {string(b)}}.Encode())
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// click sends a signed click and expects 200.
func (h *harness) click(msg slackrec.Call, actionID, findingID, actionTS string) {
	h.t.Helper()
	req := signed(h.t, h.srv.URL+"/slack/interactions", formBody(h.t, h.clickPayload(msg, actionID, findingID, actionTS)), time.Now(), signingSecret)
	if st, body := do(h.t, req); st != http.StatusOK {
		h.t.Fatalf("click answered %d %s", st, body)
	}
}

// threadPosts are the posts in a thread.
func (h *harness) threadPosts(ts string) []slackrec.Call {
	var out []slackrec.Call
	for _, c := range h.slack.Calls(slackrec.PostMessage) {
		if c.ThreadTS == ts {
			out = append(out, c)
		}
	}
	return out
}

// streamMessages counts the jobs published.
func (h *harness) streamMessages() uint64 {
	h.t.Helper()
	st, err := h.bus.JetStream().Stream(context.Background(), Stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs
}

// text is every text of a call's blocks, decoded, joined by newlines.
func text(c slackrec.Call) string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if t, ok := v["text"].(string); ok {
				out = append(out, t)
			}
			for k, x := range v {
				if k != "text" {
					walk(x)
				} else if _, ok := x.(string); !ok {
					walk(x)
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var v any
	_ = json.Unmarshal(c.Blocks, &v)
	walk(v)
	return strings.Join(out, "\n")
}

// waitAsk waits until a finding's Ask AI is done.
func (h *harness) waitAsk(id string) *AskState {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := h.svc.AskState(context.Background(), id)
		if err == nil && st != nil && st.Status == AskDone {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("ask for %s not done: %+v %v", id, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
