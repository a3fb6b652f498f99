//go:build linux

package ollamatest

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/ai"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/knowledge"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/embedded"
	"github.com/medichq/medic/rag/llm"
)

var (
	once   sync.Once
	server *Server
	setup  error
)

// ollama starts one server for the package's tests (built on first use).
func ollama(t *testing.T) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("real Ollama test: skipped with -short (it builds Ollama from source, about 7-8 minutes the first time)")
	}
	once.Do(func() {
		bin, err := Binary()
		if err != nil {
			setup = err
			return
		}
		dir, err := os.MkdirTemp("", "medic-ollama-")
		if err != nil {
			setup = err
			return
		}
		server, setup = Start(bin, dir)
	})
	if setup != nil {
		t.Fatalf("ollama: %v", setup)
	}
	return server
}

func TestMain(m *testing.M) {
	code := m.Run()
	if server != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "ollama output (tail):\n%s\n", server.Output())
		}
		server.Stop()
	}
	os.Exit(code)
}

func client(t *testing.T, s *Server) *llm.Client {
	t.Helper()
	c, err := llm.New(llm.Config{
		BaseURL: s.BaseURL(), ChatModel: ChatModel, EmbeddingModel: EmbedModel,
		Timeout: 2 * time.Minute, MaxRetries: 1, MaxTokens: 16,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var question = rag.ChatRequest{Messages: []rag.Message{{Role: "system", Content: "You help on-call engineers."}, {Role: "user", Content: "Why is the pod crashing?"}}}

func TestChat(t *testing.T) {
	c := client(t, ollama(t))
	resp, err := c.Complete(context.Background(), question)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(resp.Content) == "" || resp.PromptTokens == 0 || resp.OutputTokens == 0 || resp.FinishReason == "" {
		t.Errorf("response %+v", resp)
	}
	// Temperature 0 is sent, so the answer repeats.
	again, err := c.Complete(context.Background(), question)
	if err != nil || again.Content != resp.Content {
		t.Errorf("second answer %q (%v), first %q", again.Content, err, resp.Content)
	}
}

func TestChatStream(t *testing.T) {
	c := client(t, ollama(t))
	var pieces []string
	resp, err := c.Stream(context.Background(), question, func(s string) error {
		pieces = append(pieces, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pieces) < 2 || strings.Join(pieces, "") != resp.Content || resp.Content == "" {
		t.Errorf("%d pieces, joined %q, content %q", len(pieces), strings.Join(pieces, ""), resp.Content)
	}
	if resp.OutputTokens == 0 {
		t.Errorf("no usage in the stream: %+v", resp)
	}
}

func TestEmbeddings(t *testing.T) {
	c := client(t, ollama(t))
	texts := []string{"disk pressure on node", "the pod is crashing"}
	vecs, err := c.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 2 || len(vecs[0]) == 0 || len(vecs[0]) != len(vecs[1]) {
		t.Fatalf("vectors %d × %d", len(vecs), len(vecs[0]))
	}
	for i, v := range vecs {
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		if math.Abs(math.Sqrt(n)-1) > 1e-3 {
			t.Errorf("vector %d has length %v", i, math.Sqrt(n))
		}
	}
	again, err := c.Embed(context.Background(), texts[:1])
	if err != nil {
		t.Fatal(err)
	}
	for i := range again[0] {
		if again[0][i] != vecs[0][i] {
			t.Fatal("the same text embedded twice differs")
		}
	}
}

func TestUnknownModelIsAClearError(t *testing.T) {
	c := client(t, ollama(t)).WithChatModel("no-such-model")
	_, err := c.Complete(context.Background(), question)
	if err == nil || llm.StatusCode(err) != 404 {
		t.Fatalf("error %v", err)
	}
}

// TestAskAIEndToEnd: the default runbooks embedded by tiny-embed into the
// embedded store, then ask_ai (mode auto) explains a crash-looping pod with
// tiny-chat. The words are meaningless; the test checks the plumbing: an
// "AI explanation" enrichment with the model's text, the linked runbook as
// citation [1], the secret in the logs redacted and counted.
func TestAskAIEndToEnd(t *testing.T) {
	s := ollama(t)
	c := client(t, s)
	ctx := context.Background()
	store, err := embedded.Open(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	in := &rag.Ingester{Store: store, Embedder: c, URLFor: knowledge.RunbookURL}
	rep, err := in.Ingest(ctx, knowledge.Root, knowledge.Runbooks())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Added != 108 {
		t.Fatalf("ingest %+v", rep)
	}
	srcs, _ := store.Sources(ctx)
	if srcs[0].EmbeddingModel != EmbedModel {
		t.Fatalf("embedded with %q", srcs[0].EmbeddingModel)
	}
	red, _ := rag.NewRedactor(nil)
	retr := &rag.Retriever{Store: store, Embedder: c, Redactor: red}
	// Hybrid search through Ollama's embeddings runs.
	if hits, err := retr.Search(ctx, "pod crash looping", 3, 1); err != nil || len(hits) == 0 {
		t.Fatalf("hybrid search: %v %v", hits, err)
	}
	svc := &rag.Service{Retriever: retr, Chat: c, Redactor: red, TokenBudget: 1500, MaxTokens: 16}

	var node yaml.Node
	if err := yaml.Unmarshal([]byte("{mode: auto, max_tokens: 16}"), &node); err != nil {
		t.Fatal(err)
	}
	registered := actions.NewRegistry()
	ai.Register(registered)
	act, err := registered.Build("ask_ai", node.Content[0])
	if err != nil {
		t.Fatal(err)
	}
	f := event.NewFinding(event.Event{
		ID: "e1", Kind: event.KindPrometheusAlert, Status: event.StatusFiring, Severity: event.SeverityWarning,
		Title:       "Pod shop/cart-7d9 (app) is in waiting state (reason: CrashLoopBackOff).",
		Labels:      map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9"},
		Annotations: map[string]string{"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping"},
	}, time.Now())
	f.Add(event.Enrichment{Title: "Logs", Blocks: []event.Block{event.LogTextBlock("shop/cart-7d9 app (previous)",
		"connecting to postgres://cart:s3cr3t-pass@db:5432/cart\npanic: database unreachable", false)}})
	if err := act.Run(ctx, &actions.Env{AI: svc, KB: retr}, f); err != nil {
		t.Fatal(err)
	}
	var got *event.Enrichment
	for i := range f.Enrichments {
		if f.Enrichments[i].Title == rag.ExplanationTitle {
			got = &f.Enrichments[i]
		}
	}
	if got == nil {
		t.Fatalf("no AI explanation in %+v", f.Enrichments)
	}
	text := got.Blocks[0].Markdown
	if strings.HasPrefix(text, "AI unavailable") || strings.TrimSpace(text) == "" {
		t.Fatalf("explanation: %q", text)
	}
	var links []event.Link
	var footer string
	for _, b := range got.Blocks {
		if b.Kind == event.BlockLinks {
			links = append(links, b.Links...)
		}
		if b.Kind == event.BlockMarkdown {
			footer = b.Markdown
		}
	}
	if len(links) == 0 || !strings.HasPrefix(links[0].Label, "[1] ") || links[0].URL != knowledge.RunbookURL("kubernetes/KubePodCrashLooping.md") {
		t.Errorf("citations %+v", links)
	}
	if !strings.Contains(footer, "model "+ChatModel) || !strings.Contains(footer, "1 secret redacted") {
		t.Errorf("footer %q", footer)
	}
}
