package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/llm"
	"github.com/medichq/medic/redact"
)

// Investigator is the answer function with tools: it runs the loop where the
// model calls tools and the one-shot rag.Service where it cannot. It
// implements rag.Answerer, so every caller of the AI (ask_ai, the Slack and
// finding-page buttons, medic ask) reaches the loop through it.
type Investigator struct {
	// Model calls tools; nil means every answer is one-shot.
	Model Model
	// ModelName is the configured chat model.
	ModelName string
	// OneShot answers when the model cannot call tools (and for the cache).
	OneShot rag.Answerer
	Toolbox Toolbox
	// Redactor is the sinks' redactor; nil uses redact.Default.
	Redactor *redact.Redactor
	Limits   Limits
	// Language of every answer ("de", "zh-CN"); empty is English.
	Language string
	// MaxTokens bounds each model answer (0: the client's default).
	MaxTokens int
	Logger    *slog.Logger

	// noTools remembers the models that refused tools, so a deployment on
	// such a model does not pay a failed request per answer.
	noTools sync.Map
}

var _ rag.Answerer = (*Investigator)(nil)

// Configured reports whether there is a model to answer.
func (in *Investigator) Configured() bool { return in.Model != nil || in.OneShot != nil }

// Request is one investigation. Exactly one of Finding, Target and Question
// is the subject; History continues an earlier conversation (a follow-up in
// a finding's thread).
type Request struct {
	Finding *event.Finding
	// Target is what `medic investigate` was pointed at (no alert).
	Target   *event.Event
	Question string
	// History is the earlier conversation, system message first; the new
	// Question is added to it.
	History   []llm.ToolMessage
	Model     string
	MaxTokens int
	Events    Events
}

// Investigate runs one investigation. It returns the conversation so far,
// for a follow-up.
func (in *Investigator) Investigate(ctx context.Context, req Request) (Result, []llm.ToolMessage, error) {
	model := firstNonEmpty(req.Model, in.ModelName)
	if in.Model == nil || in.refusedTools(model) {
		res, err := in.oneShot(ctx, req, "")
		return res, nil, err
	}
	base := event.Event{}
	switch {
	case req.Finding != nil:
		base = req.Finding.Event
	case req.Target != nil:
		base = *req.Target
	}
	tools, err := in.Toolbox.Tools(base)
	if err != nil {
		return Result{}, nil, err
	}
	msgs := req.History
	var seeded []Runbook
	if len(msgs) == 0 {
		var linked string
		linked, seeded = in.linkedRunbooks(ctx, req)
		msgs = []llm.ToolMessage{{Role: "system", Content: systemPrompt(in.Language)}, {Role: "user", Content: firstMessage(req) + linked}}
	} else {
		msgs = append(slices.Clone(msgs), llm.ToolMessage{Role: "user", Content: req.Question})
	}
	loop := Loop{
		Model: in.Model, ModelName: model, Tools: tools, Redactor: in.Redactor, Limits: in.Limits,
		MaxTokens: firstPositive(req.MaxTokens, in.MaxTokens), Logger: in.Logger,
	}
	res, conv, err := loop.Run(ctx, msgs, req.Events)
	if errors.Is(err, llm.ErrToolsUnsupported) {
		in.noTools.Store(model, true)
		in.logger().Info("the model cannot call tools; answering in one shot", "model", model, "err", err)
		res, err := in.oneShot(ctx, req, err.Error())
		return res, nil, err
	}
	if err != nil {
		return res, conv, err
	}
	res.Transcript.Runbooks = addRunbooks(seeded, res.Transcript.Runbooks)
	markCited(res.Transcript.Runbooks, res.Answer)
	if res.Transcript.Stopped != "" {
		res.Answer += "\n\n" + localized(in.Language).stopped + " " + res.Transcript.Stopped + "."
	}
	return res, conv, nil
}

func (in *Investigator) refusedTools(model string) bool {
	_, refused := in.noTools.Load(model)
	return refused
}

// oneShot answers with the prompt of evidence collected beforehand, and
// says so in the answer.
func (in *Investigator) oneShot(ctx context.Context, req Request, why string) (Result, error) {
	if in.OneShot == nil {
		return Result{}, rag.ErrNotConfigured
	}
	rreq := rag.Request{Finding: req.Finding, Question: req.Question, Model: req.Model, MaxTokens: req.MaxTokens}
	if req.Finding == nil && req.Question == "" && req.Target != nil {
		rreq.Question = targetQuestion(*req.Target)
	}
	a, err := in.OneShot.Answer(ctx, rreq)
	if err != nil {
		return Result{}, err
	}
	res := Result{Answer: a.Text, Transcript: Transcript{
		Model: a.Model, Turns: 1, Redacted: a.Redacted, PromptTokens: a.PromptTokens, OutputTokens: a.OutputTokens,
		Fallback: firstNonEmpty(why, "the model is not used with tools"),
	}}
	for _, c := range a.Citations {
		res.Transcript.Runbooks = append(res.Transcript.Runbooks, Runbook{Title: c.Title, Source: c.Source, URL: c.URL, Cited: true})
	}
	if in.Model != nil {
		res.Answer += "\n\n" + localized(in.Language).oneShot
	}
	return res, nil
}

// Answer implements rag.Answerer: the loop's answer with its transcript in
// compact form, for callers that show an answer's text (the Slack and page
// buttons, medic ask --json).
func (in *Investigator) Answer(ctx context.Context, req rag.Request) (rag.Answer, error) {
	ireq := Request{Finding: req.Finding, Question: req.Question, Model: req.Model, MaxTokens: req.MaxTokens}
	res, _, err := in.Investigate(ctx, ireq)
	if err != nil {
		return rag.Answer{}, err
	}
	a := answerOf(res)
	if steps := CompactTranscript(res.Transcript); steps != "" {
		a.Text += "\n\n" + steps
	}
	if req.OnDelta != nil {
		if err := req.OnDelta(a.Text); err != nil {
			return rag.Answer{}, err
		}
	}
	if req.Finding != nil {
		a.Sections = rag.ParseSections(res.Answer)
	}
	return a, nil
}

// InvestigateFinding is what ask_ai (mode auto) calls: the explanation and
// the transcript as enrichments of the finding.
func (in *Investigator) InvestigateFinding(ctx context.Context, f *event.Finding, model string, maxTokens int) ([]event.Enrichment, error) {
	res, _, err := in.Investigate(ctx, Request{Finding: f, Model: model, MaxTokens: maxTokens})
	if err != nil {
		return nil, err
	}
	return Enrichments(res, in.Language), nil
}

// linkedRunbooks are the runbooks the knowledge base links to a finding
// (its runbook_url, its alert name, then a search) or finds for a question,
// given with the first message as the one-shot prompt gives them: the model
// starts from the team's procedure and searches for more when it needs to.
func (in *Investigator) linkedRunbooks(ctx context.Context, req Request) (string, []Runbook) {
	kb := in.Toolbox.KB
	if kb == nil || kb.Store == nil {
		return "", nil
	}
	topK := firstPositive(in.Toolbox.TopK, 3)
	var (
		hits []rag.Hit
		err  error
	)
	switch {
	case req.Finding != nil:
		hits, err = kb.ForFinding(ctx, req.Finding, topK, 1)
	case req.Question != "":
		hits, err = kb.Search(ctx, req.Question, topK, 1)
	}
	if err != nil {
		in.logger().Warn("knowledge-base retrieval failed; investigating without linked runbooks", "err", err)
		return "", nil
	}
	if len(hits) == 0 {
		return "", nil
	}
	var b strings.Builder
	b.WriteString("\n\nRunbooks from the knowledge base (fetch_runbook reads one whole):\n")
	rbs := make([]Runbook, 0, len(hits))
	for i, h := range hits {
		fmt.Fprintf(&b, "[%d] %s\n", i+1, h.Title)
		if h.URL != "" {
			fmt.Fprintf(&b, "url: %s\n", h.URL)
		}
		fmt.Fprintf(&b, "excerpt: %s\n", clip(h.Text, 800))
		rbs = append(rbs, Runbook{Title: h.Title, Source: h.Source, URL: h.URL})
	}
	return b.String(), rbs
}

func (in *Investigator) logger() *slog.Logger {
	if in.Logger != nil {
		return in.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func firstPositive(vals ...int) int {
	for _, v := range vals {
		if v > 0 {
			return v
		}
	}
	return 0
}

// The answer's shape is the one rag.ParseSections reads, so the chat sinks
// show it like the one-shot explanation.
const systemPromptText = `You are medic, an SRE assistant investigating an incident in a Kubernetes cluster.
You have read-only tools: pod logs, events, status, YAML, related pods, node and workload status, PromQL, and the team's runbooks.
Investigate before answering: look at the evidence given, then call the tools that would confirm or rule out a cause (several at once when they are independent). Search the runbooks for the alert or the error and cite the runbook you used by its URL.
Do not guess object names: take them from the evidence or from related_pods. Stop calling tools once the cause is clear.
Answer in Markdown with exactly these four sections:
## What is happening
## Likely causes
## What to check
## How to fix
Quote the decisive log line or event. Be brief and concrete.`

func systemPrompt(language string) string {
	if language == "" || strings.HasPrefix(strings.ToLower(language), "en") {
		return systemPromptText
	}
	h := localized(language).headings
	return systemPromptText + "\nWrite the whole answer in the language " + language +
		", the four section headings translated too (" + strings.Join(h[:], ", ") + ")."
}

// SystemPrompt is the investigation's system message in a language.
func SystemPrompt(language string) string { return systemPrompt(language) }

// FirstMessage is the user message that opens an investigation of req.
func FirstMessage(req Request) string { return firstMessage(req) }

// maxEvidence bounds the evidence in the first message; tools fetch more.
const maxEvidence = 12000

// firstMessage is the user message that opens an investigation.
func firstMessage(req Request) string {
	var b strings.Builder
	switch {
	case req.Finding != nil:
		f := req.Finding
		b.WriteString("Investigate this finding.\n\n")
		writeEvent(&b, f.Title, f.Description, string(f.Severity), &f.Event)
		var ev []event.Enrichment
		for _, e := range f.Enrichments {
			if e.Source != rag.ExplanationSource && e.Source != "runbook_enricher" {
				ev = append(ev, e)
			}
		}
		if len(ev) > 0 {
			text, _ := truncate(RenderEnrichments(ev), maxEvidence)
			b.WriteString("\nEvidence collected so far:\n")
			b.WriteString(text)
		}
		if req.Question != "" {
			b.WriteString("\nQuestion: " + req.Question + "\n")
		}
	case req.Target != nil:
		b.WriteString(targetQuestion(*req.Target))
		b.WriteString("\n\n")
		writeEvent(&b, req.Target.Title, req.Target.Description, string(req.Target.Severity), req.Target)
	default:
		b.WriteString(req.Question)
	}
	return b.String()
}

func targetQuestion(ev event.Event) string {
	what := ev.Subject.String()
	if what == "" {
		what = ev.Title
	}
	return "Investigate " + what + " on demand (there may be no alert): is it healthy, and if not, why?"
}

func writeEvent(b *strings.Builder, title, desc, severity string, ev *event.Event) {
	if title != "" {
		fmt.Fprintf(b, "Title: %s\n", title)
	}
	if desc != "" && desc != title {
		fmt.Fprintf(b, "Description: %s\n", desc)
	}
	if severity != "" {
		fmt.Fprintf(b, "Severity: %s\n", severity)
	}
	if ev.Status != "" {
		fmt.Fprintf(b, "Status: %s\n", ev.Status)
	}
	if ev.Kind != "" && ev.Kind != event.KindManual {
		fmt.Fprintf(b, "Event kind: %s\n", ev.Kind)
	}
	if s := ev.Subject; !s.IsZero() {
		fmt.Fprintf(b, "Subject: kind=%s namespace=%s name=%s", s.Kind, s.Namespace, s.Name)
		if s.Container != "" {
			fmt.Fprintf(b, " container=%s", s.Container)
		}
		if s.Node != "" {
			fmt.Fprintf(b, " node=%s", s.Node)
		}
		b.WriteString("\n")
	}
	writeMap(b, "Labels", ev.Labels)
	writeMap(b, "Annotations", ev.Annotations)
}

func writeMap(b *strings.Builder, title string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(b, "%s:\n", title)
	for _, k := range keys {
		fmt.Fprintf(b, "  %s: %s\n", k, m[k])
	}
}
