package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/medichq/medic/sources/manual"
)

func newTriggerCmd() *cobra.Command {
	var server, token string
	var timeout time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "trigger TRIGGER [key=value ...]",
		Short: "Send an event to a running medic, as if its source had sent it",
		Example: `  medic trigger prometheus_alert alert_name=KubePodCrashLooping namespace=shop pod_name=cart-7d9
  medic trigger prometheus_alert alert_name=KubeNodeNotReady node_name=worker-3 severity=critical
  medic trigger prometheus_alert alert_name=X status=resolved label.team=payments`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			params := map[string]string{}
			for _, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("argument %q: expected key=value", kv)
				}
				params[k] = v
			}
			client := manual.Client{BaseURL: server, Token: token, HTTP: &http.Client{Timeout: timeout}}
			res, err := client.Trigger(cmd.Context(), args[0], params)
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					return notListening(server)
				}
				return fmt.Errorf("trigger %s at %s: %w", args[0], server, err)
			}
			if asJSON {
				if res.IDs == nil {
					res.IDs = []string{}
				}
				return writeJSON(cmd.OutOrStdout(), res)
			}
			for _, id := range res.IDs {
				fmt.Fprintf(cmd.OutOrStdout(), "accepted event %s\n", id)
			}
			if res.Duplicates > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%d duplicate(s) of events already received\n", res.Duplicates)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", envOr("MEDIC_SERVER", "http://127.0.0.1:8080"), "medic's URL ($MEDIC_SERVER)")
	cmd.Flags().StringVar(&token, "token", os.Getenv("MEDIC_TOKEN"), "bearer token when medic requires one ($MEDIC_TOKEN)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for medic")
	addJSONFlag(cmd, &asJSON, `print medic's answer as JSON: {"ids": [...], "duplicates": N}`)
	return cmd
}

// notListening replaces a raw "dial tcp …: connection refused" with what a
// newcomer needs: nothing runs there, how to start it, how to look elsewhere.
func notListening(server string) error {
	return fmt.Errorf(`no medic is listening at %s
  start one in another terminal: make run (in a medic checkout) or medic serve
  or point at another medic: --server URL or MEDIC_SERVER=URL`, server)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
