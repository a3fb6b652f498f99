package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	openai "github.com/sashabaranov/go-openai"

	"github.com/medichq/medic/rag"
)

// Tool calling: the model is offered functions (name, description, JSON
// Schema of the arguments) and answers either with text or with calls, which
// the caller runs and sends back as "tool" messages threaded by the call's
// ID. OpenAI, Ollama's /v1, vLLM and LiteLLM speak the same wire format.

// ToolSpec is one function offered to the model.
type ToolSpec struct {
	Name        string
	Description string
	// Parameters is a JSON Schema of the arguments (type object).
	Parameters map[string]any
}

// ToolCall is one call the model asked for. Arguments is the JSON text the
// model wrote, not checked here.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ToolMessage is a message of a tool-calling conversation: system, user,
// assistant (with text and/or ToolCalls) or tool (ToolCallID names the
// call whose result Content is).
type ToolMessage struct {
	Role       string     `json:"role"`
	Content    string     `json:"content,omitempty"`
	ToolCalls  []ToolCall `json:"toolCalls,omitempty"`
	ToolCallID string     `json:"toolCallId,omitempty"`
}

// ToolRequest is one step of the conversation.
type ToolRequest struct {
	Messages []ToolMessage
	Tools    []ToolSpec
	// NoTools asks for a final answer (tool_choice "none") while the tools
	// stay declared, as the conversation refers to them.
	NoTools   bool
	Model     string
	MaxTokens int
}

// ToolResponse is the model's answer to one step: text, calls, or both.
type ToolResponse struct {
	Content      string
	ToolCalls    []ToolCall
	Model        string
	FinishReason string
	PromptTokens int
	OutputTokens int
}

// ErrToolsUnsupported is returned when the server says the model cannot
// call tools (Ollama: "… does not support tools"); callers fall back to a
// one-shot prompt.
var ErrToolsUnsupported = errors.New("the model does not support tool calling")

// CompleteTools sends one step of a tool-calling conversation. Retries and
// timeouts are those of Complete.
func (c *Client) CompleteTools(ctx context.Context, req ToolRequest) (ToolResponse, error) {
	model := firstNonEmpty(req.Model, c.cfg.ChatModel)
	if model == "" {
		return ToolResponse{}, rag.ErrNotConfigured
	}
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = c.cfg.MaxTokens
	}
	oreq := openai.ChatCompletionRequest{
		Model:       model,
		MaxTokens:   maxTokens,
		Temperature: c.cfg.Temperature,
		Messages:    make([]openai.ChatCompletionMessage, len(req.Messages)),
	}
	if oreq.Temperature == 0 {
		oreq.Temperature = 1e-6 // see chatRequest
	}
	est := 0
	for i, m := range req.Messages {
		om := openai.ChatCompletionMessage{Role: m.Role, Content: m.Content, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			om.ToolCalls = append(om.ToolCalls, openai.ToolCall{
				ID: tc.ID, Type: openai.ToolTypeFunction,
				Function: openai.FunctionCall{Name: tc.Name, Arguments: tc.Arguments},
			})
			est += rag.EstimateTokens(tc.Arguments) + 8
		}
		oreq.Messages[i] = om
		est += rag.EstimateTokens(m.Content) + 4
	}
	if c.cfg.TokenBudget > 0 && est > c.cfg.TokenBudget {
		return ToolResponse{}, fmt.Errorf("llm: prompt of about %d tokens exceeds the token budget of %d", est, c.cfg.TokenBudget)
	}
	for _, t := range req.Tools {
		oreq.Tools = append(oreq.Tools, openai.Tool{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
			Name: t.Name, Description: t.Description, Parameters: t.Parameters,
		}})
	}
	if len(oreq.Tools) > 0 {
		oreq.ToolChoice = "auto"
		if req.NoTools {
			oreq.ToolChoice = "none"
		}
	}
	var out ToolResponse
	err := c.retry(ctx, "chat", func(ctx context.Context) error {
		resp, err := c.oc.CreateChatCompletion(ctx, oreq)
		if err != nil {
			return err
		}
		if len(resp.Choices) == 0 {
			return errors.New("answer has no choices")
		}
		msg := resp.Choices[0].Message
		out = ToolResponse{
			Content:      msg.Content,
			Model:        firstNonEmpty(resp.Model, model),
			FinishReason: string(resp.Choices[0].FinishReason),
			PromptTokens: resp.Usage.PromptTokens,
			OutputTokens: resp.Usage.CompletionTokens,
		}
		for i, tc := range msg.ToolCalls {
			id := tc.ID
			if id == "" { // some servers leave it out; the reply must still name one
				id = fmt.Sprintf("call_%d", i)
			}
			out.ToolCalls = append(out.ToolCalls, ToolCall{ID: id, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		return nil
	})
	if err != nil && toolsRefused(err) {
		return ToolResponse{}, fmt.Errorf("%w: %v", ErrToolsUnsupported, err)
	}
	return out, err
}

// toolsRefused recognises a server's "this model cannot use tools": Ollama
// answers 400 "registry.ollama.ai/library/gemma:2b does not support tools",
// others name tools or tool_choice in a 400 or 422.
func toolsRefused(err error) bool {
	code := StatusCode(err)
	if code != http.StatusBadRequest && code != http.StatusUnprocessableEntity && code != http.StatusNotImplemented {
		return false
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "support tools") || strings.Contains(msg, "tool_choice") ||
		strings.Contains(msg, "tools are not supported") || strings.Contains(msg, "function calling")
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
