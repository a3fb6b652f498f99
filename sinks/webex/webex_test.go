package webex

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/internal/chattext"
	"github.com/medichq/medic/sinks/vendortest"
)

func TestMarkdownGolden(t *testing.T) {
	t.Parallel()
	for name, f := range vendortest.Findings() {
		t.Run(name, func(t *testing.T) {
			md := Markdown(f, chattext.Options{Cluster: "prod-eu", PageURL: vendortest.PageURL, InlineLogLines: Defaults().InlineLogLines})
			if len(md) > MaxMessageBytes {
				t.Errorf("markdown of %d bytes", len(md))
			}
			testkit.Golden(t, filepath.Join("testdata", name+".golden.md"), []byte(md))
		})
	}
	// Multi-byte text still fits the byte limit.
	f := vendortest.Alert(event.StatusFiring)
	f.Add(event.Enrichment{Title: "Logs", Blocks: []event.Block{event.LogTextBlock("app", strings.Repeat("ошибка подключения 🔥\n", 400), false)}})
	f.Add(event.Enrichment{Title: "Notes", Blocks: []event.Block{event.MarkdownBlock(strings.Repeat("данные ", 1000))}})
	if md := Markdown(f, chattext.Options{InlineLogLines: 50}); len(md) > MaxMessageBytes {
		t.Errorf("multi-byte markdown of %d bytes", len(md))
	}
}

const token = "NzE5Y2s3cmV0-s3cret"

func newSink(t *testing.T, p Params) (*Sink, *[]time.Duration) {
	t.Helper()
	s, err := New(t.Context(), "wx", p, sinks.Deps{HTTP: &http.Client{Timeout: 5 * time.Second}, Cluster: "prod-eu"})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	s.poster.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	return s, &waits
}

func TestAPIAcceptsEveryFinding(t *testing.T) {
	t.Parallel()
	api := vendortest.Webex(t, token, "Y2lzY29zcGFyazovL3VzL1JPT00v")
	p := *Defaults()
	p.BotToken, p.RoomID, p.APIURL = token, "Y2lzY29zcGFyazovL3VzL1JPT00v", api.URL
	s, _ := newSink(t, p)
	accepted := api.SendEach(t, s.Send)
	var m Message
	if err := json.Unmarshal(accepted[0].Body, &m); err != nil || m.Text == "" || !strings.Contains(m.Markdown, "**") {
		t.Errorf("request %s (%v)", accepted[0].Body, err)
	}
}

func TestRateLimitAndErrorsKeepTheToken(t *testing.T) {
	t.Parallel()
	api := vendortest.Webex(t, token, "r1")
	api.FailNext(vendortest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "5", Body: `{"message": "Too many requests"}`},
		vendortest.Failure{Status: http.StatusServiceUnavailable, Body: `{"message": "Service Unavailable"}`})
	p := *Defaults()
	p.BotToken, p.RoomID, p.APIURL = token, "r1", api.URL+"/"
	s, waits := newSink(t, p)
	err := s.Send(context.Background(), vendortest.Alert(event.StatusFiring))
	if err == nil || !strings.Contains(err.Error(), "answered 503") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v, want the 503 for the consumer to retry, without the token", err)
	}
	if len(*waits) != 1 || (*waits)[0] != 5*time.Second {
		t.Errorf("waits %v, want the 5s Retry-After", *waits)
	}
	if err := s.Send(context.Background(), vendortest.Alert(event.StatusResolved)); err != nil {
		t.Fatal(err)
	}
	p.RoomID = "elsewhere"
	s, _ = newSink(t, p)
	if err := s.Send(context.Background(), vendortest.Alert(event.StatusFiring)); err == nil || !strings.Contains(err.Error(), "Could not find a room") {
		t.Errorf("unknown room: %v", err)
	}
}

func TestParams(t *testing.T) {
	t.Parallel()
	testkit.CheckParams(t, Defaults, (*Params).Validate, []testkit.ParamCase[Params]{
		{Name: "nothing", Mut: func(*Params) {}, Want: "bot_token: required"},
		{Name: "no room", Mut: func(p *Params) { p.BotTokenEnv = "WX" }, Want: "room_id: required"},
		{Name: "bad api url", Mut: func(p *Params) { p.BotTokenEnv, p.RoomID, p.APIURL = "WX", "r", "webexapis.com" }, Want: "api_url"},
		{Name: "ok", Mut: func(p *Params) { p.BotTokenFile, p.RoomID = "/var/run/secrets/medic/wx/bot_token", "r" }, Want: ""},
	})
}
