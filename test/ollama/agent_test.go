//go:build linux

package ollamatest

import (
	"context"
	"testing"

	"github.com/medichq/medic/agent"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/rag/llm"
)

// TestInvestigationToolsAcceptedByOllama: a real Ollama takes the
// investigation's request — every built-in tool with the JSON Schema its
// action's parameters give, tool_choice auto — and its answer (the tiny
// model's text or calls) is read back; the loop ends with an answer or a
// named limit, never a protocol error.
func TestInvestigationToolsAcceptedByOllama(t *testing.T) {
	c := client(t, ollama(t))
	specs, err := agent.Specs(plugins.Builtin().Actions)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.CompleteTools(context.Background(), llm.ToolRequest{
		Messages: []llm.ToolMessage{{Role: "system", Content: agent.SystemPrompt("")}, {Role: "user", Content: "Why does shop/cart crash?"}},
		Tools:    specs,
	})
	if err != nil {
		t.Fatalf("Ollama refused the tools request: %v", err)
	}
	if resp.Content == "" && len(resp.ToolCalls) == 0 {
		t.Errorf("empty answer %+v", resp)
	}
	tools, err := agent.Toolbox{Actions: plugins.Builtin().Actions}.Tools(event.Event{})
	if err != nil {
		t.Fatal(err)
	}
	loop := agent.Loop{Model: c, ModelName: ChatModel, Tools: tools, Limits: agent.Limits{MaxSteps: 2}}
	res, _, err := loop.Run(context.Background(), []llm.ToolMessage{{Role: "user", Content: "Why does shop/cart crash?"}}, agent.Events{})
	if err != nil {
		t.Fatalf("loop against Ollama: %v", err)
	}
	if res.Answer == "" || res.Transcript.Turns == 0 {
		t.Errorf("result %+v", res)
	}
	t.Logf("tiny model: %d turns, %d calls, stopped %q", res.Transcript.Turns, len(res.Transcript.Steps), res.Transcript.Stopped)
}
