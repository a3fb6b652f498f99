package agent_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/medichq/medic/agent"
	"github.com/medichq/medic/agent/agenttest"
	"github.com/medichq/medic/rag/llm"
)

// textTool answers every call with the same text.
type textTool struct {
	name, out string
}

func (t textTool) Spec() llm.ToolSpec {
	return llm.ToolSpec{Name: t.name, Description: "test tool " + t.name, Parameters: map[string]any{
		"type": "object", "properties": map[string]any{"pod": map[string]any{"type": "string"}}, "additionalProperties": false,
	}}
}

func (t textTool) Call(_ context.Context, args json.RawMessage) (string, error) {
	var a map[string]any
	if err := json.Unmarshal(args, &a); err != nil {
		return "", err
	}
	return t.out, nil
}

func newModel(t *testing.T, srv *agenttest.Server) *llm.Client {
	t.Helper()
	c, err := llm.New(llm.Config{BaseURL: srv.BaseURL(), ChatModel: "scripted", Timeout: 10 * time.Second, MaxRetries: 0, MaxTokens: 200})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const secretLine = "connecting with password=hunter2 to db"

// TestLoopRedactsTruncatesAndThreads: the model asks for two tools at once,
// then for one it was not offered, then answers. Every result reaches the
// model redacted, the long one cut with a marker, each threaded by its
// call's ID; the transcript lists the three calls with what was removed.
func TestLoopRedactsTruncatesAndThreads(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("GET /healthz 200\n", 2000) + secretLine + "\npanic: runtime error: invalid memory address\n"
	srv := agenttest.New(t, agenttest.Steps(
		agenttest.Reply{Calls: []agenttest.Call{{Name: "logs", Args: map[string]any{"pod": "cart"}}, {Name: "events", Args: map[string]any{"pod": "cart"}}}},
		agenttest.Reply{Calls: []agenttest.Call{{Name: "delete_pod", Args: map[string]any{"pod": "cart"}}}},
		agenttest.Reply{Text: "## What is happening\nA nil map panic."},
	))
	loop := agent.Loop{
		Model:  newModel(t, srv),
		Tools:  []agent.Tool{textTool{"logs", long}, textTool{"events", "Warning BackOff restarting failed container; token ghp_0123456789abcdefghijABCDEFGHIJ012345"}},
		Limits: agent.Limits{MaxToolOutput: 2000},
	}
	res, conv, err := loop.Run(context.Background(), []llm.ToolMessage{{Role: "system", Content: "investigate"}, {Role: "user", Content: "why does cart crash?"}}, agent.Events{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "## What is happening\nA nil map panic." || res.Transcript.Stopped != "" || res.Transcript.Turns != 3 {
		t.Errorf("answer %q, transcript %+v", res.Answer, res.Transcript)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d model requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if len(r.Tools) != 2 || r.ToolChoice != "auto" {
			t.Errorf("request %d offered %d tools, tool_choice %v", i, len(r.Tools), r.ToolChoice)
		}
	}
	results := agenttest.ToolResults(&reqs[2])
	if len(results) != 3 {
		t.Fatalf("tool results %+v", results)
	}
	logs, events, unknown := results[0], results[1], results[2]
	if logs.Tool != "logs" || events.Tool != "events" || unknown.Tool != "delete_pod" || logs.CallID == events.CallID {
		t.Errorf("results not threaded by call: %+v", results)
	}
	if len(logs.Content) > 2200 || !strings.Contains(logs.Content, "bytes cut by medic (tool output limit 2000)") ||
		!strings.Contains(logs.Content, "panic: runtime error") {
		t.Errorf("long result not cut to the limit with its end kept (%d bytes): …%s", len(logs.Content), logs.Content[len(logs.Content)-200:])
	}
	if strings.Contains(srv.AllBodies(), "hunter2") || strings.Contains(srv.AllBodies(), "ghp_0123456789") {
		t.Error("a secret reached the model")
	}
	if !strings.Contains(logs.Content, "password=[REDACTED]") || !strings.Contains(events.Content, "[REDACTED]") {
		t.Errorf("results not redacted: %q / %q", logs.Content[len(logs.Content)-120:], events.Content)
	}
	if !strings.HasPrefix(unknown.Content, `error: unknown tool "delete_pod"`) {
		t.Errorf("unknown tool answered %q", unknown.Content)
	}
	tr := res.Transcript
	if len(tr.Steps) != 3 || tr.Redacted.Total() != 2 {
		t.Fatalf("transcript %+v", tr)
	}
	if s := tr.Steps[0]; s.Tool != "logs" || s.Turn != 1 || s.Args != `{"pod":"cart"}` || !s.Truncated || s.Redacted != 1 ||
		!strings.Contains(s.Summary, "panic: runtime error") {
		t.Errorf("step 1 %+v", s)
	}
	if s := tr.Steps[2]; s.Turn != 2 || s.Error == "" {
		t.Errorf("step 3 %+v", s)
	}
	// The conversation returned continues where the model stopped.
	if last := conv[len(conv)-1]; last.Role != "assistant" || last.Content != res.Answer || len(conv) != 2+1+2+1+1+1 {
		t.Errorf("conversation of %d messages ends with %+v", len(conv), last)
	}
}

// TestLoopLimits: each limit stops the loop, the model is then asked for an
// answer without tools (tool_choice none), and the transcript names the
// limit.
func TestLoopLimits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		limits      agent.Limits
		promptToken int
		wantStopped string
		wantCalls   int
	}{
		{"steps", agent.Limits{MaxSteps: 2}, 100, "steps (2)", 2},
		{"tokens", agent.Limits{MaxTokens: 250}, 200, "tokens (250)", 2},
		{"time", agent.Limits{Timeout: time.Nanosecond}, 100, "time (1ns)", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			always := func(*openai.ChatCompletionRequest, int) agenttest.Reply {
				return agenttest.Reply{Calls: []agenttest.Call{{Name: "logs", Args: map[string]any{}}}, Text: "Answer from what I saw."}
			}
			srv := agenttest.New(t, always)
			srv.SetPromptTokens(c.promptToken)
			loop := agent.Loop{Model: newModel(t, srv), Tools: []agent.Tool{textTool{"logs", "ok"}}, Limits: c.limits}
			res, _, err := loop.Run(context.Background(), []llm.ToolMessage{{Role: "user", Content: "why?"}}, agent.Events{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Transcript.Stopped != c.wantStopped || len(res.Transcript.Steps) != c.wantCalls || res.Answer != "Answer from what I saw." {
				t.Errorf("stopped %q after %d calls, answer %q", res.Transcript.Stopped, len(res.Transcript.Steps), res.Answer)
			}
			reqs := srv.Requests()
			final := reqs[len(reqs)-1]
			if final.ToolChoice != "none" || !strings.Contains(final.Messages[len(final.Messages)-1].Content, "limit") {
				t.Errorf("final request: tool_choice %v, last message %+v", final.ToolChoice, final.Messages[len(final.Messages)-1])
			}
		})
	}
}

// TestSummarizePicksTheErrorLine: the transcript line names the error.
func TestSummarizePicksTheErrorLine(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"":                                      "empty",
		"all good\nstill good":                  "2 lines; all good",
		"start\npanic: boom\ngoroutine 1\nexit": "4 lines; panic: boom",
		"Error: first\nok\nFATAL second\nbye":   "4 lines; FATAL second",
		"panic: nil map\n\ngoroutine 1 [running]:\nexit status 2": "4 lines; panic: nil map",
	}
	for in, want := range cases {
		if got := agent.Summarize(in); got != want {
			t.Errorf("Summarize(%q) = %q, want %q", in, got, want)
		}
	}
}
