package mattermost

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
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

func TestAttachmentGolden(t *testing.T) {
	t.Parallel()
	for name, f := range vendortest.Findings() {
		t.Run(name, func(t *testing.T) {
			a := Render(f, chattext.Options{Cluster: "prod-eu", PageURL: vendortest.PageURL}, Defaults().MaxMessageChars)
			if n := utf8.RuneCountInString(a.Text); n > Defaults().MaxMessageChars {
				t.Errorf("text of %d characters, limit %d", n, Defaults().MaxMessageChars)
			}
			testkit.Golden(t, filepath.Join("testdata", name+".golden.json"), testkit.JSON(t, a))
		})
	}
	huge := Render(vendortest.Findings()["huge"], chattext.Options{PageURL: vendortest.PageURL}, 2000)
	if n := utf8.RuneCountInString(huge.Text); n > 2000 || !strings.Contains(huge.Text, "…truncated: ") {
		t.Errorf("huge finding with max 2000: %d characters, truncation note shown: %v", n, strings.Contains(huge.Text, "…truncated: "))
	}
}

func newSink(t *testing.T, p Params) (*Sink, *[]time.Duration) {
	t.Helper()
	s, err := New(t.Context(), "mm", p, sinks.Deps{HTTP: &http.Client{Timeout: 5 * time.Second}, Cluster: "prod-eu",
		PageURL: func(id string) string { return "https://medic.example/findings/" + id }})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	s.poster.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	return s, &waits
}

func TestPostsThroughWebhookAndBot(t *testing.T) {
	t.Parallel()
	hook := vendortest.MattermostWebhook(t, "xq8ru1p3")
	api := vendortest.MattermostAPI(t, "bot-s3cret", "ch4nn3l1d", "ops", "alerts")
	p := *Defaults()
	p.WebhookURL, p.Channel, p.Username = hook.URL+"/hooks/xq8ru1p3", "town-square", "medic"
	viaHook, _ := newSink(t, p)
	p = *Defaults()
	p.URL, p.Token, p.ChannelID = api.URL+"/", "bot-s3cret", "ch4nn3l1d"
	viaBot, _ := newSink(t, p)
	p.ChannelID, p.Team, p.Channel = "", "ops", "alerts" // Robusta's shape: names
	byName, _ := newSink(t, p)
	f := vendortest.Findings()["evidence"]
	for _, s := range []*Sink{viaHook, viaBot, byName, byName} {
		if err := s.Send(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	var lookups, posts int
	for _, r := range api.Accepted() {
		if r.Method == http.MethodGet {
			lookups++
		} else if strings.Contains(string(r.Body), `"channel_id":"ch4nn3l1d"`) {
			posts++
		}
	}
	if len(hook.Accepted()) != 1 || posts != 3 || lookups != 1 {
		t.Fatalf("webhook got %d posts (refused %v); API %d posts to the channel and %d channel lookups, want 3 and 1 (refused %v)", len(hook.Accepted()), hook.Refused(), posts, lookups, api.Refused())
	}
	if len(hook.Accepted()) != 1 {
		t.Fatalf("webhook got %d posts (refused %v), API %d (refused %v)", len(hook.Accepted()), hook.Refused(), len(api.Accepted()), api.Refused())
	}
	var wp WebhookPayload
	if err := json.Unmarshal(hook.Accepted()[0].Body, &wp); err != nil || wp.Channel != "town-square" || wp.Username != "medic" || len(wp.Attachments) != 1 {
		t.Fatalf("webhook payload %s (%v)", hook.Accepted()[0].Body, err)
	}
	var post struct {
		ChannelID string `json:"channel_id"`
		Props     struct {
			Attachments []Attachment `json:"attachments"`
		} `json:"props"`
	}
	if err := json.Unmarshal(api.Accepted()[0].Body, &post); err != nil || len(post.Props.Attachments) != 1 {
		t.Fatalf("API post %s (%v)", api.Accepted()[0].Body, err)
	}
	p.Channel = "nowhere"
	lost, _ := newSink(t, p)
	if err := lost.Send(context.Background(), f); err == nil || !strings.Contains(err.Error(), `find channel "nowhere" of team "ops"`) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("unknown channel: %v", err)
	}
	a := post.Props.Attachments[0]
	if a.TitleLink != "https://medic.example/findings/"+f.ID || a.Color != "#e01e5a" || !strings.Contains(a.Text, "line 40:") {
		t.Errorf("attachment %+v", a)
	}
}

func TestRateLimitAndErrorsKeepSecrets(t *testing.T) {
	t.Parallel()
	api := vendortest.MattermostAPI(t, "bot-s3cret", "c1", "ops", "alerts")
	api.FailNext(vendortest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "2", Body: `{"id":"api.context.rate_limit","status_code":429}`},
		vendortest.Failure{Status: http.StatusServiceUnavailable})
	p := *Defaults()
	p.URL, p.Token, p.ChannelID = api.URL, "bot-s3cret", "c1"
	s, waits := newSink(t, p)
	err := s.Send(context.Background(), vendortest.Alert(event.StatusFiring))
	if err == nil || !strings.Contains(err.Error(), "answered 503") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v, want the 503 for the consumer to retry, without the token", err)
	}
	if len(*waits) != 1 || (*waits)[0] != 2*time.Second {
		t.Errorf("waits %v, want the 2s Retry-After", *waits)
	}
	if err := s.Send(context.Background(), vendortest.Alert(event.StatusFiring)); err != nil {
		t.Fatal(err)
	}
	p.Token = "wrong"
	s, _ = newSink(t, p)
	if err := s.Send(context.Background(), vendortest.Alert(event.StatusFiring)); err == nil || !strings.Contains(err.Error(), "answered 401") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("bad token: %v", err)
	}
}

func TestParams(t *testing.T) {
	t.Parallel()
	testkit.CheckParams(t, Defaults, (*Params).Validate, []testkit.ParamCase[Params]{
		{Name: "nothing", Mut: func(*Params) {}, Want: "webhook_url (an incoming webhook) or url, token and channel_id"},
		{Name: "both", Mut: func(p *Params) { p.WebhookURL, p.URL = "https://x/hooks/1", "https://x" }, Want: "not both"},
		{Name: "bad webhook", Mut: func(p *Params) { p.WebhookURL = "ftp://x/hooks/s3cret" }, Want: "webhook_url: not an http(s) URL"},
		{Name: "two secrets", Mut: func(p *Params) { p.WebhookURL, p.WebhookURLEnv = "https://x/hooks/1", "X" }, Want: "set only one"},
		{Name: "no token", Mut: func(p *Params) { p.URL, p.ChannelID = "https://x", "c" }, Want: "token: required"},
		{Name: "no channel", Mut: func(p *Params) { p.URL, p.Token = "https://x", "t" }, Want: "channel_id (or channel and team, by name): required"},
		{Name: "no team", Mut: func(p *Params) { p.URL, p.Token, p.Channel = "https://x", "t", "alerts" }, Want: "channel_id (or channel and team, by name): required"},
		{Name: "id and name", Mut: func(p *Params) { p.URL, p.Token, p.ChannelID, p.Channel = "https://x", "t", "c", "alerts" }, Want: "set one"},
		{Name: "bot overrides", Mut: func(p *Params) { p.URL, p.Token, p.ChannelID, p.Username = "https://x", "t", "c", "u" }, Want: "only for an incoming webhook"},
		{Name: "webhook team", Mut: func(p *Params) { p.WebhookURL, p.Team = "https://x/hooks/1", "ops" }, Want: "not both"},
		{Name: "bot by name", Mut: func(p *Params) {
			p.URL, p.TokenEnv, p.Channel, p.Team = "https://mm.example", "MM_TOKEN", "alerts", "ops"
		}, Want: ""},
		{Name: "limit too high", Mut: func(p *Params) { p.WebhookURL, p.MaxMessageChars = "https://x/hooks/1", 20000 }, Want: "max_message_chars"},
		{Name: "webhook ok", Mut: func(p *Params) { p.WebhookURLFile = "/var/run/secrets/medic/mm/webhook_url" }, Want: ""},
		{Name: "bot ok", Mut: func(p *Params) { p.URL, p.TokenEnv, p.ChannelID = "https://mm.example", "MM_TOKEN", "c" }, Want: ""},
	}, "s3cret")
}
