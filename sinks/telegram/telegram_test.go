package telegram

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/internal/chattext"
	"github.com/medichq/medic/sinks/vendortest"
)

func TestTextGolden(t *testing.T) {
	t.Parallel()
	for name, f := range vendortest.Findings() {
		t.Run(name, func(t *testing.T) {
			text := Text(f, chattext.Options{Cluster: "prod-eu", PageURL: vendortest.PageURL, InlineLogLines: Defaults().InlineLogLines})
			if n := utf8.RuneCountInString(text); n > MaxMessageChars {
				t.Errorf("text of %d characters", n)
			}
			testkit.Golden(t, filepath.Join("testdata", name+".golden.html"), []byte(text))
		})
	}
}

const token = "123456:AAE-s3cret"

func newSink(t *testing.T, p Params) (*Sink, *[]time.Duration) {
	t.Helper()
	s, err := New(t.Context(), "tg", p, sinks.Deps{HTTP: &http.Client{Timeout: 5 * time.Second}, Cluster: "prod-eu"})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	s.poster.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	return s, &waits
}

// Every fixture parses as Telegram's HTML and fits its limit: the Bot API
// double refuses unbalanced tags, unknown entities and long texts.
func TestBotAPIAcceptsEveryFinding(t *testing.T) {
	t.Parallel()
	api := vendortest.TelegramBot(t, token)
	p := *Defaults()
	p.BotToken, p.ChatID, p.MessageThreadID, p.APIURL = token, "-1001234567890", 7, api.URL
	s, _ := newSink(t, p)
	accepted := api.SendEach(t, s.Send)
	var m SendMessage
	if err := json.Unmarshal(accepted[0].Body, &m); err != nil || m.ChatID != "-1001234567890" || m.MessageThreadID != 7 || m.ParseMode != "HTML" || !m.LinkPreviewOptions.IsDisabled {
		t.Errorf("request %s (%v)", accepted[0].Body, err)
	}
}

func TestRateLimitAndErrorsKeepTheToken(t *testing.T) {
	t.Parallel()
	api := vendortest.TelegramBot(t, token)
	api.FailNext(vendortest.TelegramRateLimited, vendortest.Failure{Status: http.StatusInternalServerError, Body: `{"ok":false,"error_code":500,"description":"Internal Server Error"}`})
	p := *Defaults()
	p.BotToken, p.ChatID, p.APIURL = token, "@oncall", api.URL+"/"
	s, waits := newSink(t, p)
	err := s.Send(context.Background(), vendortest.Alert(event.StatusFiring))
	if err == nil || !strings.Contains(err.Error(), "answered 500") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v, want the 500 for the consumer to retry, without the token", err)
	}
	// The 429 has no Retry-After header: the delivery waits the 3 seconds
	// the body's parameters.retry_after asks for, then the 500 is left to
	// the consumer's back-off.
	if len(*waits) != 1 || (*waits)[0] != 3*time.Second {
		t.Errorf("waits %v, want one 3s wait", *waits)
	}
	if err := s.Send(context.Background(), vendortest.Alert(event.StatusResolved)); err != nil {
		t.Fatal(err)
	}
	p.BotToken = "999:other-s3cret"
	s, _ = newSink(t, p)
	if err := s.Send(context.Background(), vendortest.Alert(event.StatusFiring)); err == nil || !strings.Contains(err.Error(), "answered 404") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("wrong token: %v", err)
	}
}

// Telegram's flood limit says how long to wait in the body only. A wait
// within max_retry_after is waited out and the message delivered once; a
// longer one fails the delivery (the consumer retries it later) instead of
// retrying after a second into the same refusal.
func TestRetryAfterFromBody(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		failure   vendortest.Failure
		waits     []time.Duration
		delivered int
	}{
		"waited out":     {vendortest.TelegramRateLimited, []time.Duration{3 * time.Second}, 1},
		"header decides": {vendortest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "5", Body: vendortest.TelegramRateLimited.Body}, []time.Duration{5 * time.Second}, 1},
		"too long": {vendortest.Failure{Status: http.StatusTooManyRequests,
			Body: `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 120","parameters":{"retry_after":120}}`}, nil, 0},
		"no parameters": {vendortest.Failure{Status: http.StatusTooManyRequests, Body: `{"ok":false,"error_code":429}`}, []time.Duration{time.Second}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			api := vendortest.TelegramBot(t, token)
			api.FailNext(tc.failure)
			p := *Defaults()
			p.BotToken, p.ChatID, p.APIURL = token, "@oncall", api.URL
			s, waits := newSink(t, p)
			err := s.Send(context.Background(), vendortest.Alert(event.StatusFiring))
			if tc.delivered == 1 && err != nil || tc.delivered == 0 && (err == nil || !strings.Contains(err.Error(), "rate limited")) {
				t.Fatalf("Send: %v", err)
			}
			if !slices.Equal(*waits, tc.waits) || len(api.Accepted()) != tc.delivered || api.Failed() != 1 {
				t.Errorf("waits %v, %d delivered after %d refusals; want waits %v, %d delivered after 1", *waits, len(api.Accepted()), api.Failed(), tc.waits, tc.delivered)
			}
		})
	}
	for body, want := range map[string]time.Duration{
		`{"parameters":{"retry_after":7}}`:                   7 * time.Second,
		`{"parameters":{"retry_after":9223372036854775807}}`: 24 * time.Hour,
		`{"parameters":{"retry_after":-1}}`:                  -1,
		`{"parameters":{}}`:                                  -1,
		`not json`:                                           -1,
	} {
		got, ok := RetryAfter([]byte(body))
		if want < 0 && ok || want >= 0 && (!ok || got != want) {
			t.Errorf("RetryAfter(%s) = %v, %v; want %v", body, got, ok, want)
		}
	}
}

func TestParams(t *testing.T) {
	t.Parallel()
	testkit.CheckParams(t, Defaults, (*Params).Validate, []testkit.ParamCase[Params]{
		{Name: "nothing", Mut: func(*Params) {}, Want: "bot_token: required"},
		{Name: "no chat", Mut: func(p *Params) { p.BotTokenEnv = "TG" }, Want: "chat_id: required"},
		{Name: "bad chat", Mut: func(p *Params) { p.BotTokenEnv, p.ChatID = "TG", "oncall" }, Want: "chat_id"},
		{Name: "bad api url", Mut: func(p *Params) { p.BotTokenEnv, p.ChatID, p.APIURL = "TG", "-100", "api.telegram.org" }, Want: "api_url"},
		{Name: "topic", Mut: func(p *Params) { p.BotTokenEnv, p.ChatID, p.MessageThreadID = "TG", "-100", -1 }, Want: "message_thread_id"},
		{Name: "ok", Mut: func(p *Params) { p.BotTokenFile, p.ChatID = "/var/run/secrets/medic/tg/bot_token", "@oncall" }, Want: ""},
	})
}
