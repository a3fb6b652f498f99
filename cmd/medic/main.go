// Command medic is an event-driven incident and troubleshooting service for
// Kubernetes: Alertmanager alerts and cluster events flow through NATS
// JetStream into YAML playbooks, whose findings go to Slack, Teams and files.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/medichq/medic/internal/plugins"
)

// shipped is what this binary ships, every trigger, action and sink
// (internal/plugins.Builtin): the registries each command validates the
// configuration with, loads and lists playbooks with, and serves.
var shipped = sync.OnceValue(plugins.Builtin)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
		}
		fmt.Fprintln(os.Stderr, "medic:", err)
		os.Exit(1)
	}
}

// exitError ends the process with code after its output was already printed
// (validate prints its own report).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
