package mcptools_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/medichq/medic/agent"
	"github.com/medichq/medic/agent/agenttest"
	"github.com/medichq/medic/agent/mcptools"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/rag/llm"
)

// TestMedicToolsOverMCP: medic's own tools, served over MCP and read back
// by an MCP client, keep their names and schemas; a call reaches the
// cluster through the evidence action, its secret redacted; a bad argument
// is a tool error the client sees.
func TestMedicToolsOverMCP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := agenttest.Cluster(agenttest.CrashLog+"db password=hunter2\n", agenttest.CrashingPod())
	tools, err := agent.Toolbox{Actions: plugins.Builtin().Actions, Env: env, KB: agenttest.KB(t)}.Tools(event.Event{})
	if err != nil {
		t.Fatal(err)
	}
	srv := mcptools.Server(tools, nil, "test")
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	sess, err := mcptools.ConnectTransport(ctx, mcptools.ServerSpec{Name: "medic"}, ct, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })

	if len(sess.Tools) != len(tools) {
		t.Fatalf("%d tools over MCP, %d offered", len(sess.Tools), len(tools))
	}
	offered := map[string]llm.ToolSpec{}
	for _, tl := range tools {
		offered["medic_"+tl.Spec().Name] = tl.Spec()
	}
	byName := map[string]agent.Tool{}
	for _, rt := range sess.Tools {
		got := rt.Spec()
		want, ok := offered[got.Name]
		if !ok || !strings.HasSuffix(got.Description, want.Description) || !sameJSON(t, got.Parameters, want.Parameters) {
			t.Errorf("tool over MCP: %s %v, offered as %v", got.Name, got.Parameters, want.Parameters)
		}
		byName[got.Name] = rt
	}
	out, err := byName["medic_pod_logs"].Call(ctx, json.RawMessage(`{"namespace": "shop", "pod": "cart-7d9", "previous": true}`))
	if err != nil || !strings.Contains(out, "panic: assignment to entry in nil map") || strings.Contains(out, "hunter2") {
		t.Errorf("pod_logs over MCP: %v\n%s", err, out)
	}
	out, err = byName["medic_search_runbooks"].Call(ctx, json.RawMessage(`{"query": "KubePodCrashLooping"}`))
	if err != nil || !strings.Contains(out, "kubepodcrashlooping") {
		t.Errorf("search_runbooks over MCP: %v\n%s", err, out)
	}
	if _, err := byName["medic_pod_logs"].Call(ctx, json.RawMessage(`{"tail": 5}`)); err == nil || !strings.Contains(err.Error(), `unknown parameter "tail"`) {
		t.Errorf("a bad argument over MCP: %v", err)
	}
}

// deployHistory stands for another team's MCP server: what was deployed.
type deployHistory struct{}

func (deployHistory) Spec() llm.ToolSpec {
	return llm.ToolSpec{Name: "deploy-history", Description: "Deployments of a service.", Parameters: map[string]any{
		"type": "object", "properties": map[string]any{"service": map[string]any{"type": "string"}}, "required": []any{"service"},
	}}
}

func (deployHistory) Call(_ context.Context, args json.RawMessage) (string, error) {
	var a struct{ Service string }
	if err := json.Unmarshal(args, &a); err != nil {
		return "", err
	}
	return a.Service + " v1.4.2 deployed 12 minutes ago by ci (token ghp_0123456789abcdefghijABCDEFGHIJ012345); v1.4.1 before", nil
}

// TestLoopUsesAnMCPServersTools: the investigation's loop offers the tools
// of an MCP server reached over streamable HTTP, the scripted model calls
// one, and its result comes back to the model, redacted, as any tool's.
func TestLoopUsesAnMCPServersTools(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	httpSrv := httptest.NewServer(mcptools.HTTPHandler(mcptools.Server([]agent.Tool{deployHistory{}}, nil, "test")))
	t.Cleanup(httpSrv.Close)
	sess, err := mcptools.Connect(ctx, mcptools.ServerSpec{Name: "gitops", URL: httpSrv.URL}, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	if len(sess.Tools) != 1 || sess.Tools[0].Spec().Name != "gitops_deploy-history" {
		t.Fatalf("tools %+v", sess.Tools)
	}

	model := agenttest.New(t, agenttest.Steps(
		agenttest.Reply{Calls: []agenttest.Call{{Name: "gitops_deploy-history", Args: map[string]any{"service": "cart"}}}},
		agenttest.Reply{Text: "v1.4.2 went out 12 minutes ago; roll back to v1.4.1."},
	))
	client, err := llm.New(llm.Config{BaseURL: model.BaseURL(), ChatModel: "scripted", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	loop := agent.Loop{Model: client, Tools: sess.Tools}
	res, _, err := loop.Run(ctx, []llm.ToolMessage{{Role: "user", Content: "what changed for cart?"}}, agent.Events{})
	if err != nil {
		t.Fatal(err)
	}
	results := model.ToolResults()
	if len(results) != 1 || !strings.Contains(results[0].Content, "cart v1.4.2 deployed 12 minutes ago") || strings.Contains(model.AllBodies(), "ghp_0123") {
		t.Errorf("the MCP tool's result to the model: %+v", results)
	}
	if res.Answer != "v1.4.2 went out 12 minutes ago; roll back to v1.4.1." || len(res.Transcript.Steps) != 1 || res.Transcript.Steps[0].Tool != "gitops_deploy-history" {
		t.Errorf("result %+v", res)
	}
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	var x, y any
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	_ = json.Unmarshal(ja, &x)
	_ = json.Unmarshal(jb, &y)
	return reflect.DeepEqual(x, y)
}
