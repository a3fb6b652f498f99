package interact

import (
	"context"
	"strings"
	"testing"
	"time"

	sslack "github.com/medichq/medic/sinks/slack"
	"github.com/medichq/medic/sinks/slack/slackrec"
	"github.com/medichq/medic/test/realam"
)

func TestSilenceButtonCreatesSilenceInRealAlertmanager(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the real Alertmanager (test/realam)")
	}
	am := realam.Start(t, "http://127.0.0.1:9/unused")
	h := newHarness(t, harnessOpts{})
	f := alertFinding("s1")
	f.Event.ExternalURL = am.URL() // no alertmanager.url: the alert's own Alertmanager
	msg := h.deliver(f)
	if !strings.Contains(msg.BlocksJSON(), sslack.ActionSilence4h) {
		t.Fatal("no silence buttons on a firing alert")
	}
	h.click(msg, sslack.ActionSilence4h, f.ID, "1700000400.000001")

	h.slack.Wait(t, wait, "the silence confirmed in the thread", func(s *slackrec.Server) bool {
		for _, p := range h.threadPosts(msg.TS) {
			if strings.Contains(text(p), "silenced this alert for 4h") {
				return true
			}
		}
		return false
	})
	sils, err := am.Silences(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(sils) != 1 {
		t.Fatalf("%d silences in Alertmanager, want 1", len(sils))
	}
	s := sils[0]
	got := map[string]string{}
	for _, m := range s.Matchers {
		if !*m.IsEqual || *m.IsRegex {
			t.Errorf("matcher %s is not an exact match", *m.Name)
		}
		got[*m.Name] = *m.Value
	}
	for k, v := range f.Event.Labels {
		if got[k] != v {
			t.Errorf("silence matcher %s=%q, want %q", k, got[k], v)
		}
	}
	if *s.Status.State != "active" || !strings.Contains(*s.CreatedBy, "alice") || !strings.Contains(*s.Comment, f.ID) {
		t.Errorf("silence %s by %q (%q)", *s.Status.State, *s.CreatedBy, *s.Comment)
	}
	if d := time.Time(*s.EndsAt).Sub(time.Time(*s.StartsAt)); d < 4*time.Hour-time.Minute || d > 4*time.Hour+time.Minute {
		t.Errorf("silence lasts %s, want 4h", d)
	}
	reply := h.threadPosts(msg.TS)[0]
	if !strings.Contains(text(reply), am.URL()+"/#/silences/"+*s.ID) {
		t.Errorf("reply does not link the silence: %s", text(reply))
	}
}

func TestSilenceWithoutAlertmanagerSaysSo(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := alertFinding("s2") // no externalURL, no alertmanager.url
	msg := h.deliver(f)
	h.click(msg, sslack.ActionSilence1h, f.ID, "1700000400.000002")
	h.slack.Wait(t, wait, "an explanation in the thread", func(s *slackrec.Server) bool {
		for _, p := range h.threadPosts(msg.TS) {
			if strings.Contains(text(p), "set alertmanager.url") {
				return true
			}
		}
		return false
	})
}
