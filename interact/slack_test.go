package interact

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	sslack "github.com/medichq/medic/sinks/slack"
	"github.com/medichq/medic/sinks/slack/slackrec"
)

const wait = 20 * time.Second

func TestSignedClickAnswersInThread(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := alertFinding("f1")
	msg := h.deliver(f)
	h.click(msg, sslack.ActionAskAI, f.ID, "1700000100.000001")

	h.slack.Wait(t, wait, "the answer replacing the placeholder", func(s *slackrec.Server) bool {
		for _, u := range s.Calls(slackrec.Update) {
			if strings.Contains(u.BlocksJSON(), "cannot reach its database") {
				return true
			}
		}
		return false
	})
	posts := h.threadPosts(msg.TS)
	if len(posts) != 1 || !strings.Contains(posts[0].BlocksJSON(), "Looking into it") || !strings.Contains(posts[0].BlocksJSON(), "U0ONCALL") {
		t.Fatalf("want one \"looking into it\" placeholder in the thread, got %d posts", len(posts))
	}
	var answer slackrec.Call
	for _, u := range h.slack.Calls(slackrec.Update) {
		if u.TS == posts[0].TS {
			answer = u
		}
	}
	if answer.Method == "" {
		t.Fatal("the placeholder was not edited")
	}
	if txt := text(answer); !strings.Contains(txt, "&lt;db-primary&gt;") || !strings.Contains(txt, "<https://runbooks.example/kubepodcrashlooping|[1] KubePodCrashLooping>") {
		t.Errorf("answer not rendered escaped with its sources: %s", txt)
	}
	calls := h.ai.calls()
	if len(calls) != 1 || calls[0].Finding == nil || calls[0].Finding.ID != f.ID {
		t.Fatalf("the AI was asked %d times / about the wrong finding", len(calls))
	}
	if st := h.waitAsk(f.ID); st.Answer == nil || st.Failed {
		t.Fatalf("ask state %+v", st)
	}
}

func TestAINotConfiguredSaysSo(t *testing.T) {
	h := newHarness(t, harnessOpts{noAI: true})
	f := alertFinding("f2")
	msg := h.deliver(f)
	h.click(msg, sslack.ActionAskAI, f.ID, "1700000100.000002")
	h.slack.Wait(t, wait, "an \"AI is not configured\" answer", func(s *slackrec.Server) bool {
		for _, u := range s.Calls(slackrec.Update) {
			if strings.Contains(u.BlocksJSON(), "AI is not configured") && strings.Contains(u.BlocksJSON(), "ai.chat_model") {
				return true
			}
		}
		return false
	})
}

func TestRejectedRequestsDoNothing(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := alertFinding("f3")
	msg := h.deliver(f)
	body := formBody(t, h.clickPayload(msg, sslack.ActionAskAI, f.ID, "1700000100.000003"))
	target := h.srv.URL + "/slack/interactions"

	cases := map[string]*http.Request{
		"bad signature":    signed(t, target, body, time.Now(), "not-the-secret"),
		"stale timestamp":  signed(t, target, body, time.Now().Add(-6*time.Minute), signingSecret),
		"future timestamp": signed(t, target, body, time.Now().Add(6*time.Minute), signingSecret),
		"no signature": func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
			return r
		}(),
		"tampered body": func() *http.Request {
			r := signed(t, target, body, time.Now(), signingSecret)
			r2 := signed(t, target, append(body, 'x'), time.Now(), signingSecret)
			r2.Header = r.Header
			return r2
		}(),
		"signature mangled": func() *http.Request {
			r := signed(t, target, body, time.Now(), signingSecret)
			r.Header.Set("X-Slack-Signature", "v0=zz")
			return r
		}(),
	}
	for name, req := range cases {
		if st, _ := do(t, req); st != http.StatusUnauthorized {
			t.Errorf("%s: answered %d, want 401", name, st)
		}
	}
	// A valid request is accepted once; the same request again is a replay.
	valid := signed(t, target, body, time.Now(), signingSecret)
	replay := valid.Clone(context.Background())
	replay.Body = http.NoBody
	replay, _ = http.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
	replay.Header = valid.Header.Clone()
	if st, _ := do(t, valid); st != http.StatusOK {
		t.Fatalf("valid request answered %d", st)
	}
	if st, _ := do(t, replay); st != http.StatusUnauthorized {
		t.Errorf("replay answered %d, want 401", st)
	}
	h.slack.Wait(t, wait, "the one accepted click answered", func(s *slackrec.Server) bool { return len(s.Calls(slackrec.Update)) == 1 })
	if n := h.streamMessages(); n != 1 {
		t.Errorf("%d jobs published, want only the valid request's", n)
	}
	if n := len(h.threadPosts(msg.TS)); n != 1 {
		t.Errorf("%d posts in the thread, want 1", n)
	}
	if n := len(h.ai.calls()); n != 1 {
		t.Errorf("the AI was asked %d times, want 1", n)
	}
}

func TestSecondClickWhileAnswerRunsDoesNotStartAnother(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.ai.hold, h.ai.started = make(chan struct{}), make(chan struct{}, 1)
	f := alertFinding("f4")
	msg := h.deliver(f)
	h.click(msg, sslack.ActionAskAI, f.ID, "1700000100.000004")
	select {
	case <-h.ai.started:
	case <-time.After(wait):
		t.Fatal("the first click never reached the AI")
	}
	h.click(msg, sslack.ActionAskAI, f.ID, "1700000100.000005") // a second user, or an impatient one
	h.slack.Wait(t, wait, "the second clicker told an answer is running", func(s *slackrec.Server) bool {
		return len(s.Calls(slackrec.PostEphemeral)) == 1
	})
	close(h.ai.hold)
	h.slack.Wait(t, wait, "the answer", func(s *slackrec.Server) bool { return len(s.Calls(slackrec.Update)) >= 1 })
	if n := len(h.ai.calls()); n != 1 {
		t.Errorf("the AI was asked %d times, want 1", n)
	}
	if n := len(h.threadPosts(msg.TS)); n != 1 {
		t.Errorf("%d placeholders, want 1", n)
	}
	eph := h.slack.Calls(slackrec.PostEphemeral)[0]
	if !strings.Contains(eph.BlocksJSON(), "already looking into this finding") || eph.Form.Get("user") != "U0ONCALL" {
		t.Errorf("ephemeral %s to %q", eph.Blocks, eph.Form.Get("user"))
	}
}

func TestShowMoreLogs(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := alertFinding("f5")
	msg := h.deliver(f)
	h.click(msg, sslack.ActionMoreLogs, f.ID, "1700000100.000006")
	h.slack.Wait(t, wait, "more logs in the thread", func(s *slackrec.Server) bool {
		for _, p := range h.threadPosts(msg.TS) {
			if strings.Contains(p.BlocksJSON(), "line 150: dial tcp") && strings.Contains(p.BlocksJSON(), "line 51: dial tcp") {
				return true
			}
		}
		return false
	})
}

func TestMentionInThreadAsksAboutItsFinding(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := alertFinding("f6")
	msg := h.deliver(f)
	ev := map[string]any{
		"type": "event_callback", "event_id": "Ev0MENTION1", "team_id": "T0TEAM",
		"event": map[string]any{"type": "app_mention", "user": "U0ONCALL", "text": "<@U0MEDIC> why is this failing?",
			"ts": "1700000200.000001", "thread_ts": msg.TS, "channel": h.slack.ChannelID("#alerts")},
	}
	body, _ := json.Marshal(ev)
	for range 2 { // Slack retries an event it thinks was lost: answered once
		req := signed(t, h.srv.URL+"/slack/events", body, time.Now(), signingSecret)
		req.Header.Set("Content-Type", "application/json")
		if st, b := do(t, req); st != http.StatusOK {
			t.Fatalf("event answered %d %s", st, b)
		}
		time.Sleep(time.Second) // a new timestamp, so the retry is not a replay
	}
	h.slack.Wait(t, wait, "the mention answered", func(s *slackrec.Server) bool {
		return len(s.Calls(slackrec.Update)) == 1 && strings.Contains(s.Calls(slackrec.Update)[0].BlocksJSON(), "cannot reach its database")
	})
	calls := h.ai.calls()
	if len(calls) != 1 || calls[0].Finding == nil || calls[0].Finding.ID != f.ID {
		t.Fatalf("the AI was not asked about the thread's finding: %+v", calls)
	}
	if !strings.Contains(calls[0].Finding.Description, "why is this failing?") || strings.Contains(calls[0].Finding.Description, "U0MEDIC") {
		t.Errorf("the question is not in the prompt's finding: %q", calls[0].Finding.Description)
	}
	if n := len(h.threadPosts(msg.TS)); n != 1 {
		t.Errorf("%d placeholders in the thread, want 1", n)
	}

	challenge := []byte(`{"type":"url_verification","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}`)
	req := signed(t, h.srv.URL+"/slack/events", challenge, time.Now(), signingSecret)
	req.Header.Set("Content-Type", "application/json")
	if st, b := do(t, req); st != http.StatusOK || !strings.Contains(b, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P") {
		t.Errorf("url_verification: %d %s", st, b)
	}
}

func TestSocketModeInteractiveEnvelopeIsAckedAndHandled(t *testing.T) {
	h := newHarness(t, harnessOpts{socketMode: true})
	f := alertFinding("f7")
	msg := h.deliver(f)
	h.slack.Wait(t, wait, "a Socket Mode connection", func(s *slackrec.Server) bool { return s.SocketConnections() > 0 })
	h.slack.SendEnvelope(t, "env-0001", "interactive", h.clickPayload(msg, sslack.ActionAskAI, f.ID, "1700000300.000001"))
	h.slack.Wait(t, wait, "the envelope acknowledged", func(s *slackrec.Server) bool {
		for _, id := range s.Acks() {
			if id == "env-0001" {
				return true
			}
		}
		return false
	})
	h.slack.Wait(t, wait, "the answer in the thread", func(s *slackrec.Server) bool {
		return len(s.Calls(slackrec.Update)) == 1 && strings.Contains(s.Calls(slackrec.Update)[0].BlocksJSON(), "cannot reach its database")
	})
	// apps.connections.open was called with the app-level token, not the bot token.
	for _, c := range h.slack.Calls("socket") {
		if strings.Contains(c.Header.Get("Authorization"), botToken) {
			t.Error("the bot token was used for Socket Mode")
		}
	}
}

func TestClickWithForeignValueIsIgnored(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	msg := h.deliver(alertFinding("f8"))
	h.click(msg, sslack.ActionAskAI, "../../etc/passwd", "1700000100.000009")
	h.click(msg, "someone_elses_button", "f8", "1700000100.000010")
	if n := h.streamMessages(); n != 0 {
		t.Errorf("%d jobs published for clicks that are not medic's", n)
	}
}
