package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/medichq/medic/internal/app"
	"github.com/medichq/medic/internal/memtrim"
	"github.com/medichq/medic/internal/version"
)

// After a burst: medic checks every idleCheck whether it allocated at least
// burstBytes since its last release and then less than quietBytes in each
// check for idleFor (an idle pod's probes and scrapes allocate about 100 KB
// a second; JetStream keeps a block's cache 10 s after its last use). Work
// without a burst (an event now and then) is released after restFor quiet.
const (
	idleCheck  = 2 * time.Second
	idleFor    = 12 * time.Second
	restFor    = 5 * time.Minute
	burstBytes = 256 << 20
	quietBytes = 4 << 20
)

// Under memory pressure (the Go runtime's memory at pressureHigh of its
// limit, checked every pressureCheck, until it is back under pressureLow)
// medic reads its binary a page at a time (memtrim.Pressure).
const (
	pressureCheck = time.Second
	pressureHigh  = 0.90
	pressureLow   = 0.75
)

// containerGoLimit is the Go memory limit for the cgroup medic runs in.
func containerGoLimit() (uint64, error) {
	limit, err := memlimit.FromCgroup()
	if err != nil {
		return 0, err
	}
	return memtrim.GoLimit(limit), nil
}

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
			// In a container, keep the Go heap under the cgroup's memory limit,
			// with room left for the binary's pages (memtrim.GoLimit), so a
			// burst that JetStream's file-store caches and the GC's headroom
			// would push over the limit makes the GC work harder instead of
			// getting medic OOM-killed. GOMEMLIMIT, when set, wins.
			if limit, err := memlimit.SetGoMemLimitWithOpts(memlimit.WithRatio(1), memlimit.WithProvider(containerGoLimit)); err == nil && limit > 0 {
				logger.Info("Go memory limit set from the cgroup", "gomemlimit_bytes", limit)
			}

			ctx := cmd.Context()
			a, err := app.New(ctx, cfg, logger, app.WithPlugins(shipped()))
			if err != nil {
				return stoppedDuringStart(ctx, logger, err)
			}
			if err := a.Start(ctx); err != nil {
				_ = a.Shutdown(context.Background())
				return stoppedDuringStart(ctx, logger, err)
			}

			if cfg.Memory.ReleaseAfterStart {
				// After a burst, give back what it used once medic is idle
				// again, rather than keep the pod's memory at its peak.
				idle := memtrim.IdlePolicy{Every: idleCheck, Quiet: quietBytes, QuietFor: idleFor, Burst: burstBytes,
					Rest: restFor, Awake: memtrim.Awake}
				go memtrim.WhenIdle(ctx, idle, func() {
					runtime.GC() // with Release's, empties the pools of JetStream's block buffers
					res, err := memtrim.Release()
					if err != nil {
						logger.Warn("could not release all of a burst's memory", "err", err)
					}
					logger.Info("idle after a burst or after work: released its memory",
						"rss_before_bytes", res.RSSBefore, "rss_after_bytes", res.RSSAfter, "executable_evicted", res.Evicted, "idle_paging", res.IdlePaging)
				})
			}

			// Whether or not medic releases memory after start, a runtime at its
			// limit is a capacity signal: this pod's limit is what a burst fills.
			// It is logged and exported (medic_memory_pressure) so an operator can
			// alert on it before the kernel's OOM killer does.
			pressure := prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "medic_memory_pressure",
				Help: "1 while the memory the Go runtime holds is at 90% or more of its limit (GOMEMLIMIT, or the one derived from the container's), until it is back under 75%; 0 otherwise.",
			})
			if err := a.Registry().Register(pressure); err != nil {
				logger.Warn("could not export medic_memory_pressure", "err", err)
			}
			// Single-page reads follow the pressure only where Release advised
			// the binary's regions (memory.release_after_start); elsewhere
			// memtrim.Pressure has nothing to advise.
			singly := cfg.Memory.ReleaseAfterStart
			go memtrim.WatchPressure(ctx, pressureCheck, pressureHigh, pressureLow, func(on bool) {
				memtrim.Pressure(on)
				if on {
					pressure.Set(1)
					logger.Warn("memory at the Go limit: a burst fills this container",
						"share_of_limit", pressureHigh, "binary_read_page_by_page", singly)
				} else {
					pressure.Set(0)
					logger.Info("memory pressure over", "share_of_limit", pressureLow, "binary_read_page_by_page", false)
				}
			})

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

// stoppedDuringStart is what a start-up that failed returns. A SIGTERM or
// Ctrl-C while medic was still starting cancels what it was doing (opening
// a consumer, a bucket), which is a stop that was asked for, not a failure:
// nothing was accepted yet that is not already in the stream, so it exits
// 0 like a stop after start-up does. An error without a stop is returned.
func stoppedDuringStart(ctx context.Context, logger *slog.Logger, err error) error {
	if ctx.Err() != nil {
		// Whatever was interrupted says why, in case it was not only the stop.
		logger.Info("stopped during start-up", "interrupted", err)
		return nil
	}
	return err
}
