package llm_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/llm"
	"github.com/medichq/medic/rag/ragtest"
)

func newClient(t *testing.T, srv *ragtest.Server, mod func(*llm.Config)) *llm.Client {
	t.Helper()
	cfg := llm.Config{
		BaseURL: srv.BaseURL(), APIKey: "sk-test", ChatModel: "gpt-test", EmbeddingModel: "embed-test",
		Timeout: 5 * time.Second, MaxRetries: 2, MaxTokens: 100,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := llm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var question = rag.ChatRequest{Messages: []rag.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "why?"}}}

func TestChat(t *testing.T) {
	srv := ragtest.New(t)
	c := newClient(t, srv, nil)
	resp, err := c.Complete(context.Background(), question)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Content != ragtest.Answer || resp.Model != "gpt-test" || resp.FinishReason != "stop" || resp.PromptTokens == 0 || resp.OutputTokens == 0 {
		t.Errorf("response %+v", resp)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Chat == nil {
		t.Fatalf("requests %+v", reqs)
	}
	got := reqs[0].Chat
	if got.Model != "gpt-test" || got.MaxTokens != 100 || got.Stream || len(got.Messages) != 2 || got.Messages[1].Content != "why?" {
		t.Errorf("request %+v", got)
	}
	if reqs[0].Auth != "Bearer sk-test" {
		t.Errorf("Authorization %q", reqs[0].Auth)
	}
}

func TestChatStream(t *testing.T) {
	srv := ragtest.New(t)
	c := newClient(t, srv, nil)
	var pieces []string
	resp, err := c.Stream(context.Background(), question, func(s string) error {
		pieces = append(pieces, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pieces) < 10 || strings.Join(pieces, "") != ragtest.Answer || resp.Content != ragtest.Answer {
		t.Errorf("%d pieces %q, content %q", len(pieces), strings.Join(pieces, ""), resp.Content)
	}
	if resp.FinishReason != "stop" || resp.OutputTokens == 0 {
		t.Errorf("response %+v (usage comes in the last chunk)", resp)
	}
	if r := srv.Requests()[0].Chat; !r.Stream || r.StreamOptions == nil || !r.StreamOptions.IncludeUsage {
		t.Errorf("request %+v", r)
	}
}

func TestEmbeddings(t *testing.T) {
	srv := ragtest.New(t)
	c := newClient(t, srv, nil)
	texts := make([]string, 70) // more than one request's worth
	for i := range texts {
		texts[i] = strings.Repeat("word ", i+1)
	}
	texts[0] = "disk pressure on node"
	vecs, err := c.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != len(texts) {
		t.Fatalf("%d vectors for %d texts", len(vecs), len(texts))
	}
	want := ragtest.Vector(texts[0], 32)
	for i := range want {
		if vecs[0][i] != want[i] {
			t.Fatalf("vector 0 differs at %d: order lost?", i)
		}
	}
	if n := srv.Count("/v1/embeddings"); n != 2 {
		t.Errorf("%d requests, want 2 batches", n)
	}
	if r := srv.Requests()[0].Embed; string(r.Model) != "embed-test" || r.EncodingFormat != "float" {
		t.Errorf("request %+v", r)
	}
}

func TestRetriesOn429And5xx(t *testing.T) {
	srv := ragtest.New(t)
	c := newClient(t, srv, nil)
	srv.FailNext(http.StatusTooManyRequests, http.StatusInternalServerError)
	resp, err := c.Complete(context.Background(), question)
	if err != nil {
		t.Fatalf("after a 429 and a 500, the third try should answer: %v", err)
	}
	if resp.Content != ragtest.Answer || srv.Count("/v1/chat/completions") != 3 {
		t.Errorf("%d requests", srv.Count("/v1/chat/completions"))
	}
	// Streams and embeddings retry the same way.
	srv.FailNext(http.StatusServiceUnavailable)
	if _, err := c.Stream(context.Background(), question, nil); err != nil {
		t.Errorf("stream: %v", err)
	}
	srv.FailNext(http.StatusTooManyRequests)
	if _, err := c.Embed(context.Background(), []string{"x"}); err != nil {
		t.Errorf("embed: %v", err)
	}
}

func TestGivesUpAfterMaxRetries(t *testing.T) {
	srv := ragtest.New(t)
	c := newClient(t, srv, nil)
	srv.SetDown(http.StatusInternalServerError)
	_, err := c.Complete(context.Background(), question)
	var e *llm.Error
	if !errors.As(err, &e) || e.Status != 500 || e.Attempts != 3 {
		t.Fatalf("error %v (%#v)", err, e)
	}
	if !strings.Contains(err.Error(), "HTTP 500") || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("message %q", err)
	}
	if n := srv.Count("/v1/chat/completions"); n != 3 {
		t.Errorf("%d requests, want 1 + 2 retries", n)
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	srv := ragtest.New(t)
	c := newClient(t, srv, nil)
	srv.FailNext(http.StatusUnauthorized)
	if _, err := c.Complete(context.Background(), question); err == nil || llm.StatusCode(err) != 401 {
		t.Fatalf("error %v", err)
	}
	if n := srv.Count("/v1/chat/completions"); n != 1 {
		t.Errorf("%d requests for a 401", n)
	}
}

func TestNetworkErrorIsRetriedThenReported(t *testing.T) {
	srv := ragtest.New(t)
	url := srv.BaseURL()
	srv.Close() // nothing listens any more
	c, err := llm.New(llm.Config{BaseURL: url, ChatModel: "m", MaxRetries: 1, Timeout: time.Second, BackoffBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Complete(context.Background(), question)
	var e *llm.Error
	if !errors.As(err, &e) || e.Attempts != 2 || e.Status != 0 {
		t.Fatalf("error %v", err)
	}
}

func TestTimeoutPerAttempt(t *testing.T) {
	srv := ragtest.New(t)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	srv.SetReply(func(openai.ChatCompletionRequest) string { <-block; return "late" })
	c := newClient(t, srv, func(c *llm.Config) { c.Timeout = 50 * time.Millisecond; c.MaxRetries = 1 })
	_, err := c.Complete(context.Background(), question)
	if err == nil || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("error %v", err)
	}
}

func TestTokenBudgetRefusesLargePrompts(t *testing.T) {
	srv := ragtest.New(t)
	c := newClient(t, srv, func(c *llm.Config) { c.TokenBudget = 100 })
	big := rag.ChatRequest{Messages: []rag.Message{{Role: "user", Content: strings.Repeat("word ", 200)}}}
	if _, err := c.Complete(context.Background(), big); err == nil || !strings.Contains(err.Error(), "token budget") {
		t.Fatalf("error %v", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestClientsAreImmutable(t *testing.T) {
	srv := ragtest.New(t)
	c := newClient(t, srv, nil)
	other := c.WithChatModel("other-model")
	if c.ChatModel() != "gpt-test" || other.ChatModel() != "other-model" || c == other {
		t.Fatalf("models %q, %q", c.ChatModel(), other.ChatModel())
	}
	if _, err := other.Complete(context.Background(), question); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Complete(context.Background(), rag.ChatRequest{Messages: question.Messages, Model: "per-request"}); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if reqs[0].Chat.Model != "other-model" || reqs[1].Chat.Model != "per-request" {
		t.Errorf("models sent: %q, %q", reqs[0].Chat.Model, reqs[1].Chat.Model)
	}
	cfg := c.Config()
	cfg.ChatModel = "mutated"
	if c.ChatModel() != "gpt-test" {
		t.Error("Config() exposes the client's state")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []llm.Config{
		{BaseURL: "ftp://x", ChatModel: "m"},
		{BaseURL: "http://localhost:11434/v1"},
	} {
		if _, err := llm.New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	c, err := llm.New(llm.Config{ChatModel: "gpt-4o-mini"})
	if err != nil || c.Config().BaseURL != llm.OpenAIBaseURL {
		t.Errorf("default base URL: %v %v", c, err)
	}
}
