package rag

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medichq/medic/event"
)

// fakeChat records requests and answers with a fixed text.
type fakeChat struct {
	mu    sync.Mutex
	reqs  []ChatRequest
	reply string
	err   error
}

func (c *fakeChat) Complete(_ context.Context, r ChatRequest) (ChatResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, r)
	if c.err != nil {
		return ChatResponse{}, c.err
	}
	return ChatResponse{Content: c.reply, Model: r.Model}, nil
}

func (c *fakeChat) Stream(ctx context.Context, r ChatRequest, on func(string) error) (ChatResponse, error) {
	resp, err := c.Complete(ctx, r)
	if err == nil && on != nil {
		for _, w := range strings.SplitAfter(resp.Content, " ") {
			if err := on(w); err != nil {
				return resp, err
			}
		}
	}
	return resp, err
}

func (c *fakeChat) ChatModel() string { return "fake-model" }

type memCache struct {
	mu sync.Mutex
	m  map[string]Answer
}

func (c *memCache) Get(_ context.Context, k string) (Answer, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[k]
	return a, ok, nil
}

func (c *memCache) Put(_ context.Context, k string, a Answer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]Answer{}
	}
	c.m[k] = a
	return nil
}

// memStore is a tiny Store: every chunk matches every query.
type memStore struct{ chunks []Chunk }

func (s *memStore) Upsert(context.Context, []Chunk) error              { return nil }
func (s *memStore) DeleteSource(context.Context, string, string) error { return nil }
func (s *memStore) DeleteAll(context.Context) error                    { return nil }
func (s *memStore) Sources(context.Context) ([]SourceInfo, error)      { return nil, nil }
func (s *memStore) Version(context.Context) (string, error)            { return "v1", nil }
func (s *memStore) Close() error                                       { return nil }
func (s *memStore) Search(_ context.Context, q Query) ([]Hit, error) {
	var out []Hit
	for i, c := range s.chunks {
		if q.Alert != "" && !containsFold(c.RunbookFor, q.Alert) {
			continue
		}
		if q.RunbookURL != "" && NormalizeURL(c.URL) != NormalizeURL(q.RunbookURL) {
			continue
		}
		out = append(out, Hit{Chunk: c, Score: float64(len(s.chunks) - i)})
	}
	return out, nil
}

const sectionsReply = "## What is happening\nThe pod crashes [1].\n\n## Likely causes\nBad config [1].\n\n## What to check\nLogs.\n\n## How to fix\nRoll back."

func testFinding() *event.Finding {
	f := event.NewFinding(event.Event{
		ID: "abc", Kind: event.KindPrometheusAlert, Status: event.StatusFiring, Severity: event.SeverityCritical,
		Title:       "cart-7d9 is crash looping",
		Labels:      map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9"},
		Annotations: map[string]string{"summary": "Pod is crash looping.", "runbook_url": "https://runbooks.example/kubepodcrashlooping"},
		StartsAt:    time.Unix(1, 0), ReceivedAt: time.Now(),
	}, time.Now())
	f.Add(event.Enrichment{Title: "Pod status", Blocks: []event.Block{event.KeyValueBlock([][2]string{{"Reason", "CrashLoopBackOff"}, {"Restarts", "12"}})}})
	f.Add(event.Enrichment{Title: "Kubernetes events", Blocks: []event.Block{{Kind: event.BlockTable, Table: &event.TableBlock{
		Headers: []string{"Type", "Reason", "Message"}, Rows: [][]string{{"Warning", "BackOff", "Back-off restarting failed container"}}}}}})
	f.Add(event.Enrichment{Title: "Logs", Blocks: []event.Block{event.LogTextBlock("shop/cart-7d9 app (previous)",
		"starting\nusing password=hunter2-very-secret\nERROR: cannot connect to db: connection refused\npanic: exit", false)}})
	return f
}

func testStore() *memStore {
	return &memStore{chunks: []Chunk{
		{ID: "1", Root: "default", Source: "kubernetes/KubePodCrashLooping.md", Title: "Kube Pod Crash Looping", Heading: "Diagnosis", Text: "Check pod logs.", URL: "https://runbooks.example/kubepodcrashlooping", RunbookFor: []string{"KubePodCrashLooping"}},
		{ID: "2", Root: "default", Source: "kubernetes/KubeContainerWaiting.md", Title: "Kube Container Waiting", Text: "Container waits."},
	}}
}

func TestAnswerNotConfigured(t *testing.T) {
	s := &Service{Retriever: &Retriever{Store: testStore()}}
	_, err := s.Answer(context.Background(), Request{Question: "why?"})
	if !errors.Is(err, ErrNotConfigured) || err.Error() != "AI is not configured" {
		t.Fatalf("error %v", err)
	}
	var nilSvc *Service
	if _, err := nilSvc.Answer(context.Background(), Request{Question: "x"}); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("nil service: %v", err)
	}
}

func TestAnswerFinding(t *testing.T) {
	chat := &fakeChat{reply: sectionsReply}
	cache := &memCache{}
	s := &Service{Retriever: &Retriever{Store: testStore()}, Chat: chat, Cache: cache}
	f := testFinding()
	a, err := s.Answer(context.Background(), Request{Finding: f, MaxTokens: 300})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Sections) != 4 || a.Sections[0].Title != "What is happening" || a.Sections[3].Text != "Roll back." {
		t.Errorf("sections %+v", a.Sections)
	}
	if len(a.Citations) != 2 || !a.Citations[0].Direct || a.Citations[0].Source != "kubernetes/KubePodCrashLooping.md" {
		t.Errorf("citations %+v", a.Citations)
	}
	if a.Redacted.Total() != 1 || a.Model != "fake-model" || a.KBVersion != "v1" || a.Cached {
		t.Errorf("answer %+v", a)
	}
	req := chat.reqs[0]
	user := req.Messages[1].Content
	for _, want := range []string{"alertname=KubePodCrashLooping", "Reason: CrashLoopBackOff", "Back-off restarting failed container",
		"ERROR: cannot connect to db", "[1] Kube Pod Crash Looping — Diagnosis", "Check pod logs.", "password=" + Placeholder} {
		if !strings.Contains(user, want) {
			t.Errorf("prompt lacks %q:\n%s", want, user)
		}
	}
	if strings.Contains(user, "hunter2") || req.MaxTokens != 300 || req.Model != "fake-model" {
		t.Errorf("request: max %d model %q", req.MaxTokens, req.Model)
	}
	// Same evidence, same model, same knowledge base: served from the
	// cache, no second call.
	b, err := s.Answer(context.Background(), Request{Finding: testFinding(), MaxTokens: 300})
	if err != nil || !b.Cached || b.Text != a.Text || len(chat.reqs) != 1 {
		t.Fatalf("second answer cached=%v calls=%d err=%v", b.Cached, len(chat.reqs), err)
	}
	// Another model is another answer.
	if _, err := s.Answer(context.Background(), Request{Finding: testFinding(), MaxTokens: 300, Model: "bigger"}); err != nil || len(chat.reqs) != 2 {
		t.Fatalf("other model: calls=%d err=%v", len(chat.reqs), err)
	}
	if chat.reqs[1].Model != "bigger" {
		t.Errorf("model %q", chat.reqs[1].Model)
	}
}

func TestAnswerQuestionStreams(t *testing.T) {
	chat := &fakeChat{reply: "Check the leader [1]."}
	s := &Service{Retriever: &Retriever{Store: testStore()}, Chat: chat}
	var got strings.Builder
	a, err := s.Answer(context.Background(), Request{Question: "what about etcd?", OnDelta: func(d string) error { got.WriteString(d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != "Check the leader [1]." || a.Text != got.String() || a.Sections != nil || len(a.Citations) == 0 {
		t.Errorf("streamed %q, answer %+v", got.String(), a)
	}
	if !strings.Contains(chat.reqs[0].Messages[1].Content, "what about etcd?") {
		t.Error("question not in the prompt")
	}
}

func TestAnswerModelError(t *testing.T) {
	chat := &fakeChat{err: errors.New("chat: HTTP 500: boom (after 4 attempts)")}
	s := &Service{Retriever: &Retriever{Store: testStore()}, Chat: chat, Cache: &memCache{}}
	_, err := s.Answer(context.Background(), Request{Finding: testFinding()})
	if err == nil {
		t.Fatal("no error")
	}
	e := UnavailableEnrichment(err)
	if e.Title != ExplanationTitle || !strings.HasPrefix(e.Blocks[0].Markdown, "AI unavailable: chat: HTTP 500") {
		t.Errorf("enrichment %+v", e)
	}
}

func TestPromptKeepsToTheBudget(t *testing.T) {
	f := testFinding()
	f.Add(event.Enrichment{Title: "Logs", Blocks: []event.Block{event.LogTextBlock("big", strings.Repeat("noise line\n", 5000)+"LAST LINE", false)}})
	var hits []Hit
	for i := range 20 {
		hits = append(hits, Hit{Chunk: Chunk{Source: "s.md", Title: "T", Text: strings.Repeat("runbook words ", 200), Seq: i}})
	}
	for _, budget := range []int{800, 2000, 6000} {
		p := buildFindingPrompt(f, hits, budget)
		total := 0
		for _, m := range p.messages {
			total += EstimateTokens(m.Content)
		}
		if total > budget {
			t.Errorf("budget %d: prompt of %d tokens", budget, total)
		}
		if !p.trimmed || len(p.citations) == 0 || len(p.citations) == len(hits) {
			t.Errorf("budget %d: trimmed %v, %d citations", budget, p.trimmed, len(p.citations))
		}
		if !strings.Contains(p.messages[1].Content, "LAST LINE") {
			t.Errorf("budget %d: the logs' tail was cut", budget)
		}
	}
}

func TestFindingQuery(t *testing.T) {
	q := FindingQuery(testFinding())
	for _, want := range []string{"KubePodCrashLooping", "cart-7d9 is crash looping", "Pod is crash looping.", "CrashLoopBackOff",
		"Back-off restarting failed container", "ERROR: cannot connect to db: connection refused", "panic: exit"} {
		if !strings.Contains(q, want) {
			t.Errorf("query lacks %q:\n%s", want, q)
		}
	}
	if strings.HasPrefix(q, "starting") || strings.Contains(q, "\nstarting") || strings.Contains(q, "12") {
		t.Errorf("query has non-error lines:\n%s", q)
	}
}

// A runbook is one excerpt and one citation in a prompt, however many of
// its sections were retrieved.
func TestPromptCitesASourceOnce(t *testing.T) {
	hits := []Hit{
		{Chunk: Chunk{Root: "default", Source: "a.md", Title: "A", Heading: "Meaning", Text: "alpha meaning"}, Direct: true},
		{Chunk: Chunk{Root: "default", Source: "a.md", Title: "A", Heading: "Diagnosis", Text: "alpha diagnosis"}, Direct: true},
		{Chunk: Chunk{Root: "default", Source: "b.md", Title: "B", Text: "beta"}},
		{Chunk: Chunk{Root: "team", Source: "a.md", Title: "A (team)", Text: "team copy"}},
	}
	p := buildQuestionPrompt("why?", hits, 4000)
	var got []string
	for _, c := range p.citations {
		got = append(got, c.Root+":"+c.Source)
	}
	if want := []string{"default:a.md", "default:b.md", "team:a.md"}; !slices.Equal(got, want) {
		t.Errorf("citations %v, want %v", got, want)
	}
	body := p.messages[len(p.messages)-1].Content
	if !strings.Contains(body, "alpha meaning") || !strings.Contains(body, "alpha diagnosis") || strings.Count(body, "(a.md)") != 2 {
		t.Errorf("prompt:\n%s", body)
	}
}

// The query keeps the strongest signals and leaves the bulk out.
func TestFindingQueryStrongestSignals(t *testing.T) {
	oom := event.NewFinding(event.Event{
		ID: "x", Kind: event.KindPodOOMKilled, Title: "cart-7d9 was OOMKilled",
		Subject:     event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9"},
		Description: "The container app exceeded its memory limit. It had 512Mi; usage grew for 3 hours while the cache warmed up and the GC could not keep up.",
	}, time.Now())
	var logs strings.Builder
	for i := range 40 {
		fmt.Fprintf(&logs, "ERROR: request %d failed: upstream timeout\n", i)
	}
	logs.WriteString("fatal error: runtime: out of memory\n")
	oom.Add(event.Enrichment{Title: "Logs", Blocks: []event.Block{event.LogTextBlock("shop/cart-7d9 app", logs.String(), false)}})
	oom.Add(event.Enrichment{Title: "Pod status", Blocks: []event.Block{event.KeyValueBlock([][2]string{{"Reason", "OOMKilled"}, {"Exit code", "137"}})}})

	for _, c := range []struct {
		name     string
		f        *event.Finding
		want     []string
		not      []string
		maxChars int
	}{
		{"alert", testFinding(), []string{"KubePodCrashLooping", "Pod is crash looping.", "CrashLoopBackOff", "Back-off restarting failed container", "panic: exit"}, []string{"password", "12"}, 500},
		{"native oom", oom,
			[]string{"pod oom killed", "Pod", "cart-7d9 was OOMKilled", "OOMKilled", "fatal error: runtime: out of memory", "exceeded its memory limit."},
			// The first error lines and the description's detail are bulk.
			[]string{"request 0 failed", "request 30 failed", "GC could not keep up"}, 600},
	} {
		q := FindingQuery(c.f)
		for _, w := range c.want {
			if !strings.Contains(q, w) {
				t.Errorf("%s: query lacks %q:\n%s", c.name, w, q)
			}
		}
		for _, w := range c.not {
			if strings.Contains(q, w) {
				t.Errorf("%s: query has %q:\n%s", c.name, w, q)
			}
		}
		if len(q) > c.maxChars {
			t.Errorf("%s: query of %d chars:\n%s", c.name, len(q), q)
		}
	}
}

func TestParseSections(t *testing.T) {
	for _, text := range []string{
		sectionsReply,
		"**What is happening:** x\n**Likely causes:** y\n**What to check:** z\n**How to fix:** w",
		"What is happening?\nx\nLikely causes\ny",
	} {
		if s := ParseSections(text); len(s) < 2 {
			t.Errorf("no sections in %q", text)
		}
	}
	if ParseSections("just some words") != nil {
		t.Error("sections in plain text")
	}
}
