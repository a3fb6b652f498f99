package discord

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

func TestMessageGolden(t *testing.T) {
	t.Parallel()
	for name, f := range vendortest.Findings() {
		t.Run(name, func(t *testing.T) {
			m := Render(f, chattext.Options{Cluster: "prod-eu", PageURL: vendortest.PageURL, InlineLogLines: Defaults().InlineLogLines})
			total := 0
			for _, e := range m.Embeds {
				total += e.size()
			}
			if len(m.Embeds) > maxEmbeds || total > maxEmbedsTotal {
				t.Errorf("%d embeds of %d characters in all", len(m.Embeds), total)
			}
			testkit.Golden(t, filepath.Join("testdata", name+".golden.json"), testkit.JSON(t, m))
		})
	}
	if m := Render(vendortest.Findings()["huge"], chattext.Options{PageURL: vendortest.PageURL}); !strings.Contains(m.Content, "…truncated: ") || !strings.Contains(m.Content, vendortest.PageURL) {
		t.Errorf("huge finding: content %q, want a truncation note linking to the finding page", m.Content)
	}
}

func newSink(t *testing.T, url string) (*Sink, *[]time.Duration) {
	t.Helper()
	p := *Defaults()
	p.WebhookURL, p.Username = url, "medic"
	s, err := New(t.Context(), "dc", p, sinks.Deps{HTTP: &http.Client{Timeout: 5 * time.Second}, Cluster: "prod-eu"})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	s.poster.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	return s, &waits
}

// Every fixture, the huge one included, is accepted by a webhook that
// enforces Discord's limits.
func TestWebhookAcceptsEveryFinding(t *testing.T) {
	t.Parallel()
	hook := vendortest.DiscordWebhook(t, "1290021540", "tok-s3cret")
	s, _ := newSink(t, hook.URL+"/api/webhooks/1290021540/tok-s3cret")
	accepted := hook.SendEach(t, s.Send)
	for _, r := range accepted {
		var m Message
		if err := json.Unmarshal(r.Body, &m); err != nil || r.Query["wait"][0] != "true" || m.Username != "medic" || m.AllowedMentions.Parse == nil {
			t.Errorf("message %s (%v), query %v", r.Body, err, r.Query)
		}
	}
}

func TestRateLimitAndErrorsKeepTheURL(t *testing.T) {
	t.Parallel()
	hook := vendortest.DiscordWebhook(t, "1", "tok-s3cret")
	hook.FailNext(vendortest.DiscordRateLimited, vendortest.Failure{Status: http.StatusBadGateway})
	s, waits := newSink(t, hook.URL+"/api/webhooks/1/tok-s3cret")
	err := s.Send(context.Background(), vendortest.Alert(event.StatusFiring))
	if err == nil || !strings.Contains(err.Error(), "answered 502") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v, want the 502 for the consumer to retry, without the URL", err)
	}
	if len(*waits) != 1 || (*waits)[0] != 2*time.Second {
		t.Errorf("waits %v, want the 2s Retry-After", *waits)
	}
	if err := s.Send(context.Background(), vendortest.Alert(event.StatusFiring)); err != nil {
		t.Fatal(err)
	}
	wrong, _ := newSink(t, hook.URL+"/api/webhooks/1/other-s3cret")
	if err := wrong.Send(context.Background(), vendortest.Alert(event.StatusFiring)); err == nil || !strings.Contains(err.Error(), "Invalid Webhook Token") || strings.Contains(err.Error(), "other-s3cret") {
		t.Errorf("deleted webhook: %v", err)
	}
}

func TestParams(t *testing.T) {
	t.Parallel()
	testkit.CheckParams(t, Defaults, (*Params).Validate, []testkit.ParamCase[Params]{
		{Name: "nothing", Mut: func(*Params) {}, Want: "webhook_url: required"},
		{Name: "bad url", Mut: func(p *Params) { p.WebhookURL = "discord.com/api/webhooks/1/s3cret" }, Want: "not an http(s) URL"},
		{Name: "two secrets", Mut: func(p *Params) { p.WebhookURL, p.WebhookURLFile = "https://discord.com/api/webhooks/1/x", "/f" }, Want: "set only one"},
		{Name: "avatar", Mut: func(p *Params) { p.WebhookURLEnv, p.AvatarURL = "DISCORD", "x.png" }, Want: "avatar_url"},
		{Name: "log lines", Mut: func(p *Params) { p.WebhookURLEnv, p.InlineLogLines = "DISCORD", 0 }, Want: "inline_log_lines"},
		{Name: "ok", Mut: func(p *Params) { p.WebhookURLFile = "/var/run/secrets/medic/dc/webhook_url" }, Want: ""},
	}, "s3cret")
}
