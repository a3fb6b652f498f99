// Package llm is medic's one client for OpenAI-compatible model servers
// (OpenAI, Ollama's /v1, vLLM, LiteLLM, …), for chat and embeddings, built on
// github.com/sashabaranov/go-openai.
//
// A Client is immutable: New copies the configuration and builds its own
// HTTP client, and WithChatModel returns a new Client. Nothing is shared
// between clients, so a configuration reload or a per-playbook model never
// affects a request in flight.
package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/medichq/medic/rag"
)

// Config configures a Client.
type Config struct {
	// BaseURL of the OpenAI-compatible API, ending in /v1 (Ollama:
	// http://localhost:11434/v1). Empty means OpenAI.
	BaseURL string
	APIKey  string
	// ChatModel and EmbeddingModel name the models; either may be empty
	// when that capability is not used.
	ChatModel      string
	EmbeddingModel string
	// Timeout bounds one attempt of one request (a whole stream included).
	Timeout time.Duration
	// MaxRetries is how many times a 429, a 5xx or a network error is
	// retried, with exponential back-off and jitter.
	MaxRetries int
	// MaxTokens bounds an answer when the request does not.
	MaxTokens int
	// TokenBudget bounds the estimated prompt size of one request (0: no
	// limit); a larger prompt is refused before anything is sent.
	TokenBudget int
	// Temperature of chat answers (0 is sent as 0: deterministic).
	Temperature float32
	// BackoffBase and BackoffMax shape the back-off (defaults 500ms, 10s).
	BackoffBase, BackoffMax time.Duration
	// Transport overrides the HTTP transport (tests).
	Transport http.RoundTripper
}

// OpenAIBaseURL is used when BaseURL is empty.
const OpenAIBaseURL = "https://api.openai.com/v1"

// Client talks to one server with one configuration.
type Client struct {
	cfg Config
	oc  *openai.Client
}

var (
	_ rag.Chat     = (*Client)(nil)
	_ rag.Embedder = (*Client)(nil)
)

// New validates cfg and returns a fresh client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = OpenAIBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("llm: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.ChatModel == "" && cfg.EmbeddingModel == "" {
		return nil, errors.New("llm: neither a chat model nor an embedding model is configured")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 500 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 10 * time.Second
	}
	transport := cfg.Transport
	if transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = cfg.Timeout
		transport = t
	}
	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = cfg.BaseURL
	// No client-wide timeout: each attempt has its own context deadline,
	// which also covers streams.
	oc.HTTPClient = &http.Client{Transport: transport}
	return &Client{cfg: cfg, oc: openai.NewClientWithConfig(oc)}, nil
}

// WithChatModel returns a new client that uses model for chat (the receiver
// is unchanged).
func (c *Client) WithChatModel(model string) *Client {
	if model == "" || model == c.cfg.ChatModel {
		return c
	}
	cp := *c
	cp.cfg.ChatModel = model
	return &cp
}

// Config returns the client's configuration (a copy).
func (c *Client) Config() Config { return c.cfg }

// ChatModel implements rag.Chat.
func (c *Client) ChatModel() string { return c.cfg.ChatModel }

// EmbeddingModel implements rag.Embedder.
func (c *Client) EmbeddingModel() string { return c.cfg.EmbeddingModel }

func (c *Client) chatRequest(req rag.ChatRequest, stream bool) (openai.ChatCompletionRequest, error) {
	model := req.Model
	if model == "" {
		model = c.cfg.ChatModel
	}
	if model == "" {
		return openai.ChatCompletionRequest{}, rag.ErrNotConfigured
	}
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = c.cfg.MaxTokens
	}
	msgs := make([]openai.ChatCompletionMessage, len(req.Messages))
	est := 0
	for i, m := range req.Messages {
		msgs[i] = openai.ChatCompletionMessage{Role: m.Role, Content: m.Content}
		est += rag.EstimateTokens(m.Content) + 4
	}
	if c.cfg.TokenBudget > 0 && est > c.cfg.TokenBudget {
		return openai.ChatCompletionRequest{}, fmt.Errorf("llm: prompt of about %d tokens exceeds the token budget of %d", est, c.cfg.TokenBudget)
	}
	r := openai.ChatCompletionRequest{
		Model:       model,
		Messages:    msgs,
		MaxTokens:   maxTokens,
		Temperature: c.cfg.Temperature,
		Stream:      stream,
	}
	if c.cfg.Temperature == 0 {
		// go-openai drops a zero temperature (omitempty), and servers then
		// use their own default (Ollama: 1.0); a tiny one is as good as 0.
		r.Temperature = 1e-6
	}
	if stream {
		r.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	}
	return r, nil
}

// Complete implements rag.Chat.
func (c *Client) Complete(ctx context.Context, req rag.ChatRequest) (rag.ChatResponse, error) {
	oreq, err := c.chatRequest(req, false)
	if err != nil {
		return rag.ChatResponse{}, err
	}
	var out rag.ChatResponse
	err = c.retry(ctx, "chat", func(ctx context.Context) error {
		resp, err := c.oc.CreateChatCompletion(ctx, oreq)
		if err != nil {
			return err
		}
		if len(resp.Choices) == 0 {
			return errors.New("answer has no choices")
		}
		out = rag.ChatResponse{
			Content:      resp.Choices[0].Message.Content,
			Model:        resp.Model,
			FinishReason: string(resp.Choices[0].FinishReason),
			PromptTokens: resp.Usage.PromptTokens,
			OutputTokens: resp.Usage.CompletionTokens,
		}
		return nil
	})
	return out, err
}

// errStarted marks a stream that failed after text was delivered: it is not
// retried, since the caller already showed part of an answer.
type errStarted struct{ err error }

func (e errStarted) Error() string { return e.err.Error() }
func (e errStarted) Unwrap() error { return e.err }

// Stream implements rag.Chat. A failure before the first piece of text is
// retried like any request; after it, the error is returned.
func (c *Client) Stream(ctx context.Context, req rag.ChatRequest, onDelta func(string) error) (rag.ChatResponse, error) {
	oreq, err := c.chatRequest(req, true)
	if err != nil {
		return rag.ChatResponse{}, err
	}
	var out rag.ChatResponse
	err = c.retry(ctx, "chat stream", func(ctx context.Context) error {
		s, err := c.oc.CreateChatCompletionStream(ctx, oreq)
		if err != nil {
			return err
		}
		defer s.Close()
		var b strings.Builder
		resp := rag.ChatResponse{Model: oreq.Model}
		for {
			chunk, err := s.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if b.Len() > 0 {
					return errStarted{err}
				}
				return err
			}
			if chunk.Model != "" {
				resp.Model = chunk.Model
			}
			if chunk.Usage != nil {
				resp.PromptTokens = chunk.Usage.PromptTokens
				resp.OutputTokens = chunk.Usage.CompletionTokens
			}
			for _, ch := range chunk.Choices {
				if ch.FinishReason != "" {
					resp.FinishReason = string(ch.FinishReason)
				}
				if d := ch.Delta.Content; d != "" {
					b.WriteString(d)
					if onDelta != nil {
						if err := onDelta(d); err != nil {
							return errStarted{err}
						}
					}
				}
			}
		}
		resp.Content = b.String()
		out = resp
		return nil
	})
	return out, err
}

// embedBatch bounds the inputs of one embeddings request.
const embedBatch = 64

// Embed implements rag.Embedder.
func (c *Client) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if c.cfg.EmbeddingModel == "" {
		return nil, errors.New("llm: no embedding model configured")
	}
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += embedBatch {
		part := texts[start:min(start+embedBatch, len(texts))]
		var vecs [][]float32
		err := c.retry(ctx, "embeddings", func(ctx context.Context) error {
			resp, err := c.oc.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{
				Input:          part,
				Model:          openai.EmbeddingModel(c.cfg.EmbeddingModel),
				EncodingFormat: openai.EmbeddingEncodingFormatFloat,
			})
			if err != nil {
				return err
			}
			if len(resp.Data) != len(part) {
				return fmt.Errorf("%d embeddings for %d inputs", len(resp.Data), len(part))
			}
			data := resp.Data
			sort.Slice(data, func(i, j int) bool { return data[i].Index < data[j].Index })
			vecs = make([][]float32, len(data))
			for i, d := range data {
				vecs[i] = d.Embedding
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, vecs...)
	}
	return out, nil
}

// retry runs fn with a fresh per-attempt timeout, retrying retryable
// failures with exponential back-off and full jitter.
func (c *Client) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	var err error
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		err = fn(actx)
		// Either the attempt's context or the transport's header timeout
		// (both set to cfg.Timeout) may fire first; both mean "too slow".
		timedOut := (actx.Err() != nil || isTimeout(err)) && ctx.Err() == nil
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if timedOut {
			err = fmt.Errorf("no answer within %s: %w", c.cfg.Timeout, err)
		}
		if attempt >= c.cfg.MaxRetries || !(timedOut || Retryable(err)) {
			break
		}
		d := c.backoff(attempt)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
	return &Error{Op: what, Status: StatusCode(err), Attempts: attempts(err, c.cfg.MaxRetries), Err: err}
}

// Error is a request that failed for good.
type Error struct {
	Op       string // chat, chat stream, embeddings
	Status   int    // HTTP status, 0 for network errors
	Attempts int
	Err      error
}

func (e *Error) Error() string {
	s := e.Op + ": " + describe(e.Err)
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func attempts(err error, maxRetries int) int {
	if Retryable(err) || errors.Is(err, context.DeadlineExceeded) {
		return maxRetries + 1
	}
	return 1
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BackoffBase << min(attempt, 20)
	if d <= 0 || d > c.cfg.BackoffMax {
		d = c.cfg.BackoffMax
	}
	// Full jitter, never below half the step.
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// StatusCode is the HTTP status of a failed request, or 0.
func StatusCode(err error) int {
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) {
		return apiErr.HTTPStatusCode
	}
	var reqErr *openai.RequestError
	if errors.As(err, &reqErr) {
		return reqErr.HTTPStatusCode
	}
	return 0
}

// Retryable reports whether a failure is worth another try: rate limits,
// server errors and network errors; never a started stream.
func Retryable(err error) bool {
	var started errStarted
	if errors.As(err, &started) {
		return false
	}
	switch code := StatusCode(err); {
	case code == http.StatusTooManyRequests, code == http.StatusRequestTimeout, code >= 500:
		return true
	case code != 0:
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "connection refused")
}

// describe makes a failure readable: "HTTP 503: model is loading".
func describe(err error) string {
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("HTTP %d: %s", apiErr.HTTPStatusCode, firstLine(apiErr.Message))
	}
	var reqErr *openai.RequestError
	if errors.As(err, &reqErr) {
		msg := strings.TrimSpace(string(reqErr.Body))
		if msg == "" && reqErr.Err != nil {
			msg = reqErr.Err.Error()
		}
		return fmt.Sprintf("HTTP %d: %s", reqErr.HTTPStatusCode, firstLine(msg))
	}
	return firstLine(err.Error())
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
