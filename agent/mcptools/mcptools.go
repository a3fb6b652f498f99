// Package mcptools is MCP (Model Context Protocol) both ways for the
// investigation, over github.com/modelcontextprotocol/go-sdk: Server offers
// medic's read-only tools to any MCP client (`medic mcp`, stdio or
// streamable HTTP), and Connect turns the tools of a configured MCP server
// into agent.Tools the investigation's loop offers to the model.
package mcptools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/medichq/medic/agent"
	"github.com/medichq/medic/rag/llm"
	"github.com/medichq/medic/redact"
)

// Server is an MCP server offering tools. Every result is redacted with red
// (nil: redact.Default) before it leaves medic; a tool's error is a result
// with isError set, which the client's model reads.
func Server(tools []agent.Tool, red *redact.Redactor, version string) *mcp.Server {
	if red == nil {
		red = redact.Default()
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "medic", Title: "medic: read-only Kubernetes evidence and runbooks", Version: version}, nil)
	for _, t := range tools {
		spec := t.Spec()
		s.AddTool(&mcp.Tool{Name: spec.Name, Description: spec.Description, InputSchema: spec.Parameters},
			func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				args := req.Params.Arguments
				if len(args) == 0 {
					args = json.RawMessage("{}")
				}
				out, err := t.Call(ctx, args)
				isErr := err != nil
				if isErr {
					out = err.Error()
				}
				clean, _ := red.Redact(out)
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: clean}}, IsError: isErr}, nil
			})
	}
	return s
}

// HTTPHandler serves s over MCP's streamable HTTP transport.
func HTTPHandler(s *mcp.Server) http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
}

// ServeStdio serves s on the process's stdin and stdout until the client
// goes away or ctx ends.
func ServeStdio(ctx context.Context, s *mcp.Server) error {
	return s.Run(ctx, &mcp.StdioTransport{})
}

// ServerSpec is an MCP server whose tools the investigation may use: a
// command speaking MCP on stdio, or a streamable HTTP endpoint.
type ServerSpec struct {
	// Name prefixes its tools ("<name>_<tool>"), so two servers' tools
	// cannot clash with each other or with medic's.
	Name string
	// Command and Args start a stdio server; Env is added to medic's
	// environment for it.
	Command string
	Args    []string
	Env     map[string]string
	// URL is a streamable HTTP endpoint (instead of Command).
	URL string
	// Tools, when set, are the only tools of the server offered.
	Tools []string
}

// Session is a connection to one MCP server.
type Session struct {
	spec    ServerSpec
	session *mcp.ClientSession
	Tools   []agent.Tool
}

// Close ends the session (and a stdio server's process).
func (s *Session) Close() error { return s.session.Close() }

// Connect connects to spec and lists its tools (those in spec.Tools, when
// set) as agent.Tools.
func Connect(ctx context.Context, spec ServerSpec, version string) (*Session, error) {
	var t mcp.Transport
	switch {
	case spec.Command != "":
		cmd := exec.Command(spec.Command, spec.Args...)
		cmd.Env = os.Environ()
		for k, v := range spec.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stderr = os.Stderr
		t = &mcp.CommandTransport{Command: cmd}
	case spec.URL != "":
		t = &mcp.StreamableClientTransport{Endpoint: spec.URL, HTTPClient: &http.Client{Timeout: 2 * time.Minute}, DisableStandaloneSSE: true}
	default:
		return nil, fmt.Errorf("mcp server %s: neither command nor url", spec.Name)
	}
	return ConnectTransport(ctx, spec, t, version)
}

// ConnectTransport is Connect over a given transport (tests: in memory).
func ConnectTransport(ctx context.Context, spec ServerSpec, t mcp.Transport, version string) (*Session, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "medic", Version: version}, nil)
	cs, err := c.Connect(ctx, t, nil)
	if err != nil {
		return nil, fmt.Errorf("mcp server %s: connect: %w", spec.Name, err)
	}
	s := &Session{spec: spec, session: cs}
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			_ = cs.Close()
			return nil, fmt.Errorf("mcp server %s: list tools: %w", spec.Name, err)
		}
		if len(spec.Tools) > 0 && !contains(spec.Tools, tool.Name) {
			continue
		}
		s.Tools = append(s.Tools, &remoteTool{session: cs, remote: tool.Name, spec: llm.ToolSpec{
			Name:        toolName(spec.Name, tool.Name),
			Description: fmt.Sprintf("[MCP server %s] %s", spec.Name, tool.Description),
			Parameters:  objectSchema(tool.InputSchema),
		}})
	}
	return s, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// toolName is "<server>_<tool>" in the characters function names allow,
// at most 64 of them.
func toolName(server, tool string) string {
	n := unsafeName.ReplaceAllString(server+"_"+tool, "_")
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

// objectSchema is the server's input schema as a JSON object; a missing or
// odd one becomes an open object schema.
func objectSchema(s any) map[string]any {
	b, err := json.Marshal(s)
	var m map[string]any
	if err != nil || json.Unmarshal(b, &m) != nil || m["type"] != "object" {
		return map[string]any{"type": "object", "properties": map[string]any{}}
	}
	if _, ok := m["properties"]; !ok {
		m["properties"] = map[string]any{}
	}
	return m
}

// remoteTool is one tool of an MCP server.
type remoteTool struct {
	session *mcp.ClientSession
	remote  string
	spec    llm.ToolSpec
}

func (t *remoteTool) Spec() llm.ToolSpec { return t.spec }

func (t *remoteTool) Call(ctx context.Context, args json.RawMessage) (string, error) {
	res, err := t.session.CallTool(ctx, &mcp.CallToolParams{Name: t.remote, Arguments: args})
	if err != nil {
		return "", fmt.Errorf("mcp %s: %w", t.remote, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		switch c := c.(type) {
		case *mcp.TextContent:
			b.WriteString(c.Text)
			b.WriteByte('\n')
		default:
			fmt.Fprintf(&b, "[%T left out]\n", c)
		}
	}
	if res.IsError {
		return "", errors.New(strings.TrimSpace(b.String()))
	}
	return b.String(), nil
}
