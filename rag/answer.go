package rag

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/medichq/medic/event"
)

// Request asks for an answer about a finding (ask_ai, the Slack button) or a
// free question (medic ask). Exactly one of Finding and Question is set.
type Request struct {
	Finding  *event.Finding
	Question string
	// Model and MaxTokens override the configured ones when set.
	Model     string
	MaxTokens int
	// OnDelta, when set, receives the answer's text as it streams in (a
	// cached answer arrives in one piece).
	OnDelta func(string) error
}

// Answer is the model's explanation with what it was based on.
type Answer struct {
	Text string `json:"text"`
	// Sections are the four parts of a finding's explanation when the model
	// kept to the format; nil otherwise.
	Sections  []Section  `json:"sections,omitempty"`
	Citations []Citation `json:"citations,omitempty"`
	// Redacted counts the secrets removed from the prompt, by kind.
	Redacted  Redaction `json:"redacted,omitempty"`
	Model     string    `json:"model"`
	KBVersion string    `json:"kbVersion,omitempty"`
	// Trimmed says evidence was cut to fit the token budget.
	Trimmed      bool      `json:"trimmed,omitempty"`
	PromptTokens int       `json:"promptTokens,omitempty"`
	OutputTokens int       `json:"outputTokens,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	// Cached is set on answers served from the cache.
	Cached bool `json:"-"`
}

// Answerer is the one "answer function" every AI feature calls: the ask_ai
// action, the Slack and Teams buttons, medic ask. It returns
// ErrNotConfigured when no chat model is configured.
type Answerer interface {
	Answer(ctx context.Context, req Request) (Answer, error)
}

// Service is the Answerer: retrieval, a prompt within the token budget,
// redaction, the answer cache and the chat model. A Service with a nil Chat
// answers ErrNotConfigured; its Retriever still serves searches.
type Service struct {
	Retriever *Retriever
	Chat      Chat
	Cache     Cache
	Redactor  *Redactor
	// TokenBudget bounds the prompt (system and user message), in tokens.
	TokenBudget int
	// MaxTokens bounds the answer when the request does not.
	MaxTokens int
	// TopK is how many runbooks a finding's prompt cites; PerSource how
	// many chunks of each.
	TopK, PerSource int
	Logger          *slog.Logger
	Now             func() time.Time
}

// Defaults used when a Service field is zero.
const (
	DefaultTokenBudget = 6000
	DefaultMaxTokens   = 800
	DefaultTopK        = 3
	DefaultPerSource   = 3
)

// Configured reports whether a chat model is set.
func (s *Service) Configured() bool { return s != nil && s.Chat != nil }

// Answer implements Answerer.
func (s *Service) Answer(ctx context.Context, req Request) (Answer, error) {
	if !s.Configured() {
		return Answer{}, ErrNotConfigured
	}
	if req.Finding == nil && strings.TrimSpace(req.Question) == "" {
		return Answer{}, errors.New("nothing to answer: no finding and no question")
	}
	budget := orDefault(s.TokenBudget, DefaultTokenBudget)
	maxTokens := orDefault(req.MaxTokens, orDefault(s.MaxTokens, DefaultMaxTokens))
	model := req.Model
	if model == "" {
		model = s.Chat.ChatModel()
	}

	var (
		hits []Hit
		err  error
		p    prompt
	)
	topK, perSource := orDefault(s.TopK, DefaultTopK), orDefault(s.PerSource, DefaultPerSource)
	if req.Finding != nil {
		hits, err = s.Retriever.ForFinding(ctx, req.Finding, topK, perSource)
	} else {
		hits, err = s.Retriever.Search(ctx, req.Question, topK, perSource)
	}
	if err != nil {
		// An answer without runbooks beats none.
		s.logger().Warn("knowledge-base retrieval failed; answering without runbooks", "err", err)
		hits = nil
	}
	if req.Finding != nil {
		p = buildFindingPrompt(req.Finding, hits, budget)
	} else {
		p = buildQuestionPrompt(req.Question, hits, budget)
	}

	redacted := Redaction{}
	msgs := make([]Message, len(p.messages))
	for i, m := range p.messages {
		clean, found := s.Redactor.Redact(m.Content)
		redacted.Add(found)
		msgs[i] = Message{Role: m.Role, Content: clean}
	}

	kbVersion := ""
	if s.Retriever != nil && s.Retriever.Store != nil {
		if kbVersion, err = s.Retriever.Store.Version(ctx); err != nil {
			s.logger().Warn("knowledge-base version unknown; answer not cached", "err", err)
		}
	}
	key := CacheKey(msgs, model, maxTokens, kbVersion)
	if s.Cache != nil && kbVersion != "" {
		if a, ok, err := s.Cache.Get(ctx, key); err != nil {
			s.logger().Warn("answer cache read failed", "err", err)
		} else if ok {
			a.Cached = true
			if req.OnDelta != nil {
				if err := req.OnDelta(a.Text); err != nil {
					return Answer{}, err
				}
			}
			return a, nil
		}
	}

	creq := ChatRequest{Messages: msgs, Model: model, MaxTokens: maxTokens}
	var resp ChatResponse
	if req.OnDelta != nil {
		resp, err = s.Chat.Stream(ctx, creq, req.OnDelta)
	} else {
		resp, err = s.Chat.Complete(ctx, creq)
	}
	if err != nil {
		return Answer{}, err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	a := Answer{
		Text:         strings.TrimSpace(resp.Content),
		Citations:    p.citations,
		Redacted:     redacted,
		Model:        firstNonEmpty(resp.Model, model),
		KBVersion:    kbVersion,
		Trimmed:      p.trimmed,
		PromptTokens: resp.PromptTokens,
		OutputTokens: resp.OutputTokens,
		CreatedAt:    now().UTC(),
	}
	if req.Finding != nil {
		a.Sections = ParseSections(a.Text)
	}
	if s.Cache != nil && kbVersion != "" && a.Text != "" {
		if err := s.Cache.Put(ctx, key, a); err != nil {
			s.logger().Warn("answer cache write failed", "err", err)
		}
	}
	return a, nil
}

// CacheKey identifies an answer: the evidence as sent (after redaction), the
// model, the answer limit and the knowledge-base version.
func CacheKey(msgs []Message, model string, maxTokens int, kbVersion string) string {
	h := sha256.New()
	for _, m := range msgs {
		h.Write([]byte(m.Role))
		h.Write([]byte{0})
		h.Write([]byte(m.Content))
		h.Write([]byte{0})
	}
	evidence := h.Sum(nil)
	k := sha256.New()
	fmt.Fprintf(k, "%x\x00%s\x00%d\x00%s", evidence, model, maxTokens, kbVersion)
	return hex.EncodeToString(k.Sum(nil))
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// Enrichment titles and sources used by the AI actions and the buttons.
const (
	ExplanationTitle  = "AI explanation"
	ExplanationSource = "ask_ai"
)

// Enrichment renders an answer for sinks: the explanation, the numbered
// sources as links, and a footer with the model, what was redacted and
// whether it came from the cache.
func (a Answer) Enrichment() event.Enrichment {
	blocks := []event.Block{event.MarkdownBlock(a.Text)}
	if len(a.Citations) > 0 {
		var links []event.Link
		var plain []string
		for _, c := range a.Citations {
			if c.URL != "" {
				links = append(links, event.Link{Label: c.Label(), URL: c.URL})
			} else {
				plain = append(plain, c.Label()+" ("+c.Source+")")
			}
		}
		if len(links) > 0 {
			blocks = append(blocks, event.LinksBlock(links...))
		}
		if len(plain) > 0 {
			blocks = append(blocks, event.MarkdownBlock("Sources:\n"+strings.Join(plain, "\n")))
		}
	}
	footer := []string{"model " + a.Model}
	if n := a.Redacted.Total(); n > 0 {
		footer = append(footer, a.Redacted.String()+" before sending")
	} else {
		footer = append(footer, "nothing redacted")
	}
	if a.Trimmed {
		footer = append(footer, "evidence trimmed to the token budget")
	}
	if a.Cached {
		footer = append(footer, "cached answer")
	}
	blocks = append(blocks, event.MarkdownBlock("_"+strings.Join(footer, " · ")+"_"))
	return event.Enrichment{Title: ExplanationTitle, Source: ExplanationSource, Blocks: blocks}
}

// UnavailableEnrichment is what a finding carries when the model could not
// answer: the finding is delivered, the AI part says why it is missing.
func UnavailableEnrichment(err error) event.Enrichment {
	msg := "AI unavailable: " + err.Error()
	if errors.Is(err, ErrNotConfigured) {
		msg = ErrNotConfigured.Error() + ": set ai.chat_model (and ai.base_url for Ollama or another OpenAI-compatible server) to get explanations."
	}
	return event.Enrichment{Title: ExplanationTitle, Source: ExplanationSource, Blocks: []event.Block{event.MarkdownBlock(msg)}}
}
