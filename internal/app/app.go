// Package app assembles `medic serve`: the bus, the HTTP endpoints of the
// triggers, the playbook store and engine, and one consumer per sink.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/bus/triggerstate"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/datadir"
	"github.com/medichq/medic/internal/memtrim"
	"github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/pipeline"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/redact"
	"github.com/medichq/medic/sinks"
)

// App is a running medic.
type App struct {
	cfg      config.Config
	logger   *slog.Logger
	registry *prometheus.Registry
	// plugins are the registries of what the binary ships, built once:
	// the playbook loader and the investigation's tools build from them.
	plugins *plugins.Set

	// redactor cleans every finding once, in the pipeline's Evaluate stage;
	// remediation records are cleaned by it too.
	redactor *redact.Redactor
	bus      *bus.Bus
	sinks    *sinks.Set
	store    *playbooks.Store
	engine   *playbooks.Engine
	// triggerState is the bucket of the triggers' rate limits (applied by
	// the engine, for every source) and the Kubernetes detector's records.
	triggerState jetstream.KeyValue

	// The pipeline's stages (package pipeline): the engine consumer's
	// handler, the sinks' deliveries, the dead-letter count of every
	// consumer.
	events      *pipeline.Events
	deliveries  *pipeline.Deliveries
	deadLetters *pipeline.DeadLetters

	http     *http.Server
	listener net.Listener

	git  gitPlaybooks // playbook_repos: see playbookrepos.go
	kb   *Knowledge   // knowledge base and AI: see ai.go
	kube kubeSide     // Kubernetes triggers: see kubernetes.go
	chat chatSide     // Slack interactivity, Ask AI, the finding page: see chat.go

	// stops is how every part opened or started stops, in the order they
	// were: Shutdown (or a failed New) runs them in reverse, so what uses
	// a part stops before it (the HTTP intake and the consumers before the
	// sinks, the sinks before the bus, the bus before the data dir's lock).
	stops []stopper
	// wg counts the background goroutines started with the context of
	// Start; one stopper cancels it and waits for them.
	wg sync.WaitGroup
	// startup counts the start-up work that runs in the background (the
	// knowledge-base ingest); start-up memory is released after it.
	startup sync.WaitGroup
}

// stopper stops one part of a running medic. ctx bounds how long it may
// wait (only the HTTP server's graceful shutdown uses it).
type stopper struct {
	name string
	stop func(ctx context.Context) error
}

// onStop registers how a part that was just opened or started stops.
func (a *App) onStop(name string, stop func(ctx context.Context) error) {
	a.stops = append(a.stops, stopper{name: name, stop: stop})
}

// onClose registers a part that stops with Close.
func (a *App) onClose(name string, c interface{ Close() error }) {
	a.onStop(name, func(context.Context) error { return c.Close() })
}

// stop stops every registered part in reverse order, once.
func (a *App) stop(ctx context.Context) error {
	var errs []error
	for i := len(a.stops) - 1; i >= 0; i-- {
		if err := a.stops[i].stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", a.stops[i].name, err))
		}
	}
	a.stops = nil
	return errors.Join(errs...)
}

// New opens the bus, loads the playbooks, starts the sinks and binds the
// HTTP listener. Nothing is consumed until Start.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...Option) (_ *App, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.plugins == nil {
		o.plugins = plugins.Builtin()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &App{cfg: cfg, logger: logger, registry: reg, plugins: o.plugins}
	// a, not the named result: every error return sets that to nil.
	defer func() {
		if err != nil {
			_ = a.stop(context.Background())
		}
	}()
	// config.Load judged the configuration's own shape; the plugins' parts
	// (sink parameters, webhook mappings, remediation names) are judged by
	// their registries, whoever loaded it.
	if err := o.plugins.ValidateConfig(&cfg); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if a.redactor, err = cfg.Redactor(); err != nil {
		return nil, err
	}

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	// Before anything in the folder is opened: a second medic must not open
	// the same JetStream store or append to the same findings file.
	lock, err := datadir.Acquire(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	a.onStop("data dir lock", func(context.Context) error { return lock.Release() })
	a.bus, err = bus.Open(ctx, cfg.Bus, logger.With("component", "bus"))
	if err != nil {
		return nil, fmt.Errorf("open bus: %w", err)
	}
	a.onStop("bus", func(context.Context) error { a.bus.Close(); return nil }) // stops the consumers left first
	if err := a.registerBusMetrics(); err != nil {
		return nil, err
	}
	if cfg.Bus.URL == "" {
		logger.Info("embedded NATS JetStream started", "store_dir", cfg.Bus.StoreDir)
	} else {
		logger.Info("connected to NATS", "url", cfg.Bus.URL)
	}

	deps := sinks.Deps{
		Log:  logger.With("component", "sink"),
		Out:  os.Stdout,
		HTTP: &http.Client{Timeout: 30 * time.Second},
	}
	if err := a.initChat(ctx, &deps); err != nil { // chat.go
		return nil, err
	}
	specs, err := o.plugins.Sinks.FromConfigs(cfg.Sinks)
	if err != nil {
		return nil, fmt.Errorf("start sinks: %w", err)
	}
	a.sinks, err = o.plugins.Sinks.Start(ctx, specs, deps)
	if err != nil {
		return nil, fmt.Errorf("start sinks: %w", err)
	}
	a.onClose("sinks", a.sinks)

	source := func(context.Context) ([]playbooks.File, error) {
		files, missing, err := playbooks.LoadLocal(cfg.Playbooks.Dirs, cfg.Playbooks.Builtin)
		for _, d := range missing {
			logger.Debug("playbook folder does not exist; skipped", "dir", d)
		}
		return files, err
	}
	if err := a.initPlaybookRepos(ctx); err != nil {
		return nil, err
	}
	a.store, err = playbooks.NewStore(a.withPlaybookRepos(source), playbooks.Options{
		Plugins:     a.plugins.Playbooks(),
		Disabled:    cfg.Playbooks.Disabled,
		KnownSinks:  a.sinks.Names(),
		Remediation: actions.PolicyFrom(cfg.Remediation),
	}, logger.With("component", "playbooks"), reg)
	if err != nil {
		return nil, err
	}
	if err := a.loadPlaybooks(ctx); err != nil {
		// At start-up there is no last good set to fall back on.
		return nil, fmt.Errorf("load playbooks:\n%w", err)
	}
	// One bucket, bounded by kubernetes.state_ttl, for the rate limits of
	// every source's triggers and the Kubernetes detector's records.
	a.triggerState, err = triggerstate.Open(ctx, a.bus.JetStream(), cfg.Kubernetes.StateTTL, cfg.Bus.Replicas)
	if err != nil {
		return nil, fmt.Errorf("trigger state: %w", err)
	}
	if err := a.initKubernetes(ctx, &o); err != nil { // kubernetes.go
		return nil, err
	}
	env, err := a.actionEnv(o) // clients.go
	if err != nil {
		return nil, err
	}
	a.onStop("knowledge base", func(context.Context) error {
		if a.kb == nil {
			return nil
		}
		return a.kb.Close()
	})
	if err := a.attachKnowledge(ctx, env); err != nil { // ai.go
		return nil, err
	}
	if err := a.newChatService(ctx, env); err != nil { // chat.go
		return nil, err
	}
	a.engine, err = playbooks.NewEngine(a.store, env, cfg.Engine.ActionTimeout, logger.With("component", "engine"), reg)
	if err != nil {
		return nil, err
	}
	a.engine.LimitRates(triggerstate.NewLimits(a.triggerState, cfg.Kubernetes.StateTTL))
	if err := a.buildPipeline(ctx); err != nil {
		return nil, err
	}

	handler, err := a.routes()
	if err != nil {
		return nil, err
	}
	a.listener, err = net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (http.addr): %w", cfg.HTTP.Addr, err)
	}
	// Closed here only when Start never served it; serving, the HTTP
	// server's Shutdown closed it already.
	a.onStop("HTTP listener", func(context.Context) error { _ = a.listener.Close(); return nil })
	if cfg.HTTP.MaxConnections > 0 {
		a.listener = netutil.LimitListener(a.listener, cfg.HTTP.MaxConnections)
	}
	a.warnOpenIntake()
	a.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return a, nil
}

// buildPipeline builds the pipeline's stages (package pipeline) over the
// bus, the engine, the sinks' routing and the finding store; Start hands
// them to the bus's consumers.
func (a *App) buildPipeline(ctx context.Context) error {
	var err error
	if a.deadLetters, err = pipeline.NewDeadLetters(a.registry); err != nil {
		return err
	}
	records, err := a.bus.Deliveries(ctx) // what each sink delivered, across crashes
	if err != nil {
		return err
	}
	if a.deliveries, err = pipeline.NewDeliveries(records, a.logger.With("component", "deliver"), a.registry); err != nil {
		return err
	}
	// One notification per alert lifetime: a nil claimer (not a nil
	// *bus.AlertState) turns the check off.
	var claimer pipeline.AlertClaimer
	if a.cfg.Bus.AlertStateTTL == 0 {
		a.logger.Info("alert lifetimes are off (bus.alert_state_ttl: 0): every re-send after bus.dedup_window runs the playbooks again")
	} else {
		state, err := a.bus.AlertState(ctx)
		if err != nil {
			return err
		}
		claimer = state
	}
	lifetimes, err := pipeline.NewLifetimes(claimer, a.logger, a.registry)
	if err != nil {
		return err
	}
	route, err := pipeline.NewRoute(a.sinks.Specs(), a.logger, a.registry)
	if err != nil {
		return err
	}
	keep := &pipeline.Keep{Logger: a.logger}
	if a.chat.findings != nil {
		keep.Store, keep.Links = a.chat.findings, a.chat.links
	}
	a.events = &pipeline.Events{
		Lifetimes: lifetimes,
		Evaluate:  &pipeline.Evaluate{Engine: a.engine, Redactor: a.redactor},
		Keep:      keep,
		Route:     route,
		Publish:   &pipeline.Publish{Bus: a.bus, Logger: a.logger},
	}
	return nil
}

// registerBusMetrics registers medic_bus_ready, the bus' store and healing
// counters, and the time the pipeline's workers yielded to the intake.
func (a *App) registerBusMetrics() error {
	cs := append(a.bus.Collectors(), prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "medic_pipeline_intake_yield_seconds_total",
		Help: "Time playbook and sink workers waited for trigger intake in flight (engine.intake_yield).",
	}, func() float64 { return a.bus.IntakeYield().Seconds() }))
	for _, c := range cs {
		if err := a.registry.Register(c); err != nil {
			return fmt.Errorf("register bus metrics: %w", err)
		}
	}
	return nil
}

// warnOpenIntake says so when anyone who reaches medic's port can post
// alerts: it listens beyond loopback and the intake asks for no
// credentials.
func (a *App) warnOpenIntake() {
	wh := a.cfg.Webhook
	if wh.BearerToken != "" || wh.Username != "" {
		return
	}
	if ap, err := netip.ParseAddrPort(a.listener.Addr().String()); err == nil && ap.Addr().IsLoopback() {
		return
	}
	a.logger.Warn("POST /api/alerts, /api/trigger and the /api/dlq routes (list, replay, purge dead letters) accept anyone who reaches this address: set webhook.bearer_token_file (or username/password), or keep http.addr on loopback behind a NetworkPolicy",
		"http", a.listener.Addr().String())
}

// Addr is the address the HTTP server listens on (useful with port 0).
func (a *App) Addr() string { return a.listener.Addr().String() }

// Registry exposes the metrics registry (tests read it).
func (a *App) Registry() *prometheus.Registry { return a.registry }

// Bus exposes the bus (tests and later components).
func (a *App) Bus() *bus.Bus { return a.bus }

// Start begins consuming events and findings and serving HTTP. Each part
// it starts registers how it stops; Shutdown stops them in reverse.
func (a *App) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	a.onStop("background work", func(context.Context) error { cancel(); a.wg.Wait(); return nil })
	// The sinks' consumers start first and stop last: the engine's last
	// findings are on the bus for them either way.
	for _, name := range a.sinks.Names() {
		c, _ := a.sinks.Get(name)
		if err := a.consume(ctx, bus.ConsumerConfig{
			Stream:        bus.FindingsStream,
			Durable:       "sink-" + name,
			FilterSubject: bus.FindingSubject(name),
			Workers:       a.cfg.Engine.SinkWorkers,
		}, a.deliveries.For(c).Handle); err != nil {
			return err
		}
	}
	if err := a.consume(ctx, bus.ConsumerConfig{
		Stream:        bus.EventsStream,
		Durable:       "engine",
		FilterSubject: bus.EventsSubjectPrefix + ">",
		Workers:       a.cfg.Engine.Workers,
	}, a.events.Handle); err != nil {
		return err
	}
	a.wg.Go(func() { a.store.Watch(ctx, a.cfg.Playbooks.ReloadInterval) })
	a.startPlaybookRepos(ctx)
	a.startKnowledge(ctx)
	if err := a.startKubernetes(ctx); err != nil { // kubernetes.go
		return err
	}
	// The informers stop before the consumers and the bus.
	a.onStop("kubernetes", func(context.Context) error { a.stopKubernetes(); return nil })
	if err := a.startSchedules(ctx); err != nil { // schedule.go
		return err
	}
	if err := a.startChat(ctx); err != nil { // chat.go
		return err
	}
	if a.cfg.Memory.ReleaseAfterStart {
		a.wg.Go(func() { a.releaseStartupMemory(ctx) })
	}
	a.wg.Go(func() {
		if err := a.http.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("HTTP server stopped", "err", err)
		}
	})
	// First to stop: no webhook is accepted that the consumers would not
	// see, and in-flight requests finish their publishes.
	a.onStop("HTTP server", a.http.Shutdown)
	a.logger.Info("medic is ready", "http", "http://"+a.Addr(), "sinks", a.sinks.Names(),
		"playbooks", len(a.store.Current().Playbooks), "playbook_version", a.store.Current().Version)
	return nil
}

// consume runs h over the durable consumer cfg describes, with the
// settings every pipeline consumer shares, until Shutdown stops it.
func (a *App) consume(ctx context.Context, cfg bus.ConsumerConfig, h bus.Handler) error {
	cfg.YieldToIntake = a.cfg.Engine.IntakeYield
	cfg.OnDeadLetter = a.deadLetters.Counter(cfg.Durable)
	c, err := a.bus.Consume(ctx, cfg, func(ctx context.Context, d *bus.Delivery) error {
		memtrim.Wake() // events from Kubernetes and schedules arrive here first
		return h(ctx, d)
	})
	if err != nil {
		return err
	}
	a.onStop("consumer "+cfg.Durable, func(context.Context) error { c.Stop(); return nil })
	return nil
}

// releaseStartupMemory waits for the start-up work still running in the
// background, then gives back what only start-up used (memory.release_after_start).
func (a *App) releaseStartupMemory(ctx context.Context) {
	done := make(chan struct{})
	go func() { a.startup.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return
	}
	res, err := memtrim.Release()
	if err != nil {
		a.logger.Warn("could not release all start-up memory", "err", err)
	}
	a.logger.Info("released the memory only start-up used",
		"rss_before_bytes", res.RSSBefore, "rss_after_bytes", res.RSSAfter,
		"executable_mappings", res.Mappings, "skipped_mappings", res.Skipped, "executable_evicted", res.Evicted, "idle_paging", res.IdlePaging)
}

// Reload re-reads the playbooks (SIGHUP, the reload endpoint).
// Playbook repositories are fetched first.
func (a *App) Reload(ctx context.Context) (bool, error) {
	a.refreshPlaybookRepos(ctx)
	return a.store.Reload(ctx)
}

// Shutdown stops every part in reverse order of its start: the HTTP
// intake first, then the Kubernetes watches, the consumers (in-flight work
// is finished or left for redelivery) and the background work, then the
// knowledge base, the sinks, the bus and the data dir's lock.
func (a *App) Shutdown(ctx context.Context) error {
	return a.stop(ctx)
}
