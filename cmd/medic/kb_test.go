package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/medichq/medic/knowledge"
	"github.com/medichq/medic/rag/ragtest"
)

// runCLI runs the CLI in-process and returns stdout, stderr and the error.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func writeKBConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "medic.yaml")
	cfg := fmt.Sprintf("data_dir: %s\nlog: {level: error}\n%s", filepath.Join(dir, "data"), extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type kbHit struct {
	Source  string  `json:"source"`
	Title   string  `json:"title"`
	Heading string  `json:"heading"`
	Score   float64 `json:"score"`
	Text    string  `json:"text"`
}

func TestKBSearchJSON(t *testing.T) {
	cfg := writeKBConfig(t, "")
	out, stderr, err := runCLI(t, "kb", "search", "etcd cluster has no leader", "--top-k", "3", "--json", "--config", cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "ingested the default runbooks") {
		t.Errorf("stderr %q", stderr)
	}
	var hits []kbHit
	if err := json.Unmarshal([]byte(out), &hits); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out)
	}
	if len(hits) != 3 || hits[0].Source != "etcd/etcdNoLeader.md" || hits[0].Title == "" || hits[0].Text == "" || hits[0].Score <= 0 {
		t.Fatalf("hits %+v", hits)
	}
	// Every hit has exactly the documented keys (and url, root).
	var raw []map[string]any
	_ = json.Unmarshal([]byte(out), &raw)
	for _, k := range []string{"source", "title", "heading", "score", "text"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("hit lacks %q", k)
		}
	}
}

// A team's copy of the built-in runbooks, ingested into a store that holds
// them already, is skipped as duplicate content, and `kb search` never
// lists a source twice.
func TestKBIngestCopyOfDefaultsDoesNotDouble(t *testing.T) {
	cfg := writeKBConfig(t, "")
	docs := t.TempDir()
	for _, name := range []string{"kubernetes/KubePodCrashLooping.md", "etcd/etcdNoLeader.md"} {
		b, err := fs.ReadFile(knowledge.Runbooks(), name)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(docs, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, stderr, err := runCLI(t, "kb", "ingest", docs, "--config", cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "0 added, 0 updated, 0 unchanged, 0 deleted, 0 failed, 2 duplicate") {
		t.Errorf("stderr:\n%s", stderr)
	}
	for _, q := range []string{"pods keep restarting", "etcd has no leader", "KubePodCrashLooping"} {
		out, _, err := runCLI(t, "kb", "search", q, "--top-k", "10", "--json", "--config", cfg)
		if err != nil {
			t.Fatal(err)
		}
		var hits []struct{ Source, Root string }
		if err := json.Unmarshal([]byte(out), &hits); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, h := range hits {
			if seen[h.Source] {
				t.Errorf("%q: %s twice: %+v", q, h.Source, hits)
			}
			seen[h.Source] = true
		}
	}
}

func TestKBIngestFolderIncrementally(t *testing.T) {
	cfg := writeKBConfig(t, "")
	docs := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(docs, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("payments/QueueBacklog.md", "# PaymentsQueueBacklog\n\n## Meaning\n\nThe payments queue grows: the zanzibar consumer is stuck.\n")
	write("notes.txt", "General notes about the quokka service.\n")
	write("ignored.png", "x")
	_, stderr, err := runCLI(t, "kb", "ingest", docs, "--config", cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "2 files (2 added, 0 updated, 0 unchanged, 0 deleted, 0 failed)") {
		t.Errorf("stderr:\n%s", stderr)
	}
	out, _, err := runCLI(t, "kb", "search", "zanzibar consumer stuck", "--json", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var hits []kbHit
	_ = json.Unmarshal([]byte(out), &hits)
	if len(hits) == 0 || hits[0].Source != "payments/QueueBacklog.md" || hits[0].Heading != "Meaning" {
		t.Fatalf("hits %+v", hits)
	}
	// Again, one file changed and one removed.
	write("payments/QueueBacklog.md", "# PaymentsQueueBacklog\n\nNow about the albatross.\n")
	_ = os.Remove(filepath.Join(docs, "notes.txt"))
	out, stderr, err = runCLI(t, "kb", "ingest", docs, "--json", "--config", cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var reps []struct{ Added, Updated, Unchanged, Deleted int }
	if err := json.Unmarshal([]byte(out), &reps); err != nil || len(reps) != 1 || reps[0].Updated != 1 || reps[0].Deleted != 1 {
		t.Fatalf("reports %s (%v)", out, err)
	}
	out, _, _ = runCLI(t, "kb", "search", "quokka", "--json", "--config", cfg)
	if strings.Contains(out, "notes.txt") {
		t.Error("deleted file still found")
	}
	out, _, err = runCLI(t, "kb", "status", "--config", cfg)
	if err != nil || !strings.Contains(out, "files:     109") || !strings.Contains(out, docs) {
		t.Errorf("status %v:\n%s", err, out)
	}
}

func TestAskNotConfigured(t *testing.T) {
	cfg := writeKBConfig(t, "")
	_, _, err := runCLI(t, "ask", "why?", "--config", cfg)
	if err == nil || !strings.HasPrefix(err.Error(), "AI is not configured") {
		t.Fatalf("error %v", err)
	}
}

func TestAsk(t *testing.T) {
	srv := ragtest.New(t)
	srv.SetReply(func(openai.ChatCompletionRequest) string { return "Check that the members can reach each other [1]." })
	cfg := writeKBConfig(t, fmt.Sprintf("ai: {base_url: %q, chat_model: gpt-test, api_key: sk-test}\n", srv.BaseURL()))
	out, stderr, err := runCLI(t, "ask", "what should I check when etcd has no leader?", "--config", cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.HasPrefix(out, "Check that the members can reach each other [1].") ||
		!strings.Contains(out, "Sources:\n  [1] etcdNoLeader") ||
		!strings.Contains(out, "https://runbooks.prometheus-operator.dev/runbooks/etcd/etcdnoleader") {
		t.Errorf("output:\n%s", out)
	}
	if !strings.Contains(stderr, "model gpt-test") {
		t.Errorf("stderr %q", stderr)
	}
	// The investigation: the question with the best runbooks, and the
	// knowledge-base tools (no cluster is configured) to read more.
	req := srv.Requests()[0].Chat
	if !strings.Contains(req.Messages[1].Content, "etcd has no leader") || !strings.Contains(req.Messages[1].Content, "[1] etcdNoLeader") ||
		len(req.Tools) != 2 || req.Tools[0].Function.Name != "search_runbooks" {
		t.Errorf("request %+v", req)
	}
}

// TestKBSearchOneHitPerSource: a runbook split into chunks that all match
// is listed once, with its best chunk.
func TestKBSearchOneHitPerSource(t *testing.T) {
	cfg := writeKBConfig(t, "")
	docs := t.TempDir()
	filler := strings.Repeat("Check the dashboards, the recent deploys and the logs of every replica. ", 40)
	body := "# WombatDown\n\n## Meaning\n\nThe wombat service is down. " + filler +
		"\n\n## Impact\n\nNo wombat reports. " + filler +
		"\n\n## Mitigation\n\nRestart the wombat: wombat wombat wombat. " + filler + "\n"
	if err := os.WriteFile(filepath.Join(docs, "WombatDown.md"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runCLI(t, "kb", "ingest", docs, "--config", cfg); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	out, stderr, err := runCLI(t, "kb", "search", "wombat", "--json", "--config", cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var hits []kbHit
	if err := json.Unmarshal([]byte(out), &hits); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(hits) != 1 || hits[0].Source != "WombatDown.md" || !strings.Contains(hits[0].Heading, "Mitigation") {
		t.Fatalf("want the one runbook once, with its best chunk (Mitigation); got %d hits: %+v", len(hits), hits)
	}
}
