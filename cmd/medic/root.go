package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/version"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "medic",
		Short: "Event-driven incident and troubleshooting service for Kubernetes",
		Long: `medic receives Prometheus alerts (Alertmanager webhook) and Kubernetes events,
runs the YAML playbooks that match them, and delivers the findings to sinks.

  medic serve                      run the service (embedded NATS, ./playbooks, stdout + file sinks)
  medic trigger prometheus_alert alert_name=KubePodCrashLooping namespace=shop pod_name=cart-7d9
  medic config check               list every problem in medic.yaml (file:line:column)
  medic playbooks validate ./playbooks
  medic kb search "etcd has no leader"   search the knowledge base (runbooks)
  medic ask "why is my pod crash looping?"
  medic investigate pod/cart-7d9 -n shop   the model triages it with medic's read-only tools`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newTriggerCmd(), newPlaybooksCmd(), newConfigCmd(), newVersionCmd())
	root.AddCommand(newKBCmd(), newAskCmd(), newInvestigateCmd(), newMCPCmd()) // kb.go, ask.go, investigate.go, mcp.go
	root.AddCommand(newDLQCmd())                                               // dlq.go
	return root
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"version": version.String()})
			}
			fmt.Fprintln(cmd.OutOrStdout(), version.String())
			return nil
		},
	}
	addJSONFlag(cmd, &asJSON, `print {"version": "…"}`)
	return cmd
}

// configPath returns the --config flag, MEDIC_CONFIG, or ./medic.yaml when it
// exists, in that order; "" means built-in defaults only.
func configPath(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("MEDIC_CONFIG"); env != "" {
		return env
	}
	if _, err := os.Stat("medic.yaml"); err == nil {
		return "medic.yaml"
	}
	return ""
}

func loadConfig(flag string) (config.Config, string, error) {
	path := configPath(flag)
	cfg, err := config.Load(path, os.Environ(), shipped().ValidateConfig)
	return cfg, path, err
}

func newLogger(w io.Writer, cfg config.LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
