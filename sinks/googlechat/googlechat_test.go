package googlechat

import (
	"context"
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
	for _, format := range []string{FormatCard, FormatText} {
		for name, f := range vendortest.Findings() {
			t.Run(format+"/"+name, func(t *testing.T) {
				m := Render(f, format, chattext.Options{Cluster: "prod-eu", PageURL: vendortest.PageURL}, Defaults().MaxMessageBytes)
				if b := testkit.JSON(t, m); len(b) > 32000 {
					t.Errorf("message of %d bytes", len(b))
				}
				testkit.Golden(t, filepath.Join("testdata", format, name+".golden.json"), testkit.JSON(t, m))
			})
		}
	}
}

func newSink(t *testing.T, url string, format string) (*Sink, *[]time.Duration) {
	t.Helper()
	p := *Defaults()
	p.WebhookURL, p.Format = url, format
	s, err := New(t.Context(), "gchat", p, sinks.Deps{HTTP: &http.Client{Timeout: 5 * time.Second}, Cluster: "prod-eu"})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	s.poster.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	return s, &waits
}

// Every fixture is accepted in both formats; the firing and the resolved
// finding of the alert share a thread; a message sent again (a crash
// before medic recorded the delivery) is refused by Google Chat with 409
// and counted as delivered, so the space shows it once.
func TestSpaceGetsEveryFindingOnceInItsThread(t *testing.T) {
	t.Parallel()
	space := vendortest.GoogleChat(t, "AAAAx1", "k3y", "t0k-s3cret")
	hook := space.URL + "/v1/spaces/AAAAx1/messages?key=k3y&token=t0k-s3cret"
	card, _ := newSink(t, hook, FormatCard)
	text, _ := newSink(t, hook, FormatText)
	text.name = "gchat-text"
	fs := vendortest.Findings()
	for name, f := range fs {
		for _, s := range []*Sink{card, text} {
			if err := s.Send(context.Background(), f); err != nil {
				t.Errorf("%s %s: %v", s.p.Format, name, err)
			}
		}
	}
	if err := card.Send(context.Background(), fs["alert_firing"]); err != nil { // sent again
		t.Fatalf("a repeat refused with 409 is delivered: %v", err)
	}
	if got := space.Accepted(); len(got) != 2*len(fs) {
		t.Fatalf("space accepted %d messages, want %d; refused %v", len(got), 2*len(fs), space.Refused())
	}
	threads := vendortest.GoogleChatThreads(space)
	firing := chattext.ThreadKey(fs["alert_firing"])
	if firing != chattext.ThreadKey(fs["alert_resolved"]) || threads[firing] != 2*len(fs) {
		t.Errorf("threads %v: want every message of the one alert in thread %s", threads, firing)
	}
}

func TestRateLimitAndErrorsKeepTheURL(t *testing.T) {
	t.Parallel()
	space := vendortest.GoogleChat(t, "S", "k", "t0k-s3cret")
	// Google's 429 carries no Retry-After: one second, then another try.
	space.FailNext(vendortest.Failure{Status: http.StatusTooManyRequests, Body: `{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}`},
		vendortest.Failure{Status: http.StatusInternalServerError, Body: `{"error": {"code": 500, "status": "INTERNAL"}}`})
	s, waits := newSink(t, space.URL+"/v1/spaces/S/messages?key=k&token=t0k-s3cret", FormatCard)
	err := s.Send(context.Background(), vendortest.Alert(event.StatusFiring))
	if err == nil || !strings.Contains(err.Error(), "answered 500") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v, want the 500 for the consumer to retry, without the URL", err)
	}
	if len(*waits) != 1 || (*waits)[0] != time.Second {
		t.Errorf("waits %v, want one 1s wait", *waits)
	}
	if err := s.Send(context.Background(), vendortest.Alert(event.StatusFiring)); err != nil {
		t.Fatal(err)
	}
	bad, _ := newSink(t, space.URL+"/v1/spaces/S/messages?key=k&token=other-s3cret", FormatCard)
	if err := bad.Send(context.Background(), vendortest.Alert(event.StatusFiring)); err == nil || !strings.Contains(err.Error(), "UNAUTHENTICATED") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad token: %v", err)
	}
}

func TestParams(t *testing.T) {
	t.Parallel()
	testkit.CheckParams(t, Defaults, (*Params).Validate, []testkit.ParamCase[Params]{
		{Name: "nothing", Mut: func(*Params) {}, Want: "webhook_url: required"},
		{Name: "bad url", Mut: func(p *Params) { p.WebhookURL = "chat.googleapis.com/v1/spaces/x?token=s3cret" }, Want: "not an http(s) URL"},
		{Name: "format", Mut: func(p *Params) { p.WebhookURLEnv, p.Format = "GCHAT", "html" }, Want: "format"},
		{Name: "limit", Mut: func(p *Params) { p.WebhookURLEnv, p.MaxMessageBytes = "GCHAT", 100 }, Want: "max_message_bytes"},
		{Name: "ok", Mut: func(p *Params) { p.WebhookURLFile = "/var/run/secrets/medic/gchat/webhook_url" }, Want: ""},
	}, "s3cret")
}
