package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/medichq/medic/agent/mcptools"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/app"
	"github.com/medichq/medic/internal/version"
)

func newMCPCmd() *cobra.Command {
	var configFlag, httpAddr string
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve medic's read-only tools (logs, events, status, YAML, PromQL, runbooks) to MCP clients, on stdio or streamable HTTP",
		Long: `Serve medic's read-only evidence tools and its knowledge base over the Model Context
Protocol, so an MCP client (an IDE's assistant, Claude Desktop, another agent) can look at
the cluster of kubernetes.* or $KUBECONFIG as medic's investigation does: the same tools,
schemas and namespace limits (ai.agent.namespaces), every result redacted.

  medic mcp                          stdio (the client starts medic as its server)
  medic mcp --http 127.0.0.1:8090    streamable HTTP at http://127.0.0.1:8090/mcp

No model is needed: the client brings its own.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serveMCP(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), configFlag, httpAddr)
		},
	}
	cmd.Flags().StringVarP(&configFlag, "config", "c", "", "configuration file (default: $MEDIC_CONFIG, else ./medic.yaml if present)")
	cmd.Flags().StringVar(&httpAddr, "http", "", "serve streamable HTTP at ADDR/mcp instead of stdio")
	return cmd
}

// serveMCP serves until the stdio client goes away or ctx ends. Logs and
// notices go to stderr: on stdio, stdout carries the protocol.
func serveMCP(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, configFlag, httpAddr string) error {
	k, cfg, err := openKB(ctx, configFlag, stderr)
	if err != nil {
		return err
	}
	defer k.Close()
	env, noCluster, err := app.ToolsEnv(cfg, newLogger(stderr, cfg.Log))
	if err != nil {
		return err
	}
	if noCluster != "" {
		fmt.Fprintf(stderr, "no cluster (%s): the cluster tools will say so\n", noCluster)
	}
	tools, err := k.Toolbox(env).Tools(event.Event{})
	if err != nil {
		return err
	}
	srv := mcptools.Server(tools, k.Redactor, version.Version)
	if httpAddr == "" {
		t := &mcp.IOTransport{Reader: io.NopCloser(stdin), Writer: nopWriteCloser{stdout}}
		if err := srv.Run(ctx, t); err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
			return fmt.Errorf("mcp: %w", err)
		}
		return nil
	}
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("mcp: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcptools.HTTPHandler(srv))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "medic MCP server on http://%s/mcp (%d tools)\n", ln.Addr(), len(tools))
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("mcp: %w", err)
	}
	return nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
