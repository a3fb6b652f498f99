package eval_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/medichq/medic/agent"
	"github.com/medichq/medic/agent/agenttest"
	"github.com/medichq/medic/agent/eval"
	"github.com/medichq/medic/rag/llm"
)

// holmesFacts are the words of each HolmesGPT case's expected_output.
var holmesFacts = map[string][][]string{
	"04_image_pull_backoff":             {{"yourcompany/crw:latest"}},
	"10_KubeDeploymentReplicasMismatch": {{"nvidia.com/gpu"}},
	"11_KubePodCrashLooping":            {{"DEPLOY_ENV"}},
}

func cases(t *testing.T) []eval.Case {
	t.Helper()
	cs, err := eval.LoadCases(filepath.Join("testdata", "cases.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, facts := range holmesFacts {
		c, err := eval.LoadHolmes(filepath.Join("testdata", "holmes", name), facts)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if len(cs) < 23 {
		t.Fatalf("%d cases", len(cs))
	}
	return cs
}

// parrot is a scripted model that calls every tool the case has a mock
// for, then answers with the tool results it got back: its answer holds
// the facts exactly when the evidence reached the model intact (through
// the loop's redaction, truncation and threading).
func parrot(mocked []string) agenttest.Script {
	return func(req *openai.ChatCompletionRequest, turn int) agenttest.Reply {
		if turn == 0 {
			var calls []agenttest.Call
			for _, name := range mocked {
				calls = append(calls, agenttest.Call{Name: name, Args: map[string]any{}})
			}
			return agenttest.Reply{Calls: calls}
		}
		var b strings.Builder
		for _, r := range agenttest.ToolResults(req) {
			b.WriteString(r.Content)
		}
		b.WriteString(req.Messages[1].Content) // the finding and its evidence
		return agenttest.Reply{Text: b.String()}
	}
}

// TestEvalScripted runs every case through the loop with the scripted
// model: each case's tools are offered with medic's schemas (checked by
// the server), called, and their results come back with every expected
// fact in them — lost facts 0.
func TestEvalScripted(t *testing.T) {
	t.Parallel()
	var scores []eval.Score
	for _, c := range cases(t) {
		var mocked []string
		for name := range c.Mocks {
			mocked = append(mocked, name)
		}
		srv := agenttest.New(t, parrot(mocked))
		client, err := llm.New(llm.Config{BaseURL: srv.BaseURL(), ChatModel: "scripted", Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		s, res, err := eval.Run(context.Background(), c, client, "scripted", agent.Limits{MaxToolOutput: 20000})
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		scores = append(scores, s)
		if s.Found != s.Facts || s.Calls != len(mocked) {
			t.Errorf("%s: %d/%d facts reached the model after %d calls (want %d); missing %v\n%s", c.Name, s.Found, s.Facts, s.Calls, len(mocked), s.Missing, res.Answer)
		}
		if n := len(srv.Requests()[0].Tools); n < 14 {
			t.Errorf("%s: %d tools offered", c.Name, n)
		}
	}
	t.Logf("scripted model (evidence that reached the model):\n%s", eval.Table(scores))
}

// TestEvalRealModel scores a real model on the cases (not in CI):
// MEDIC_EVAL_MODEL names it, MEDIC_EVAL_BASE_URL its OpenAI-compatible API
// (default Ollama on localhost), MEDIC_EVAL_API_KEY its key.
func TestEvalRealModel(t *testing.T) {
	model := os.Getenv("MEDIC_EVAL_MODEL")
	if model == "" {
		t.Skip("set MEDIC_EVAL_MODEL (and MEDIC_EVAL_BASE_URL) to score a real model")
	}
	base := os.Getenv("MEDIC_EVAL_BASE_URL")
	if base == "" {
		base = "http://localhost:11434/v1"
	}
	client, err := llm.New(llm.Config{BaseURL: base, APIKey: os.Getenv("MEDIC_EVAL_API_KEY"), ChatModel: model, Timeout: 5 * time.Minute, MaxTokens: 1200})
	if err != nil {
		t.Fatal(err)
	}
	var scores []eval.Score
	for _, c := range cases(t) {
		s, _, err := eval.Run(context.Background(), c, client, model, agent.Limits{})
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		scores = append(scores, s)
	}
	t.Logf("model %s:\n%s", model, eval.Table(scores))
}
