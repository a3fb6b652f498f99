// Package agenttest is a scripted OpenAI-compatible model for tests of the
// investigation loop: an httptest server speaking the real
// POST /v1/chat/completions wire format (tools, tool_choice, tool_calls,
// tool messages threaded by tool_call_id, usage), whose replies come from a
// script instead of a model, so the loop runs deterministically. It checks
// what a real server would refuse: tools without a valid schema, a tool
// result that answers no call, a call left without its result.
//
// The e2e, CLI and evaluation tests all use it.
package agenttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

// Call is one tool call the script makes.
type Call struct {
	Name string
	Args any // marshalled to the arguments' JSON; a string is sent as it is
}

// Reply is one model turn: calls, or the final text.
type Reply struct {
	Calls []Call
	Text  string
}

// Script picks the reply to a request; turn counts from 0 within the
// conversation (the assistant messages already in it).
type Script func(req *openai.ChatCompletionRequest, turn int) Reply

// Steps plays replies in order, one per turn; past the last it repeats the
// last (a final text, normally).
func Steps(replies ...Reply) Script {
	return func(_ *openai.ChatCompletionRequest, turn int) Reply {
		if turn >= len(replies) {
			return replies[len(replies)-1]
		}
		return replies[turn]
	}
}

// Server is a running scripted model.
type Server struct {
	*httptest.Server
	t testing.TB

	mu           sync.Mutex
	script       Script
	refuseTools  bool
	requests     []openai.ChatCompletionRequest
	bodies       []string
	promptTokens int
}

// New starts a server answering with script, stopped at the end of the test.
func New(t testing.TB, script Script) *Server {
	s := &Server{t: t, script: script, promptTokens: 100}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// BaseURL is what ai.base_url should be.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// RefuseTools makes the server answer a request offering tools as Ollama
// does for a model without tool support (400 "… does not support tools").
func (s *Server) RefuseTools() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseTools = true
}

// SetPromptTokens sets the usage the server reports per request.
func (s *Server) SetPromptTokens(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.promptTokens = n
}

// Requests are the chat requests received, in order.
func (s *Server) Requests() []openai.ChatCompletionRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]openai.ChatCompletionRequest(nil), s.requests...)
}

// AllBodies is every request body as received, for redaction checks.
func (s *Server) AllBodies() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.bodies, "\n")
}

// ToolResults are the tool messages of the last request, by the name of
// the call they answer, in order.
func (s *Server) ToolResults() []ToolResult {
	reqs := s.Requests()
	if len(reqs) == 0 {
		return nil
	}
	return ToolResults(&reqs[len(reqs)-1])
}

// ToolResult is a tool message with the call it answers.
type ToolResult struct {
	CallID, Tool, Args, Content string
}

// ToolResults pairs the tool messages of a conversation with their calls.
func ToolResults(req *openai.ChatCompletionRequest) []ToolResult {
	calls := map[string]openai.ToolCall{}
	var out []ToolResult
	for _, m := range req.Messages {
		for _, c := range m.ToolCalls {
			calls[c.ID] = c
		}
		if m.Role == openai.ChatMessageRoleTool {
			c := calls[m.ToolCallID]
			out = append(out, ToolResult{CallID: m.ToolCallID, Tool: c.Function.Name, Args: c.Function.Arguments, Content: m.Content})
		}
	}
	return out
}

// toolName is what OpenAI accepts as a function name.
var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// check reports what a real server would refuse in req.
func check(req *openai.ChatCompletionRequest) []string {
	var bad []string
	seen := map[string]bool{}
	for i, t := range req.Tools {
		if t.Type != openai.ToolTypeFunction || t.Function == nil {
			bad = append(bad, fmt.Sprintf("tools[%d]: not a function", i))
			continue
		}
		f := t.Function
		if !toolName.MatchString(f.Name) || seen[f.Name] {
			bad = append(bad, fmt.Sprintf("tools[%d]: name %q invalid or repeated", i, f.Name))
		}
		seen[f.Name] = true
		if f.Description == "" {
			bad = append(bad, fmt.Sprintf("tool %s: no description", f.Name))
		}
		bad = append(bad, checkSchema(f.Name, f.Parameters)...)
	}
	// Every call is answered by a tool message before the next assistant
	// message, and every tool message answers a call.
	open := map[string]bool{}
	for i, m := range req.Messages {
		switch m.Role {
		case openai.ChatMessageRoleAssistant:
			if len(open) > 0 {
				bad = append(bad, fmt.Sprintf("messages[%d]: calls %v were not answered", i, keys(open)))
			}
			open = map[string]bool{}
			for _, c := range m.ToolCalls {
				open[c.ID] = true
			}
		case openai.ChatMessageRoleTool:
			if !open[m.ToolCallID] {
				bad = append(bad, fmt.Sprintf("messages[%d]: tool result for unknown call %q", i, m.ToolCallID))
			}
			delete(open, m.ToolCallID)
		}
	}
	if len(open) > 0 {
		bad = append(bad, fmt.Sprintf("calls %v were not answered", keys(open)))
	}
	return bad
}

// checkSchema checks a function's parameters: a JSON Schema object whose
// properties are schemas with a type (or anyOf), as OpenAI's validator and
// Ollama's template need.
func checkSchema(name string, params any) []string {
	b, err := json.Marshal(params)
	if err != nil {
		return []string{fmt.Sprintf("tool %s: parameters: %v", name, err)}
	}
	var s struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Type != "object" {
		return []string{fmt.Sprintf("tool %s: parameters are not an object schema: %s", name, b)}
	}
	var bad []string
	for p, raw := range s.Properties {
		var ps map[string]any
		if err := json.Unmarshal(raw, &ps); err != nil {
			bad = append(bad, fmt.Sprintf("tool %s: property %s: %v", name, p, err))
			continue
		}
		_, hasType := ps["type"]
		_, hasAny := ps["anyOf"]
		if !hasType && !hasAny {
			bad = append(bad, fmt.Sprintf("tool %s: property %s has no type", name, p))
		}
	}
	for _, r := range s.Required {
		if _, ok := s.Properties[r]; !ok {
			bad = append(bad, fmt.Sprintf("tool %s: required %s is not a property", name, r))
		}
	}
	return bad
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req openai.ChatCompletionRequest
	if err := json.Unmarshal(body, &req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.bodies = append(s.bodies, string(body))
	refuse, script, prompt := s.refuseTools, s.script, s.promptTokens
	s.mu.Unlock()
	if bad := check(&req); len(bad) > 0 {
		s.t.Errorf("agenttest: the request is one a real server refuses:\n  %s", strings.Join(bad, "\n  "))
		apiError(w, http.StatusBadRequest, strings.Join(bad, "; "))
		return
	}
	if refuse && len(req.Tools) > 0 {
		apiError(w, http.StatusBadRequest, "registry.ollama.ai/library/"+req.Model+" does not support tools")
		return
	}
	if req.Stream {
		apiError(w, http.StatusBadRequest, "agenttest does not stream")
		return
	}
	turn := 0
	for _, m := range req.Messages {
		if m.Role == openai.ChatMessageRoleAssistant {
			turn++
		}
	}
	reply := script(&req, turn)
	if req.ToolChoice == "none" || len(req.Tools) == 0 {
		reply.Calls = nil // a final answer was asked for
		if reply.Text == "" {
			reply.Text = "Final answer without tools."
		}
	}
	msg := openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: reply.Text}
	finish := openai.FinishReasonStop
	for i, c := range reply.Calls {
		args, ok := c.Args.(string)
		if !ok {
			b, _ := json.Marshal(c.Args)
			args = string(b)
		}
		msg.ToolCalls = append(msg.ToolCalls, openai.ToolCall{
			ID: fmt.Sprintf("call_%d_%d", turn, i), Type: openai.ToolTypeFunction,
			Function: openai.FunctionCall{Name: c.Name, Arguments: args},
		})
		finish = openai.FinishReasonToolCalls
	}
	writeJSON(w, http.StatusOK, openai.ChatCompletionResponse{
		ID: fmt.Sprintf("chatcmpl-%d", turn), Object: "chat.completion", Model: req.Model,
		Choices: []openai.ChatCompletionChoice{{Index: 0, Message: msg, FinishReason: finish}},
		Usage:   openai.Usage{PromptTokens: prompt, CompletionTokens: 20, TotalTokens: prompt + 20},
	})
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "code": nil}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
