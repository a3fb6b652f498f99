package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/medichq/medic/agent"
	"github.com/medichq/medic/agent/agenttest"
	"github.com/medichq/medic/agent/mcptools"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/llm"
	sslack "github.com/medichq/medic/sinks/slack"
	"github.com/medichq/medic/sinks/slack/slackrec"
)

// The README's example playbook: runbook hits and an explanation. The
// built-in playbook for the alert adds the crash investigation, the
// previous instance's logs and the events after it.
const readmePlaybook = `- name: crashloop-explained
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping}
  actions:
    - runbook_enricher: {top_k: 3}
    - ask_ai: {mode: auto, max_tokens: 800}
`

const (
	agentRunbook = "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping"
	agentSecret  = "hunter2-do-not-leak"
	agentPanic   = "panic: assignment to entry in nil map"
	agentAnswer  = "## What is happening\nshop/cart-7d9 crashes at start: `" + agentPanic + "` (main.go:42).\n\n" +
		"## Likely causes\nA map used before make() in the new release.\n\n## What to check\nThe release's diff of main.go.\n\n" +
		"## How to fix\nRoll back, then initialise the map. Runbook: " + agentRunbook
)

// crashingCartPod is shop/cart-7d9 after its container exited with 2,
// running again: the alert is the only way in (medic's own crash-loop
// trigger, watching the same fake cluster, does not fire).
func crashingCartPod() *corev1.Pod {
	p := agenttest.CrashingPod()
	p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	return p
}

// TestAskAIInvestigatesEndToEnd: an alert → the README's playbook with
// ask_ai auto (placed before the built-in evidence, which it must see) →
// the scripted model calls the logs tool and the knowledge-base tool →
// the answer and the transcript reach Slack and the file sink, exactly once
// each, with nothing secret anywhere.
func TestAskAIInvestigatesEndToEnd(t *testing.T) {
	srv := agenttest.New(t, agenttest.Steps(
		agenttest.Reply{Calls: []agenttest.Call{
			{Name: "pod_logs", Args: map[string]any{"namespace": "shop", "pod": "cart-7d9", "previous": true, "tail_lines": 50}},
			{Name: "search_runbooks", Args: map[string]any{"query": "KubePodCrashLooping nil map panic"}},
		}},
		agenttest.Reply{Text: agentAnswer},
	))
	rec := slackrec.New(t)
	cfg := chatConfig(t, rec)
	if err := os.WriteFile(filepath.Join(cfg.Playbooks.Dirs[0], "ai.yaml"), []byte(readmePlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.AI.BaseURL, cfg.AI.ChatModel = srv.BaseURL(), "scripted"
	cfg.AI.Timeout, cfg.AI.MaxRetries = 10*time.Second, 0
	cfg.Engine.ActionTimeout = time.Minute
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	kc := fake.NewClientset(crashingCartPod())
	logs := "starting cart v1.4.2\nconnecting to postgres://cart:" + agentSecret + "@db:5432/cart\n" + agentPanic +
		"\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/main.go:42 +0x1d\n"
	kc.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		return true, &runtime.Unknown{Raw: []byte(logs)}, nil
	})
	a := runApp(t, cfg, tlog{t}, WithKubeClients(kc, dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())))
	postCrashLoop(t, a)

	f := waitFinding(t, cfg)
	rec.Wait(t, 30*time.Second, "the finding in Slack", func(s *slackrec.Server) bool { return len(s.Messages()) >= 1 })

	// The model: the evidence first (the built-in playbook's logs, though
	// ask_ai comes first in the YAML), tools offered, results redacted and
	// threaded.
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model requests, want 2 (tools, answer)", len(reqs))
	}
	first := reqs[0].Messages[1].Content
	if !strings.Contains(first, agentPanic) || !strings.Contains(first, "Evidence collected so far") {
		t.Errorf("the model was not shown the logs collected before it:\n%s", first)
	}
	offered := map[string]bool{}
	for _, tl := range reqs[0].Tools {
		offered[tl.Function.Name] = true
	}
	for _, name := range []string{"pod_logs", "pod_events", "search_runbooks", "fetch_runbook"} {
		if !offered[name] {
			t.Errorf("tool %s not offered (%v)", name, offered)
		}
	}
	results := agenttest.ToolResults(&reqs[1])
	if len(results) != 2 || results[0].Tool != "pod_logs" || results[1].Tool != "search_runbooks" {
		t.Fatalf("tool results %+v", results)
	}
	if !strings.Contains(results[0].Content, agentPanic) || !strings.Contains(results[0].Content, "[REDACTED]") {
		t.Errorf("logs result:\n%s", results[0].Content)
	}
	if !strings.Contains(results[1].Content, agentRunbook) {
		t.Errorf("search result:\n%s", results[1].Content)
	}

	// The file sink: the explanation with the cited runbook, then the
	// transcript, after every piece of evidence.
	n := len(f.Enrichments)
	if n < 4 || f.Enrichments[n-2].Title != rag.ExplanationTitle || f.Enrichments[n-1].Title != agent.StepsTitle {
		t.Fatalf("enrichments %v", titles(f))
	}
	expl := enrichmentText(f, rag.ExplanationTitle)
	for _, want := range []string{agentPanic, agentRunbook, "2 tool calls", "model scripted"} {
		if !strings.Contains(expl, want) {
			t.Errorf("explanation lacks %q:\n%s", want, expl)
		}
	}
	// Collapsed in chat: a summary line, then the whole table.
	stepsEnrichment := f.Enrichments[n-1]
	if !stepsEnrichment.Collapsed || len(stepsEnrichment.Blocks) != 2 ||
		stepsEnrichment.Blocks[0].Markdown != "2 tool calls: `pod_logs`, `search_runbooks`" {
		t.Errorf("transcript enrichment %+v", stepsEnrichment)
	}
	steps := stepsEnrichment.Blocks[len(stepsEnrichment.Blocks)-1].Table
	if steps == nil || len(steps.Rows) != 2 || steps.Rows[0][1] != "pod_logs" || steps.Rows[1][1] != "search_runbooks" ||
		!strings.Contains(steps.Rows[0][3], agentPanic) || !strings.Contains(steps.Rows[0][2], `"previous":true`) {
		t.Errorf("transcript table %+v", steps)
	}

	// Slack: one message carrying the answer and the transcript.
	msgs := rec.Messages()
	if len(msgs) != 1 {
		t.Errorf("%d Slack messages, want 1", len(msgs))
	}
	blocks := string(msgs[0].Blocks)
	for _, want := range []string{"shop/cart-7d9 crashes at start", "pod_logs", "search_runbooks", "kubepodcrashlooping"} {
		if !strings.Contains(blocks, want) {
			t.Errorf("Slack message lacks %q", want)
		}
	}

	// Delivery: one finding in the file (lost 0, duplicates 0); no secret
	// reached the model, the file or Slack.
	raw, err := os.ReadFile(filepath.Join(cfg.DataDir, "findings.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(strings.TrimSpace(string(raw)), "\n") + 1; lines != 1 {
		t.Errorf("%d findings in the file, want 1", lines)
	}
	for where, text := range map[string]string{"model": srv.AllBodies(), "file": string(raw), "slack": blocks} {
		if strings.Contains(text, agentSecret) {
			t.Errorf("the secret reached the %s", where)
		}
	}
}

func titles(f event.Finding) []string {
	var out []string
	for _, e := range f.Enrichments {
		out = append(out, e.Title)
	}
	return out
}

// postSlackEvent sends a signed Events API callback to medic.
func postSlackEvent(t *testing.T, a *App, ev map[string]any) {
	t.Helper()
	body, _ := json.Marshal(ev)
	if code := postSigned(t, a, "/slack/events", "application/json", string(body)); code != http.StatusOK {
		t.Fatalf("event answered %d", code)
	}
}

// TestThreadFollowUpContinuesTheInvestigation: ask_ai explains the alert;
// "@medic" in the finding's thread asks a follow-up, the model calls a tool
// and answers; a second follow-up sees both earlier questions and answers,
// the finding's evidence and the tool's result. Each answer replaces its
// "Looking into it…" placeholder in the thread, once.
func TestThreadFollowUpContinuesTheInvestigation(t *testing.T) {
	lastUser := func(req *openai.ChatCompletionRequest) string {
		for i := len(req.Messages) - 1; i >= 0; i-- {
			if req.Messages[i].Role == openai.ChatMessageRoleUser {
				return req.Messages[i].Content
			}
		}
		return ""
	}
	srv := agenttest.New(t, func(req *openai.ChatCompletionRequest, turn int) agenttest.Reply {
		q := lastUser(req)
		switch {
		case strings.Contains(q, "which container"):
			if req.Messages[len(req.Messages)-1].Role == openai.ChatMessageRoleTool {
				return agenttest.Reply{Text: "A2: container app, exit code 2."}
			}
			return agenttest.Reply{Calls: []agenttest.Call{{Name: "pod_status", Args: map[string]any{}}}}
		case strings.Contains(q, "how do I fix"):
			return agenttest.Reply{Text: "A3: roll back to the previous image."}
		default:
			return agenttest.Reply{Text: "A1: the cart pod crash loops."}
		}
	})
	rec := slackrec.New(t)
	cfg := chatConfig(t, rec) // the crash-loop playbook with ask_ai auto
	cfg.AI.BaseURL, cfg.AI.ChatModel, cfg.AI.MaxRetries = srv.BaseURL(), "scripted", 0
	cfg.Engine.ActionTimeout = time.Minute
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	kc := fake.NewClientset(crashingCartPod())
	a := runApp(t, cfg, tlog{t}, WithKubeClients(kc, dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())))
	postCrashLoop(t, a)
	rec.Wait(t, 30*time.Second, "the finding in Slack", func(s *slackrec.Server) bool { return len(s.Calls(slackrec.PostMessage)) == 1 })
	msg := rec.Calls(slackrec.PostMessage)[0]
	if !strings.Contains(msg.BlocksJSON(), "A1: the cart pod crash loops.") {
		t.Fatalf("the finding lacks ask_ai's answer: %s", msg.BlocksJSON())
	}
	// The Slack sink indexes the thread (the KV record a mention is looked
	// up by) after chat.postMessage answered: a mention sent as soon as the
	// message shows could find no finding for its thread.
	threads, err := a.Bus().JetStream().KeyValue(context.Background(), sslack.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the finding's thread in the Slack sink's thread index", func() bool {
		_, ok, err := sslack.LookupThread(context.Background(), threads, rec.ChannelID("#alerts"), msg.TS)
		return err == nil && ok
	})
	ask := func(n int, question string) {
		postSlackEvent(t, a, map[string]any{
			"type": "event_callback", "event_id": fmt.Sprintf("Ev0FOLLOW%d", n), "team_id": "T0TEAM",
			"event": map[string]any{"type": "app_mention", "user": "U0ONCALL", "text": "<@U0MEDIC> " + question,
				"ts": fmt.Sprintf("1700000300.00000%d", n), "thread_ts": msg.TS, "channel": rec.ChannelID("#alerts")},
		})
		rec.Wait(t, 30*time.Second, "the follow-up answered", func(s *slackrec.Server) bool { return len(s.Calls(slackrec.Update)) == n })
	}
	ask(1, "which container fails?")
	ask(2, "how do I fix it?")

	updates := rec.Calls(slackrec.Update)
	if !strings.Contains(updates[0].BlocksJSON(), "A2: container app, exit code 2.") || !strings.Contains(updates[0].BlocksJSON(), "pod_status") {
		t.Errorf("first follow-up's answer: %s", updates[0].BlocksJSON())
	}
	if !strings.Contains(updates[1].BlocksJSON(), "A3: roll back") {
		t.Errorf("second follow-up's answer: %s", updates[1].BlocksJSON())
	}
	reqs := srv.Requests()
	last := reqs[len(reqs)-1]
	var convo []string
	for _, m := range last.Messages {
		convo = append(convo, m.Role+": "+m.Content)
	}
	all := strings.Join(convo, "\n")
	for _, want := range []string{"Investigate this finding", "A1: the cart pod crash loops.", "which container fails?", "exit 2",
		"A2: container app, exit code 2.", "how do I fix it?"} {
		if !strings.Contains(all, want) {
			t.Errorf("the second follow-up's conversation lacks %q:\n%s", want, all)
		}
	}
	// One placeholder per question in the thread, each updated once.
	var placeholders int
	for _, c := range rec.Calls(slackrec.PostMessage) {
		if c.ThreadTS == msg.TS && strings.Contains(c.Text, "Looking into it") {
			placeholders++
		}
	}
	if placeholders != 2 || len(updates) != 2 {
		t.Errorf("%d placeholders, %d updates; want 2 and 2", placeholders, len(updates))
	}
}

// TestMCPServersToolsReachTheModel: a server of ai.agent.mcp_servers
// (streamable HTTP) is connected at start; its tools are offered to the
// model beside medic's, and a call to one reaches it.
func TestMCPServersToolsReachTheModel(t *testing.T) {
	remote := mcptools.Server([]agent.Tool{agentDeployHistory{}}, nil, "test")
	hs := httptest.NewServer(mcptools.HTTPHandler(remote))
	t.Cleanup(hs.Close)
	srv := agenttest.New(t, agenttest.Steps(
		agenttest.Reply{Calls: []agenttest.Call{{Name: "gitops_deploy_history", Args: map[string]any{}}}},
		agenttest.Reply{Text: "cart v1.4.2 went out just before the crashes."},
	))
	cfg := aiConfig(t, nil)
	cfg.AI.BaseURL, cfg.AI.ChatModel, cfg.AI.MaxRetries = srv.BaseURL(), "scripted", 0
	cfg.AI.Agent.MCPServers = []config.MCPServerConfig{{Name: "gitops", URL: hs.URL}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cfg)
	postCrashLoop(t, a)
	f := waitFinding(t, cfg)
	if got := enrichmentText(f, rag.ExplanationTitle); !strings.Contains(got, "cart v1.4.2 went out") {
		t.Errorf("explanation %q", got)
	}
	results := srv.ToolResults()
	if len(results) != 1 || !strings.Contains(results[0].Content, "cart v1.4.2 deployed by ci") {
		t.Errorf("the MCP tool's result: %+v", results)
	}
	var offered []string
	for _, tl := range srv.Requests()[0].Tools {
		offered = append(offered, tl.Function.Name)
	}
	if !slices.Contains(offered, "gitops_deploy_history") || !slices.Contains(offered, "pod_logs") {
		t.Errorf("tools offered: %v", offered)
	}
}

type agentDeployHistory struct{}

func (agentDeployHistory) Spec() llm.ToolSpec {
	return llm.ToolSpec{Name: "deploy_history", Description: "What was deployed lately.", Parameters: map[string]any{"type": "object", "properties": map[string]any{}}}
}

func (agentDeployHistory) Call(context.Context, json.RawMessage) (string, error) {
	return "cart v1.4.2 deployed by ci 12 minutes ago", nil
}

// TestAskAIButtonInvestigates: the Slack "Ask AI" button of a finding whose
// playbook asks for the button goes through the investigation: the model
// calls a tool, and the answer in the thread ends with the steps.
func TestAskAIButtonInvestigates(t *testing.T) {
	srv := agenttest.New(t, agenttest.Steps(
		agenttest.Reply{Calls: []agenttest.Call{{Name: "pod_status", Args: map[string]any{}}}},
		agenttest.Reply{Text: "## What is happening\nThe app container exited with 2."},
	))
	rec := slackrec.New(t)
	cfg := chatConfig(t, rec)
	button := strings.Replace(readmePlaybook, "ask_ai: {mode: auto, max_tokens: 800}", "ask_ai: {mode: button}", 1)
	if err := os.WriteFile(filepath.Join(cfg.Playbooks.Dirs[0], "ai.yaml"), []byte(button), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.AI.BaseURL, cfg.AI.ChatModel, cfg.AI.MaxRetries = srv.BaseURL(), "scripted", 0
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := runApp(t, cfg, tlog{t}, WithKubeClients(fake.NewClientset(crashingCartPod()), dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())))
	postCrashLoop(t, a)
	rec.Wait(t, 30*time.Second, "the finding in Slack", func(s *slackrec.Server) bool { return len(s.Calls(slackrec.PostMessage)) == 1 })
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("the model was asked %d times before the click", n)
	}
	msg := rec.Calls(slackrec.PostMessage)[0]
	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": "U1", "name": "bob"},
		"container": map[string]any{"type": "message", "message_ts": msg.TS, "channel_id": rec.ChannelID("#alerts")},
		"actions":   []any{map[string]any{"action_id": sslack.ActionAskAI, "block_id": sslack.ActionsBlockID, "value": waitFinding(t, cfg).ID, "action_ts": "1.2", "type": "button"}},
	})
	if code := postSigned(t, a, "/slack/interactions", "application/x-www-form-urlencoded", url.Values{"payload": {string(payload)}}.Encode()); code != http.StatusOK {
		t.Fatalf("interaction answered %d", code)
	}
	rec.Wait(t, 30*time.Second, "the answer in the thread", func(s *slackrec.Server) bool {
		for _, u := range s.Calls(slackrec.Update) {
			if strings.Contains(u.BlocksJSON(), "exited with 2") {
				return true
			}
		}
		return false
	})
	var answer string
	for _, u := range rec.Calls(slackrec.Update) {
		answer += u.BlocksJSON()
	}
	if !strings.Contains(answer, "pod_status") || !strings.Contains(answer, "1 tool calls") {
		t.Errorf("the answer lacks its steps: %s", answer)
	}
	if results := srv.ToolResults(); len(results) != 1 || !strings.Contains(results[0].Content, "exit 2") {
		t.Errorf("tool results %+v", results)
	}
}
