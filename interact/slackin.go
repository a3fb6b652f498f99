package interact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	goslack "github.com/slack-go/slack"

	sslack "github.com/medichq/medic/sinks/slack"
)

const maxSlackBody = 1 << 20

// rejectSlack answers a request that does not prove it came from Slack:
// 401, and nothing else happens.
func (s *Service) rejectSlack(w http.ResponseWriter, r *http.Request, why string) {
	s.logger.Warn("rejected a Slack request", "path", r.URL.Path, "reason", why, "remote", r.RemoteAddr)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

// verified reads and checks a request from Slack: the v0 signature over
// the timestamp and body with the signing secret, a timestamp within five
// minutes, and that this exact request was not seen before (a replay).
func (s *Service) verified(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if !s.SlackEnabled() {
		http.NotFound(w, r)
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSlackBody+1))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return nil, false
	}
	if len(body) > maxSlackBody {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	sv, err := goslack.NewSecretsVerifier(r.Header, s.o.Slack.SigningSecret)
	if err != nil {
		s.rejectSlack(w, r, verifyReason(err))
		return nil, false
	}
	_, _ = sv.Write(body)
	if err := sv.Ensure(); err != nil {
		s.rejectSlack(w, r, "bad signature")
		return nil, false
	}
	sum := sha256.Sum256([]byte(r.Header.Get("X-Slack-Request-Timestamp") + ":" + r.Header.Get("X-Slack-Signature")))
	fresh, err := createOnce(r.Context(), s.replay, "sig."+hex.EncodeToString(sum[:16]), []byte(time.Now().UTC().Format(time.RFC3339)))
	if err != nil {
		s.logger.Error("could not record a Slack request for replay protection", "err", err)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return nil, false
	}
	if !fresh {
		s.rejectSlack(w, r, "replayed request")
		return nil, false
	}
	return body, true
}

func verifyReason(err error) string {
	switch {
	case errors.Is(err, goslack.ErrExpiredTimestamp):
		return "timestamp outside the 5-minute window"
	case errors.Is(err, goslack.ErrMissingHeaders):
		return "missing signature headers"
	}
	return "bad signature"
}

// InteractionsHandler serves POST /slack/interactions: a button click is
// verified, published as a job and answered with 200 at once (Slack waits
// 3 seconds); the work happens in the workers.
func (s *Service) InteractionsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := s.verified(w, r)
		if !ok {
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("payload") == "" {
			http.Error(w, "no payload", http.StatusBadRequest)
			return
		}
		var cb goslack.InteractionCallback
		if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		if err := s.dispatchInteraction(r.Context(), &cb); err != nil {
			s.logger.Error("could not queue a Slack interaction", "err", err)
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// dispatchInteraction turns medic's button clicks into jobs.
func (s *Service) dispatchInteraction(ctx context.Context, cb *goslack.InteractionCallback) error {
	if cb.Type != goslack.InteractionTypeBlockActions {
		return nil
	}
	channel := firstNonEmpty(cb.Container.ChannelID, cb.Channel.ID)
	msgTS := firstNonEmpty(cb.Container.MessageTs, cb.Message.Timestamp)
	thread := firstNonEmpty(cb.Container.ThreadTs, cb.Message.ThreadTimestamp, msgTS)
	var errs []error
	for _, a := range cb.ActionCallback.BlockActions {
		j := Job{
			FindingID: a.Value, Origin: OriginSlack, At: s.now().UTC(),
			RequestID: firstNonEmpty(a.ActionTs, cb.ActionTs, cb.TriggerID),
			Slack:     &SlackTarget{Channel: channel, MessageTS: msgTS, ThreadTS: thread, User: cb.User.ID, UserName: firstNonEmpty(cb.User.Name, cb.User.Username)},
		}
		switch a.ActionID {
		case sslack.ActionAskAI:
			j.Kind = KindAskAI
		case sslack.ActionSilence1h:
			j.Kind, j.Duration = KindSilence, time.Hour
		case sslack.ActionSilence4h:
			j.Kind, j.Duration = KindSilence, 4*time.Hour
		case sslack.ActionMoreLogs:
			j.Kind = KindMoreLogs
		default:
			id, ok := approvalAction(a.ActionID)
			if !ok {
				continue // not one of medic's buttons
			}
			j.Kind, j.Proposal = KindApprove, id
		}
		if !validID(j.FindingID) || channel == "" || j.RequestID == "" {
			s.logger.Warn("ignored a click without a usable finding reference", "action", a.ActionID)
			continue
		}
		if err := publish(ctx, s.js, j); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// eventsPayload is the part of an Events API request medic reads.
type eventsPayload struct {
	Type      string `json:"type"`
	Challenge string `json:"challenge"`
	EventID   string `json:"event_id"`
	Event     struct {
		Type     string `json:"type"`
		User     string `json:"user"`
		BotID    string `json:"bot_id"`
		Text     string `json:"text"`
		TS       string `json:"ts"`
		ThreadTS string `json:"thread_ts"`
		Channel  string `json:"channel"`
	} `json:"event"`
}

// EventsHandler serves POST /slack/events: the URL verification and
// app_mention events ("@medic why is this failing?" in a thread).
func (s *Service) EventsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := s.verified(w, r)
		if !ok {
			return
		}
		var p eventsPayload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		if p.Type == "url_verification" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"challenge": p.Challenge})
			return
		}
		if err := s.dispatchEvent(r.Context(), &p); err != nil {
			s.logger.Error("could not queue a Slack event", "err", err)
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// dispatchEvent turns an app mention into a job, once per event ID (Slack
// retries events it thinks were not received).
func (s *Service) dispatchEvent(ctx context.Context, p *eventsPayload) error {
	ev := &p.Event
	if p.Type != "event_callback" || ev.Type != "app_mention" || ev.BotID != "" || p.EventID == "" {
		return nil
	}
	fresh, err := createOnce(ctx, s.replay, "event."+keyToken(p.EventID), []byte("1"))
	if err != nil || !fresh {
		return err
	}
	return publish(ctx, s.js, Job{
		Kind: KindMention, Origin: OriginSlack, RequestID: p.EventID, Question: strings.TrimSpace(ev.Text), At: s.now().UTC(),
		Slack: &SlackTarget{Channel: ev.Channel, MessageTS: ev.TS, ThreadTS: firstNonEmpty(ev.ThreadTS, ev.TS), User: ev.User},
	})
}
