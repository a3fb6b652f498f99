package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/medichq/medic/agent/mcptools"
	"github.com/medichq/medic/internal/testkit"
)

// TestMCPServesMedicsToolsOnStdio: `medic mcp` on stdio, driven by an MCP
// client: the tools are listed with their schemas, a knowledge-base search
// answers, a cluster tool without a cluster says so, and the command ends
// when the client goes away.
func TestMCPServesMedicsToolsOnStdio(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	cfg := writeKBConfig(t, "")
	inR, inW := io.Pipe()   // client → medic
	outR, outW := io.Pipe() // medic → client
	cmd := newRootCmd()
	cmd.SetIn(inR)
	cmd.SetOut(outW)
	var stderr testkit.SyncBuffer // written by the command's goroutine
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"mcp", "--config", cfg})
	done := make(chan error, 1)
	go func() {
		done <- cmd.ExecuteContext(context.Background())
		outW.Close()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sess, err := mcptools.ConnectTransport(ctx, mcptools.ServerSpec{Name: "medic"}, &mcp.IOTransport{Reader: outR, Writer: inW}, "test")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range sess.Tools {
		names[tl.Spec().Name] = true
	}
	for _, want := range []string{"medic_pod_logs", "medic_list_pods", "medic_search_runbooks", "medic_fetch_runbook"} {
		if !names[want] {
			t.Errorf("tool %s not served (%v)", want, names)
		}
	}
	for _, tl := range sess.Tools {
		switch tl.Spec().Name {
		case "medic_search_runbooks":
			out, err := tl.Call(ctx, json.RawMessage(`{"query": "etcd has no leader"}`))
			if err != nil || !strings.Contains(out, "etcdnoleader") {
				t.Errorf("search_runbooks: %v\n%s", err, out)
			}
		case "medic_pod_status":
			out, err := tl.Call(ctx, json.RawMessage(`{"namespace": "shop", "pod": "cart"}`))
			if err != nil || !strings.Contains(out, "⚠") {
				t.Errorf("pod_status without a cluster: %v\n%s", err, out)
			}
		}
	}
	sess.Close()
	inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("medic mcp: %v\n%s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("medic mcp did not end when the client went away")
	}
}
