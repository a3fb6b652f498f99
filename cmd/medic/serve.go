package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/spf13/cobra"

	"github.com/medichq/medic/internal/app"
	"github.com/medichq/medic/internal/version"
)

func newServeCmd() *cobra.Command {
	var configFlag string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run medic: webhook receiver, playbook engine and sinks",
		Long: `Run medic. With no configuration it starts NATS JetStream in-process (data under
./data), loads the built-in playbooks and ./playbooks, and writes findings to
stdout and ./data/findings.jsonl. SIGHUP reloads the playbooks.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, path, err := loadConfig(configFlag)
			if err != nil {
				return err
			}
			logger := newLogger(os.Stderr, cfg.Log)
			for _, w := range cfg.Warnings {
				logger.Warn(w)
			}
			if path == "" {
				path = "(defaults)"
			}
			logger.Info("starting", "version", version.String(), "config", path)
			// In a container, keep the Go heap under the cgroup's memory limit
			// (90% of it) so a burst that JetStream's file-store caches and the
			// GC's headroom would push over the limit makes the GC work harder
			// instead of getting medic OOM-killed. GOMEMLIMIT, when set, wins.
			if limit, err := memlimit.SetGoMemLimitWithOpts(memlimit.WithRatio(0.9), memlimit.WithProvider(memlimit.FromCgroup)); err == nil && limit > 0 {
				logger.Info("Go memory limit set from the cgroup", "gomemlimit_bytes", limit)
			}

			ctx := cmd.Context()
			a, err := app.New(ctx, cfg, logger)
			if err != nil {
				return err
			}
			if err := a.Start(ctx); err != nil {
				_ = a.Shutdown(context.Background())
				return err
			}

			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			for {
				select {
				case <-hup:
					logger.Info("SIGHUP: reloading playbooks")
					_, _ = a.Reload(ctx) // the store logs the outcome
				case <-ctx.Done():
					logger.Info("shutting down")
					sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
					defer cancel()
					if err := a.Shutdown(sctx); err != nil {
						return fmt.Errorf("shut down: %w", err)
					}
					logger.Info("stopped")
					return nil
				}
			}
		},
	}
	cmd.Flags().StringVarP(&configFlag, "config", "c", "", "configuration file (default: $MEDIC_CONFIG, else ./medic.yaml if present)")
	return cmd
}
