package interact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/chatfmt"
	sslack "github.com/medichq/medic/sinks/slack"
)

// Ask states.
const (
	AskRunning = "running"
	AskDone    = "done"
)

// AskState is one finding's Ask AI: at most one runs at a time (a second
// click while it runs does not start another), and the last answer stays
// for the finding page.
type AskState struct {
	Status     string    `json:"status"`
	RequestID  string    `json:"requestId"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Placeholder is the "looking into it…" message the answer replaces.
	Placeholder *SlackTarget      `json:"placeholder,omitempty"`
	Answer      *event.Enrichment `json:"answer,omitempty"`
	// Failed says the answer only explains why there is none.
	Failed bool `json:"failed,omitempty"`
}

func (s *Service) handleJob(ctx context.Context, d *bus.Delivery) error {
	var j Job
	if err := json.Unmarshal(d.Data, &j); err != nil {
		return bus.Permanent(fmt.Errorf("decode interaction job: %w", err))
	}
	switch j.Kind {
	case KindAskAI:
		return s.askAI(ctx, &j)
	case KindMention:
		return s.mention(ctx, &j)
	case KindSilence:
		return s.silence(ctx, &j, d.Attempt)
	case KindMoreLogs:
		return s.moreLogs(ctx, &j)
	case KindApprove:
		return s.approve(ctx, &j)
	}
	return bus.Permanent(fmt.Errorf("unknown interaction job kind %q", j.Kind))
}

func askKey(findingID string) string { return "ask." + keyToken(findingID) }

// AskState returns a finding's Ask AI state, nil when it was never asked.
func (s *Service) AskState(ctx context.Context, findingID string) (*AskState, error) {
	st, _, err := s.getAsk(ctx, askKey(findingID))
	return st, err
}

func (s *Service) getAsk(ctx context.Context, key string) (*AskState, uint64, error) {
	e, err := s.asks.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var st AskState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, 0, err
	}
	return &st, e.Revision(), nil
}

// claimAsk makes j the running ask of its finding. It returns nil, nil when
// another ask is running (the second click), or the state to go on with
// (fresh, or ours after a redelivery).
func (s *Service) claimAsk(ctx context.Context, j *Job) (*AskState, error) {
	key := askKey(j.FindingID)
	for range 5 {
		cur, rev, err := s.getAsk(ctx, key)
		if err != nil {
			return nil, err
		}
		if cur != nil && cur.Status == AskRunning {
			if cur.RequestID == j.RequestID {
				return cur, nil // ours: redelivered after a crash or a failed step
			}
			if s.now().Sub(cur.StartedAt) < s.o.AskTimeout+time.Minute {
				return nil, nil // someone else's, still running
			}
		}
		st := &AskState{Status: AskRunning, RequestID: j.RequestID, StartedAt: s.now().UTC()}
		b, _ := json.Marshal(st)
		if cur == nil {
			_, err = s.asks.Create(ctx, key, b)
		} else {
			_, err = s.asks.Update(ctx, key, b, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // another click got there first: look again
		}
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	return nil, errors.New("ask state kept changing")
}

func (s *Service) putAsk(ctx context.Context, findingID string, st *AskState) error {
	b, _ := json.Marshal(st)
	_, err := s.asks.Put(ctx, askKey(findingID), b)
	return err
}

// askAI answers a finding once at a time, in its thread and for its page.
func (s *Service) askAI(ctx context.Context, j *Job) error {
	st, err := s.claimAsk(ctx, j)
	if err != nil {
		return fmt.Errorf("ask AI for finding %s: %w", j.FindingID, err)
	}
	if st == nil {
		s.logger.Info("Ask AI clicked while an answer is running; not starting another", "finding", j.FindingID)
		if j.Slack != nil && j.Slack.User != "" && s.poster != nil {
			msg := sslack.TextMessage("🤖 medic is already looking into this finding; the answer will appear in the thread.")
			if err := s.poster.Ephemeral(ctx, j.Slack.Channel, j.Slack.User, j.Slack.ThreadTS, msg); err != nil {
				s.logger.Warn("could not tell the user an answer is running", "err", err)
			}
		}
		return nil
	}
	if j.Slack != nil && st.Placeholder == nil && s.poster != nil {
		text := "🤖 Looking into it…"
		if j.Slack.User != "" {
			text += " (asked by <@" + sslack.Escape(j.Slack.User) + ">)"
		}
		ch, ts, err := s.poster.Post(ctx, j.Slack.Channel, sslack.TextMessage(text), j.Slack.ThreadTS)
		if err != nil {
			return err
		}
		st.Placeholder = &SlackTarget{Channel: ch, MessageTS: ts, ThreadTS: j.Slack.ThreadTS}
		if err := s.putAsk(ctx, j.FindingID, st); err != nil {
			return err
		}
	}
	var ans event.Enrichment
	failed := false
	f, err := s.o.Findings.Get(ctx, j.FindingID)
	switch {
	case errors.Is(err, sinks.ErrFindingNotFound):
		ans, failed = note("This finding is no longer stored (medic keeps findings for a while after delivering them); ask from a newer message."), true
	case err != nil:
		return fmt.Errorf("read finding %s: %w", j.FindingID, err)
	default:
		req := rag.Request{Finding: f}
		if f.AskAI != nil {
			req.Model, req.MaxTokens = f.AskAI.Model, f.AskAI.MaxTokens
		}
		ans, failed = s.answer(ctx, req)
	}
	if st.Placeholder != nil {
		msg := sslack.RenderEnrichments("AI explanation", []event.Enrichment{ans}, 30)
		if err := s.poster.Update(ctx, st.Placeholder.Channel, st.Placeholder.MessageTS, msg); err != nil {
			return err // still ours and running: the retry asks again (cached) and updates
		}
	}
	st.Status, st.Answer, st.Failed, st.FinishedAt = AskDone, &ans, failed, s.now().UTC()
	return s.putAsk(ctx, j.FindingID, st)
}

// answer asks the AI; every failure becomes an answer saying why (failed).
func (s *Service) answer(ctx context.Context, req rag.Request) (ans event.Enrichment, failed bool) {
	if s.o.Answerer == nil {
		return rag.UnavailableEnrichment(rag.ErrNotConfigured), true
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.AskTimeout)
	defer cancel()
	a, err := s.o.Answerer.Answer(ctx, req)
	if err != nil {
		if !errors.Is(err, rag.ErrNotConfigured) {
			s.logger.Warn("no AI answer", "err", err)
		}
		return rag.UnavailableEnrichment(err), true
	}
	return a.Enrichment(), false
}

func note(text string) event.Enrichment {
	return event.Enrichment{Title: rag.ExplanationTitle, Source: rag.ExplanationSource, Blocks: []event.Block{event.MarkdownBlock(text)}}
}

var mentionRE = regexp.MustCompile(`<@[A-Z0-9]+(\|[^>]*)?>`)

// mention answers "@medic why is this failing?" in a thread, with the
// thread's finding as context when medic started the thread.
func (s *Service) mention(ctx context.Context, j *Job) error {
	if j.Slack == nil || s.poster == nil {
		return nil
	}
	key := "q." + keyToken(j.RequestID)
	st, _, err := s.getAsk(ctx, key)
	if err != nil {
		return err
	}
	if st != nil && st.Status == AskDone {
		return nil // a redelivery of a question already answered
	}
	if st == nil {
		st = &AskState{Status: AskRunning, RequestID: j.RequestID, StartedAt: s.now().UTC()}
	}
	if st.Placeholder == nil {
		ch, ts, err := s.poster.Post(ctx, j.Slack.Channel, sslack.TextMessage("🤖 Looking into it…"), j.Slack.ThreadTS)
		if err != nil {
			return err
		}
		st.Placeholder = &SlackTarget{Channel: ch, MessageTS: ts, ThreadTS: j.Slack.ThreadTS}
		b, _ := json.Marshal(st)
		if _, err := s.asks.Put(ctx, key, b); err != nil {
			return err
		}
	}
	question := strings.TrimSpace(mentionRE.ReplaceAllString(j.Question, ""))
	req := rag.Request{Question: question}
	if te, ok, err := sslack.LookupThread(ctx, s.threads, j.Slack.Channel, j.Slack.ThreadTS); err != nil {
		return err
	} else if ok {
		f, err := s.o.Findings.Get(ctx, te.FindingID)
		switch {
		case err == nil:
			fc := *f
			if question != "" {
				fc.Description = "Question from the on-call engineer: " + question + "\n\n" + f.Description
			}
			req = rag.Request{Finding: &fc}
		case !errors.Is(err, sinks.ErrFindingNotFound):
			return err
		}
	}
	var ans event.Enrichment
	fu, conversational := s.o.Answerer.(FollowUps)
	switch {
	case req.Finding == nil && question == "":
		ans = note("Ask me something in the thread of a finding, for example \"@medic why is this failing?\".")
	case req.Finding != nil && conversational && question != "":
		if ans, err = s.followUp(ctx, fu, req.Finding.ID, question); err != nil {
			return err
		}
	default:
		ans, _ = s.answer(ctx, req)
	}
	msg := sslack.RenderEnrichments("AI explanation", []event.Enrichment{ans}, 30)
	if err := s.poster.Update(ctx, st.Placeholder.Channel, st.Placeholder.MessageTS, msg); err != nil {
		return err
	}
	st.Status, st.Answer, st.FinishedAt = AskDone, &ans, s.now().UTC()
	b, _ := json.Marshal(st)
	_, err = s.asks.Put(ctx, key, b)
	return err
}

// FollowUps is an Answerer that keeps a conversation per finding (the
// investigation, package agent): a mention in a finding's thread continues
// it, with the thread's earlier questions and answers and the finding's
// evidence. history is opaque here: what FollowUp returned last time.
type FollowUps interface {
	FollowUp(ctx context.Context, f *event.Finding, history []byte, question string) (rag.Answer, []byte, error)
}

func convKey(findingID string) string { return "conv." + keyToken(findingID) }

// followUp answers a question in a finding's thread and keeps the
// conversation (in the medic_ai_asks bucket, with its TTL). Two questions
// at once in one thread each continue the same earlier conversation; the
// later one's is kept.
func (s *Service) followUp(ctx context.Context, fu FollowUps, findingID, question string) (event.Enrichment, error) {
	f, err := s.o.Findings.Get(ctx, findingID)
	if err != nil {
		return event.Enrichment{}, err
	}
	var history []byte
	switch e, err := s.asks.Get(ctx, convKey(findingID)); {
	case err == nil:
		history = e.Value()
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return event.Enrichment{}, err
	}
	actx, cancel := context.WithTimeout(ctx, s.o.AskTimeout)
	defer cancel()
	a, conv, err := fu.FollowUp(actx, f, history, question)
	if err != nil {
		if !errors.Is(err, rag.ErrNotConfigured) {
			s.logger.Warn("no AI answer to a follow-up", "finding", findingID, "err", err)
		}
		return rag.UnavailableEnrichment(err), nil
	}
	if conv != nil {
		if _, err := s.asks.Put(ctx, convKey(findingID), conv); err != nil {
			s.logger.Warn("the thread's conversation could not be kept; the next question starts afresh", "finding", findingID, "err", err)
		}
	}
	return a.Enrichment(), nil
}

// moreLogs posts the last lines of the finding's logs in its thread.
func (s *Service) moreLogs(ctx context.Context, j *Job) error {
	if j.Slack == nil || s.poster == nil {
		return nil
	}
	done := "logs." + keyToken(j.FindingID) + "." + keyToken(j.RequestID)
	if _, err := s.asks.Get(ctx, done); err == nil {
		return nil
	}
	f, err := s.o.Findings.Get(ctx, j.FindingID)
	var msg sslack.Message
	switch {
	case errors.Is(err, sinks.ErrFindingNotFound):
		msg = sslack.TextMessage("This finding is no longer stored, so its logs are gone from medic.")
	case err != nil:
		return err
	default:
		var logs []event.Enrichment
		for _, e := range f.Enrichments {
			for _, b := range e.Blocks {
				if b.Kind == event.BlockLog && b.Log != nil && strings.TrimSpace(b.Log.Text) != "" {
					logs = append(logs, event.Enrichment{Title: "📜 " + e.Title, Blocks: []event.Block{b}})
				}
			}
		}
		if len(logs) == 0 {
			msg = sslack.TextMessage("No logs are stored with this finding.")
		} else {
			msg = sslack.LogsMessage("More logs", logs, s.o.MoreLogLines)
		}
	}
	if _, _, err := s.poster.Post(ctx, j.Slack.Channel, msg, j.Slack.ThreadTS); err != nil {
		return err
	}
	_, _ = s.asks.Put(ctx, done, []byte("1"))
	return nil
}

// silence creates an Alertmanager silence for the finding's alert and
// says so in the thread.
func (s *Service) silence(ctx context.Context, j *Job, attempt int) error {
	key := "silence." + keyToken(j.FindingID) + "." + keyToken(j.RequestID)
	var rec struct {
		ID, URL string
		Ends    time.Time
		Replied bool
	}
	if e, err := s.asks.Get(ctx, key); err == nil {
		_ = json.Unmarshal(e.Value(), &rec)
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	if rec.Replied {
		return nil
	}
	reply := func(text string) error {
		if j.Slack == nil || s.poster == nil {
			return nil
		}
		_, _, err := s.poster.Post(ctx, j.Slack.Channel, sslack.TextMessage(text), j.Slack.ThreadTS)
		return err
	}
	if rec.ID == "" {
		f, err := s.o.Findings.Get(ctx, j.FindingID)
		if errors.Is(err, sinks.ErrFindingNotFound) {
			return reply("⚠ This finding is no longer stored; silence the alert in Alertmanager instead.")
		}
		if err != nil {
			return err
		}
		if len(f.Event.Labels) == 0 {
			return reply("⚠ This finding has no alert labels to silence.")
		}
		amURL := s.silenceTarget(f.Event.ExternalURL)
		if amURL == "" {
			return reply(cannotSilence(&f.Event))
		}
		who := "someone"
		if j.Slack != nil {
			who = firstNonEmpty(j.Slack.UserName, j.Slack.User)
		}
		ends := s.now().Add(j.Duration)
		id, err := s.createSilence(ctx, amURL, f.Event.Labels, s.now(), ends,
			"medic (Slack: "+who+")",
			fmt.Sprintf("Silenced for %s from Slack by %s: %s (medic finding %s)", chatfmt.Duration(j.Duration), who, f.Title, f.ID))
		if err != nil {
			if attempt < 3 {
				return err // the bus retries with back-off
			}
			s.logger.Error("could not create a silence", "finding", f.ID, "err", err)
			return reply("⚠ Could not create the silence: " + sslack.Escape(err.Error()))
		}
		rec.ID, rec.Ends = id, ends
		rec.URL = strings.TrimSuffix(amURL, "/") + "/#/silences/" + id
		b, _ := json.Marshal(rec)
		if _, err := s.asks.Put(ctx, key, b); err != nil {
			return err
		}
	}
	user := "Someone"
	if j.Slack != nil && j.Slack.User != "" {
		user = "<@" + sslack.Escape(j.Slack.User) + ">"
	}
	text := fmt.Sprintf("🔕 %s silenced this alert for %s, until %s UTC · %s", user, chatfmt.Duration(j.Duration),
		rec.Ends.UTC().Format("Jan 2 15:04"), sslack.Link(rec.URL, "silence "+rec.ID))
	if err := reply(text); err != nil {
		return err
	}
	rec.Replied = true
	b, _ := json.Marshal(rec)
	_, _ = s.asks.Put(ctx, key, b)
	return nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
