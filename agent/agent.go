// Package agent is medic's tool-calling investigation: a bounded loop in
// which the model asks for evidence (logs, events, status, YAML, PromQL,
// runbooks) through read-only tools, medic runs them, redacts and truncates
// what they return, and the model answers from what it saw. The transcript of
// the calls is part of the answer.
//
// The tools are medic's evidence actions (package actions), exposed with JSON
// Schemas generated from the same parameter structs the playbooks use, plus
// knowledge-base search and runbook fetch. Models without tool calling fall
// back to the one-shot prompt with the evidence collected beforehand.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/medichq/medic/actions/kube"
	"github.com/medichq/medic/rag/llm"
	"github.com/medichq/medic/redact"
)

// Tool is one read-only capability offered to the model.
type Tool interface {
	// Spec names the tool and describes its arguments (a JSON Schema).
	Spec() llm.ToolSpec
	// Call runs it. args is the JSON object the model wrote; a tool checks
	// it strictly and says what is wrong, which goes back to the model.
	Call(ctx context.Context, args json.RawMessage) (string, error)
}

// Model is the chat model's tool-calling side (*llm.Client).
type Model interface {
	CompleteTools(ctx context.Context, req llm.ToolRequest) (llm.ToolResponse, error)
}

// Limits bound one investigation; zero fields take the defaults.
type Limits struct {
	// MaxSteps is how many times the model may ask for tools; the turn
	// after the last one must answer.
	MaxSteps int
	// MaxToolOutput is how many bytes of one tool result go to the model;
	// the rest is cut with a marker saying how much.
	MaxToolOutput int
	// MaxTokens bounds prompt and output tokens over the whole run, as the
	// server counts them.
	MaxTokens int
	// Timeout bounds the whole investigation; the final answer is asked for
	// when it is reached.
	Timeout time.Duration
}

// Defaults of Limits, the one place they live (config.AgentConfig uses them).
const (
	DefaultMaxSteps      = 10
	DefaultMaxToolOutput = 8000
	DefaultMaxTokens     = 60000
	DefaultTimeout       = 3 * time.Minute
)

func (l Limits) withDefaults() Limits {
	if l.MaxSteps <= 0 {
		l.MaxSteps = DefaultMaxSteps
	}
	if l.MaxToolOutput <= 0 {
		l.MaxToolOutput = DefaultMaxToolOutput
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = DefaultMaxTokens
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	return l
}

// Step is one tool call as the transcript shows it.
type Step struct {
	// Turn is the model turn that asked for it, from 1.
	Turn int    `json:"turn"`
	Tool string `json:"tool"`
	// Args is the arguments' JSON as the model wrote them (redacted).
	Args string `json:"args"`
	// Summary is one line about the result: its size and its most telling
	// line, or the error.
	Summary   string `json:"summary"`
	Bytes     int    `json:"bytes"`
	Truncated bool   `json:"truncated,omitempty"`
	Redacted  int    `json:"redacted,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Runbook is a knowledge-base document the model saw.
type Runbook struct {
	Title  string `json:"title"`
	Source string `json:"source,omitempty"`
	URL    string `json:"url,omitempty"`
	// Cited is set when the answer names it (its URL, title or source).
	Cited bool `json:"cited,omitempty"`
}

// Transcript is how an answer was reached.
type Transcript struct {
	Model string `json:"model"`
	Turns int    `json:"turns"`
	Steps []Step `json:"steps,omitempty"`
	// Redacted counts what was removed from the prompt and the tool
	// results before they reached the model, by kind.
	Redacted redact.Redaction `json:"redacted,omitempty"`
	Runbooks []Runbook        `json:"runbooks,omitempty"`
	// Stopped names the limit that cut the investigation short (steps,
	// tokens, time); empty when the model answered on its own.
	Stopped      string `json:"stopped,omitempty"`
	PromptTokens int    `json:"promptTokens,omitempty"`
	OutputTokens int    `json:"outputTokens,omitempty"`
	// Fallback says why the one-shot prompt answered instead of the loop.
	Fallback string `json:"fallback,omitempty"`
}

// Result is the answer and its transcript.
type Result struct {
	Answer     string     `json:"answer"`
	Transcript Transcript `json:"transcript"`
}

// Loop runs investigations. It is safe for concurrent use; each Run has its
// own conversation.
type Loop struct {
	Model Model
	// ModelName is the model asked (empty: the client's default).
	ModelName string
	Tools     []Tool
	// Redactor cleans every message and tool result before it reaches the
	// model; nil uses redact.Default.
	Redactor *redact.Redactor
	Limits   Limits
	// MaxTokens bounds each model answer (0: the client's default).
	MaxTokens int
	Logger    *slog.Logger
}

// Events of a run, for callers that show progress (medic investigate).
type Events struct {
	// OnCall is told of a call before it runs, OnStep after.
	OnCall func(turn int, tool, args string)
	OnStep func(Step)
}

// errUnknownTool goes back to the model when it names a tool it was not offered.
var errUnknownTool = errors.New("unknown tool")

// Run continues the conversation msgs (system, user, and for a follow-up
// the earlier turns) until the model answers or a limit is reached. It
// returns the answer, the transcript of this run and the conversation with
// the new turns, so a follow-up can continue it.
func (l *Loop) Run(ctx context.Context, msgs []llm.ToolMessage, ev Events) (Result, []llm.ToolMessage, error) {
	lim := l.Limits.withDefaults()
	red := l.Redactor
	if red == nil {
		red = redact.Default()
	}
	tr := Transcript{Model: l.ModelName, Redacted: redact.Redaction{}}
	conv := make([]llm.ToolMessage, len(msgs))
	for i, m := range msgs {
		clean, found := red.Redact(m.Content)
		tr.Redacted.Add(found)
		m.Content = clean
		conv[i] = m
	}
	specs := make([]llm.ToolSpec, len(l.Tools))
	byName := make(map[string]Tool, len(l.Tools))
	for i, t := range l.Tools {
		specs[i] = t.Spec()
		byName[specs[i].Name] = t
	}
	start := time.Now()
	deadline := start.Add(lim.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		// The caller's deadline (engine.action_timeout for ask_ai) ends the
		// whole run: stop investigating at two thirds of it, so the answer
		// still has time to come.
		deadline = start.Add(d.Sub(start) * 2 / 3)
	}
	steps := 0
	for {
		final := tr.Stopped != ""
		switch {
		case final:
		case steps >= lim.MaxSteps:
			tr.Stopped, final = fmt.Sprintf("steps (%d)", lim.MaxSteps), true
		case tr.PromptTokens+tr.OutputTokens >= lim.MaxTokens:
			tr.Stopped, final = fmt.Sprintf("tokens (%d)", lim.MaxTokens), true
		case !time.Now().Before(deadline):
			tr.Stopped, final = fmt.Sprintf("time (%s)", lim.Timeout), true
		}
		if final {
			conv = append(conv, llm.ToolMessage{Role: "user", Content: "A limit of the investigation was reached (" +
				tr.Stopped + "). Answer now from what you have; say what you could not check."})
		}
		resp, err := l.Model.CompleteTools(ctx, llm.ToolRequest{
			Messages: conv, Tools: specs, NoTools: final, Model: l.ModelName, MaxTokens: l.MaxTokens,
		})
		if err != nil {
			return Result{Transcript: tr}, conv, err
		}
		tr.Turns++
		tr.PromptTokens += resp.PromptTokens
		tr.OutputTokens += resp.OutputTokens
		if resp.Model != "" {
			tr.Model = resp.Model
		}
		if len(resp.ToolCalls) == 0 || final {
			answer := strings.TrimSpace(resp.Content)
			if answer == "" {
				answer = "(The model gave no answer.)"
			}
			conv = append(conv, llm.ToolMessage{Role: "assistant", Content: answer})
			markCited(tr.Runbooks, answer)
			return Result{Answer: answer, Transcript: tr}, conv, nil
		}
		steps++
		conv = append(conv, llm.ToolMessage{Role: "assistant", Content: resp.Content, ToolCalls: resp.ToolCalls})
		tctx, cancel := context.WithDeadline(ctx, deadline)
		results := l.callAll(tctx, tr.Turns, resp.ToolCalls, byName, red, lim, ev)
		cancel()
		if err := ctx.Err(); err != nil {
			return Result{Transcript: tr}, conv, fmt.Errorf("investigation: %w", err)
		}
		for i, r := range results {
			conv = append(conv, llm.ToolMessage{Role: "tool", ToolCallID: resp.ToolCalls[i].ID, Content: r.content})
			tr.Steps = append(tr.Steps, r.step)
			tr.Redacted.Add(r.found)
			tr.Runbooks = addRunbooks(tr.Runbooks, r.runbooks)
		}
	}
}

// maxParallelCalls bounds the calls of one turn that run at once: a model
// asking for twenty pods' logs must not open twenty log streams together.
const maxParallelCalls = 4

type callResult struct {
	content  string
	step     Step
	found    redact.Redaction
	runbooks []Runbook
}

// callAll runs one turn's calls concurrently (models ask for several at once
// when they are independent) and returns the results in the calls' order.
func (l *Loop) callAll(ctx context.Context, turn int, calls []llm.ToolCall, byName map[string]Tool,
	red *redact.Redactor, lim Limits, ev Events) []callResult {
	out := make([]callResult, len(calls))
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxParallelCalls)
	for i, c := range calls {
		args, argsFound := red.Redact(c.Arguments)
		if ev.OnCall != nil {
			ev.OnCall(turn, c.Name, args)
		}
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			r := l.call(ctx, c, byName[c.Name], red, lim)
			r.step.Turn, r.step.Args = turn, args
			r.found.Add(argsFound)
			out[i] = r
		})
	}
	wg.Wait()
	if ev.OnStep != nil {
		for _, r := range out {
			ev.OnStep(r.step)
		}
	}
	return out
}

func (l *Loop) call(ctx context.Context, c llm.ToolCall, t Tool, red *redact.Redactor, lim Limits) callResult {
	r := callResult{step: Step{Tool: c.Name}, found: redact.Redaction{}}
	var (
		out string
		err error
	)
	if t == nil {
		err = fmt.Errorf("%w %q", errUnknownTool, c.Name)
	} else {
		args := json.RawMessage(c.Arguments)
		if strings.TrimSpace(c.Arguments) == "" {
			args = json.RawMessage("{}")
		}
		out, err = t.Call(ctx, args)
		if rt, ok := t.(runbookTool); ok && err == nil {
			r.runbooks = rt.runbooksIn(out)
		}
	}
	if err != nil {
		msg, found := red.Redact(err.Error())
		r.found.Add(found)
		r.step.Error, r.step.Summary = msg, "error: "+clip(msg, 160)
		r.content = "error: " + msg
		l.logger().Debug("tool failed", "tool", c.Name, "err", msg)
		return r
	}
	clean, found := red.Redact(out)
	r.found.Add(found)
	r.step.Redacted = found.Total()
	r.step.Bytes = len(clean)
	r.content, r.step.Truncated = truncate(clean, lim.MaxToolOutput)
	r.step.Summary = Summarize(clean)
	return r
}

func (l *Loop) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// truncate keeps the head and the tail of s (the end of a log matters most)
// within max bytes, with a marker the model can read.
func truncate(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	marker := fmt.Sprintf("\n[… %d bytes cut by medic (tool output limit %d) …]\n", len(s)-max, max)
	head := max / 3
	tail := max - head
	return strings.ToValidUTF8(s[:head], "") + marker + strings.ToValidUTF8(s[len(s)-tail:], ""), true
}

// Summarize is the one line the transcript shows for a result: how many
// lines, and the last line that reads like an error, else the first line.
func Summarize(out string) string {
	out = strings.TrimSpace(out)
	if out == "" {
		return "empty"
	}
	lines := strings.Split(out, "\n")
	pick := strings.TrimSpace(lines[0])
	if l := kube.ErrorLine(out); l != "" {
		pick = l
	}
	return fmt.Sprintf("%d lines; %s", len(lines), clip(pick, 140))
}

// clip shortens s to n bytes, never splitting a character.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

func addRunbooks(have, add []Runbook) []Runbook {
	for _, r := range add {
		dup := false
		for _, h := range have {
			if h.Title == r.Title && h.Source == r.Source && h.URL == r.URL {
				dup = true
				break
			}
		}
		if !dup {
			have = append(have, r)
		}
	}
	return have
}

// markCited sets Cited on the runbooks the answer names.
func markCited(rbs []Runbook, answer string) {
	low := strings.ToLower(answer)
	for i, r := range rbs {
		for _, s := range []string{r.URL, r.Source, r.Title} {
			if s != "" && strings.Contains(low, strings.ToLower(s)) {
				rbs[i].Cited = true
				break
			}
		}
	}
}
