// Package ragtest is an OpenAI-compatible test server: it speaks the real
// wire format of POST /v1/chat/completions (JSON and server-sent-event
// streams, with usage), POST /v1/embeddings and OpenAI's error bodies, and
// can be told to answer 429 or 500 for a while. Tests of medic's AI (and of
// the chat sinks' Ask AI buttons) point the client at it and read back what
// medic sent.
package ragtest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// Server is a running fake. Its zero configuration answers every chat with
// a fixed four-section explanation citing [1] and every embedding with a
// deterministic bag-of-words vector.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	failures []int // status codes to answer with, first to last
	down     int   // when non-zero, every request gets this status
	reply    func(req openai.ChatCompletionRequest) string
	requests []Request
	dims     int
}

// Request is one request the server received.
type Request struct {
	Path  string
	Body  []byte
	Auth  string
	Chat  *openai.ChatCompletionRequest
	Embed *openai.EmbeddingRequest
}

// Answer is the default reply: the four sections ask_ai asks for.
const Answer = `## What is happening
The pod restarts again and again [1].

## Likely causes
A bad configuration or a missing dependency [1].

## What to check
The previous container's logs and the pod's events [1].

## How to fix
Fix the configuration and roll out again [1].`

// New starts a server, stopped at the end of the test.
func New(t testing.TB) *Server {
	s := &Server{dims: 32}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("POST /v1/embeddings", s.embeddings)
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []any{}})
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// BaseURL is what ai.base_url should be.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// FailNext makes the next requests answer these statuses, one each.
func (s *Server) FailNext(codes ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, codes...)
}

// SetDown makes every request answer code (0: back up).
func (s *Server) SetDown(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = code
}

// SetReply replaces the chat reply.
func (s *Server) SetReply(f func(req openai.ChatCompletionRequest) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply = f
}

// Requests returns what was received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count is the number of requests to path ("/v1/chat/completions").
func (s *Server) Count(path string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Path == path {
			n++
		}
	}
	return n
}

// AllBodies is every request body, concatenated (for redaction checks).
func (s *Server) AllBodies() string {
	var b strings.Builder
	for _, r := range s.Requests() {
		b.Write(r.Body)
		b.WriteByte('\n')
	}
	return b.String()
}

func (s *Server) record(r *http.Request) (Request, int, bool) {
	body, _ := io.ReadAll(r.Body)
	req := Request{Path: r.URL.Path, Body: body, Auth: r.Header.Get("Authorization")}
	s.mu.Lock()
	defer s.mu.Unlock()
	code := s.down
	if code == 0 && len(s.failures) > 0 {
		code, s.failures = s.failures[0], s.failures[1:]
	}
	s.requests = append(s.requests, req)
	return req, code, code != 0
}

// apiError writes OpenAI's error body.
func apiError(w http.ResponseWriter, code int) {
	typ, msg := "server_error", "The server had an error while processing your request."
	if code == http.StatusTooManyRequests {
		typ, msg = "rate_limit_exceeded", "Rate limit reached for requests. Please try again in 1s."
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	rec, code, fail := s.record(r)
	if fail {
		apiError(w, code)
		return
	}
	var req openai.ChatCompletionRequest
	if err := json.Unmarshal(rec.Body, &req); err != nil || len(req.Messages) == 0 || req.Model == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"message": "invalid request", "type": "invalid_request_error"}})
		return
	}
	s.mu.Lock()
	s.requests[len(s.requests)-1].Chat = &req
	reply := s.reply
	s.mu.Unlock()
	text := Answer
	if reply != nil {
		text = reply(req)
	}
	promptTokens := 0
	for _, m := range req.Messages {
		promptTokens += len(strings.Fields(m.Content))
	}
	words := strings.SplitAfter(text, " ")
	usage := openai.Usage{PromptTokens: promptTokens, CompletionTokens: len(words), TotalTokens: promptTokens + len(words)}
	id, created := "chatcmpl-ragtest", time.Now().Unix()
	if !req.Stream {
		writeJSON(w, http.StatusOK, openai.ChatCompletionResponse{
			ID: id, Object: "chat.completion", Created: created, Model: req.Model,
			Choices: []openai.ChatCompletionChoice{{Index: 0, FinishReason: openai.FinishReasonStop,
				Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: text}}},
			Usage: usage,
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	chunk := func(delta openai.ChatCompletionStreamChoiceDelta, finish openai.FinishReason) openai.ChatCompletionStreamResponse {
		return openai.ChatCompletionStreamResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model,
			Choices: []openai.ChatCompletionStreamChoice{{Index: 0, Delta: delta, FinishReason: finish}}}
	}
	send(chunk(openai.ChatCompletionStreamChoiceDelta{Role: openai.ChatMessageRoleAssistant}, ""))
	for _, wd := range words {
		send(chunk(openai.ChatCompletionStreamChoiceDelta{Content: wd}, ""))
	}
	send(chunk(openai.ChatCompletionStreamChoiceDelta{}, openai.FinishReasonStop))
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		send(openai.ChatCompletionStreamResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model,
			Choices: []openai.ChatCompletionStreamChoice{}, Usage: &usage})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	if fl != nil {
		fl.Flush()
	}
}

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	rec, code, fail := s.record(r)
	if fail {
		apiError(w, code)
		return
	}
	var req openai.EmbeddingRequest
	if err := json.Unmarshal(rec.Body, &req); err != nil || req.Model == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"message": "invalid request", "type": "invalid_request_error"}})
		return
	}
	s.mu.Lock()
	s.requests[len(s.requests)-1].Embed = &req
	dims := s.dims
	s.mu.Unlock()
	var inputs []string
	switch in := req.Input.(type) {
	case string:
		inputs = []string{in}
	case []any:
		for _, x := range in {
			str, _ := x.(string)
			inputs = append(inputs, str)
		}
	}
	resp := openai.EmbeddingResponse{Object: "list", Model: req.Model}
	tokens := 0
	for i, in := range inputs {
		resp.Data = append(resp.Data, openai.Embedding{Object: "embedding", Index: i, Embedding: Vector(in, dims)})
		tokens += len(strings.Fields(in))
	}
	resp.Usage = openai.Usage{PromptTokens: tokens, TotalTokens: tokens}
	writeJSON(w, http.StatusOK, resp)
}

// Vector is the server's embedding of text: words hashed into dims
// buckets, unit length.
func Vector(text string, dims int) []float32 {
	v := make([]float32, dims)
	for _, w := range strings.Fields(strings.ToLower(text)) {
		h := fnv.New32a()
		h.Write([]byte(strings.Trim(w, ".,:;!?()[]{}\"'`")))
		v[h.Sum32()%uint32(dims)]++
	}
	var n float64
	for _, x := range v {
		n += float64(x * x)
	}
	if n == 0 {
		v[0], n = 1, 1
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / math.Sqrt(n))
	}
	return v
}
