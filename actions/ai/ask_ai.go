package ai

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/rag"
)

// AskParams are ask_ai's parameters.
type AskParams struct {
	// Mode auto explains at once (an "AI explanation" enrichment); button
	// leaves it to the "Ask AI" button of the Slack and Teams sinks.
	Mode string `yaml:"mode"`
	// Model overrides ai.chat_model for this playbook.
	Model string `yaml:"model"`
	// MaxTokens bounds the answer (default ai.max_tokens).
	MaxTokens int `yaml:"max_tokens"`
	// Runbooks also attaches the knowledge base's runbooks for the finding
	// (runbook_enricher's, top 3), unless a playbook already did.
	Runbooks bool `yaml:"runbooks"`
	// WhenConfigured makes the action do nothing when no chat model is
	// configured: the built-in playbooks offer the AI (and its runbooks)
	// only where it exists.
	WhenConfigured bool `yaml:"when_configured"`
}

// Modes of ask_ai.
const (
	ModeAuto   = "auto"
	ModeButton = "button"
)

// Validate checks mode and max_tokens.
func (p *AskParams) Validate() error {
	switch p.Mode {
	case ModeAuto, ModeButton:
	default:
		return fmt.Errorf("mode: %q is not auto or button", p.Mode)
	}
	if p.MaxTokens < 0 || p.MaxTokens > 32000 {
		return fmt.Errorf("max_tokens: %d is not between 0 (the configured default) and 32000", p.MaxTokens)
	}
	return nil
}

// askDeps is what ask_ai uses: the answer function, the knowledge base (its
// runbooks option) and the logger for an answer that did not come.
type askDeps = interface {
	Answerer() rag.Answerer
	Runbooks() *rag.Retriever
	Log() *slog.Logger
}

// Register adds package ai's actions, runbook_enricher and ask_ai.
func Register(r *actions.Registry) {
	addRunbookEnricher(r)
	addAskAI(r)
}

func addAskAI(r *actions.Registry) {
	actions.Add(r, "ask_ai",
		"Explain the finding with the configured model, grounded in the knowledge base's runbooks (what is happening, likely causes, what to check, how to fix, with citations); mode button leaves it to the chat sinks' Ask AI button.",
		func() *AskParams { return &AskParams{Mode: ModeAuto} },
		func(p *AskParams) (actions.Runner[askDeps], error) {
			return askAction{params: *p}, nil
		})
}

// askAction is ask_ai. In mode auto it is deferred: it runs after every
// other action of the event (of every matching playbook), so the model sees
// all the evidence whatever the order in the YAML.
type askAction struct{ params AskParams }

func (a askAction) Run(ctx context.Context, deps askDeps, f *event.Finding) error {
	return ask(ctx, deps, f, a.params)
}

// Deferred implements actions.Deferred.
func (a askAction) Deferred() bool { return a.params.Mode == ModeAuto }

// Investigator is an answer function that gathers evidence itself (package
// agent): its answer comes as enrichments, the explanation and the
// transcript of the tools it called.
type Investigator interface {
	InvestigateFinding(ctx context.Context, f *event.Finding, model string, maxTokens int) ([]event.Enrichment, error)
}

// ask never fails the action: a model outage leaves the finding with an
// "AI unavailable: …" enrichment, and the finding is delivered.
func ask(ctx context.Context, deps askDeps, f *event.Finding, p AskParams) error {
	if p.WhenConfigured && !configured(deps.Answerer()) {
		return nil
	}
	if p.Runbooks && !has(f, RunbookSource) {
		if err := enrichRunbooks(ctx, deps, f, 3); err != nil {
			return err
		}
	}
	if p.Mode == ModeButton {
		f.AskAI = &event.AskAI{Model: p.Model, MaxTokens: p.MaxTokens}
		return nil
	}
	ai := deps.Answerer()
	if ai == nil {
		f.Add(rag.UnavailableEnrichment(rag.ErrNotConfigured))
		return nil
	}
	if has(f, rag.ExplanationSource) {
		return nil // a user playbook and a built-in one both asked: one answer is enough
	}
	if inv, ok := ai.(Investigator); ok {
		es, err := inv.InvestigateFinding(ctx, f, p.Model, p.MaxTokens)
		if err != nil {
			return unavailable(deps.Log(), f, err)
		}
		for _, e := range es {
			f.Add(e)
		}
		return nil
	}
	ans, err := ai.Answer(ctx, rag.Request{Finding: f, Model: p.Model, MaxTokens: p.MaxTokens})
	if err != nil {
		return unavailable(deps.Log(), f, err)
	}
	f.Add(ans.Enrichment())
	return nil
}

// unavailable notes why there is no answer; the finding goes out without
// one.
func unavailable(logger *slog.Logger, f *event.Finding, err error) error {
	if !errors.Is(err, rag.ErrNotConfigured) {
		logger.Warn("ask_ai: no answer; the finding goes out without it", "finding", f.ID, "err", err)
	}
	f.Add(rag.UnavailableEnrichment(err))
	return nil
}

// configured reports whether the answer function has a chat model.
func configured(ai rag.Answerer) bool {
	if ai == nil {
		return false
	}
	c, ok := ai.(interface{ Configured() bool })
	return !ok || c.Configured()
}

// has reports whether an action with this source already added to f.
func has(f *event.Finding, source string) bool {
	for _, e := range f.Enrichments {
		if e.Source == source {
			return true
		}
	}
	return false
}
