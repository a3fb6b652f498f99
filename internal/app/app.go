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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/datadir"
	"github.com/medichq/medic/internal/memtrim"
	"github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/redact"
	"github.com/medichq/medic/sinks"
)

// App is a running medic.
type App struct {
	cfg      config.Config
	logger   *slog.Logger
	registry *prometheus.Registry

	// redactor cleans every finding once, before it is published to the
	// sinks' subjects, so every sink, the finding store behind the page and
	// the buttons, and Ask AI see only redacted text.
	redactor  *redact.Redactor
	lock      *datadir.Lock // held from New until the bus and sinks are closed
	bus       *bus.Bus
	delivered *bus.Deliveries // what each sink delivered, across crashes
	lifetimes alertLifetimes  // one notification per alert lifetime: see alertstate.go
	sinks     *sinks.Set
	store     *playbooks.Store
	engine    *playbooks.Engine

	http     *http.Server
	listener net.Listener

	deliveries   *prometheus.CounterVec
	failures     *prometheus.CounterVec
	deliverySecs *prometheus.HistogramVec
	endToEnd     *prometheus.HistogramVec
	deadLetters  *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	routeSkips   *prometheus.CounterVec

	git  gitPlaybooks // playbook_repos: see playbookrepos.go
	kb   *Knowledge   // knowledge base and AI: see ai.go
	kube kubeSide     // Kubernetes triggers: see kubernetes.go
	chat chatSide     // Slack interactivity, Ask AI, the finding page: see chat.go

	wg     sync.WaitGroup
	cancel context.CancelFunc
	// startup counts the start-up work that runs in the background (the
	// knowledge-base ingest); start-up memory is released after it.
	startup sync.WaitGroup
}

// New opens the bus, loads the playbooks, starts the sinks and binds the
// HTTP listener. Nothing is consumed until Start.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...Option) (_ *App, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &App{cfg: cfg, logger: logger, registry: reg}
	// a, not the named result: every error return sets that to nil.
	defer func() {
		if err != nil {
			a.closeResources()
		}
	}()
	// config.Load judged the configuration's own shape; the plugins' parts
	// (sink parameters, webhook mappings, remediation names) are judged by
	// their registries, whoever loaded it.
	if err := plugins.ValidateConfig(&cfg); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if err := a.initMetrics(); err != nil {
		return nil, err
	}
	if a.redactor, err = cfg.Redactor(); err != nil {
		return nil, err
	}

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	// Before anything in the folder is opened: a second medic must not open
	// the same JetStream store or append to the same findings file.
	if a.lock, err = datadir.Acquire(cfg.DataDir); err != nil {
		return nil, err
	}
	a.bus, err = bus.Open(ctx, cfg.Bus, logger.With("component", "bus"))
	if err != nil {
		return nil, fmt.Errorf("open bus: %w", err)
	}
	for _, c := range a.bus.Collectors() { // medic_bus_ready and the bus' store and healing counters
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register bus metrics: %w", err)
		}
	}
	if cfg.Bus.URL == "" {
		logger.Info("embedded NATS JetStream started", "store_dir", cfg.Bus.StoreDir)
	} else {
		logger.Info("connected to NATS", "url", cfg.Bus.URL)
	}
	if a.delivered, err = a.bus.Deliveries(ctx); err != nil {
		return nil, err
	}
	if err := a.initAlertLifetimes(ctx); err != nil { // alertstate.go
		return nil, err
	}

	deps := sinks.Deps{
		Logger:     logger.With("component", "sink"),
		DataDir:    cfg.DataDir,
		Stdout:     os.Stdout,
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
	}
	if err := a.initChat(ctx, &deps); err != nil { // chat.go
		return nil, err
	}
	specs, err := sinks.FromConfigs(cfg.Sinks)
	if err != nil {
		return nil, fmt.Errorf("start sinks: %w", err)
	}
	a.sinks, err = sinks.Start(specs, deps)
	if err != nil {
		return nil, fmt.Errorf("start sinks: %w", err)
	}

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
	if err := a.initKubernetes(ctx, &o); err != nil { // kubernetes.go
		return nil, err
	}
	env, err := a.actionEnv(o) // clients.go
	if err != nil {
		return nil, err
	}
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

	handler, err := a.routes()
	if err != nil {
		return nil, err
	}
	a.listener, err = net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (http.addr): %w", cfg.HTTP.Addr, err)
	}
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

// Start begins consuming events and findings and serving HTTP.
func (a *App) Start(ctx context.Context) error {
	ctx, a.cancel = context.WithCancel(ctx)
	if _, err := a.bus.Consume(ctx, bus.ConsumerConfig{
		Stream:        bus.EventsStream,
		Durable:       "engine",
		FilterSubject: bus.EventsSubjectPrefix + ">",
		Workers:       a.cfg.Engine.Workers,
		YieldToIntake: a.cfg.Engine.IntakeYield,
		OnDeadLetter:  a.countDeadLetter("engine"),
	}, a.handleEvent); err != nil {
		return err
	}
	for _, name := range a.sinks.Names() {
		c, _ := a.sinks.Get(name)
		if _, err := a.bus.Consume(ctx, bus.ConsumerConfig{
			Stream:        bus.FindingsStream,
			Durable:       "sink-" + name,
			FilterSubject: bus.FindingSubject(name),
			Workers:       a.cfg.Engine.SinkWorkers,
			YieldToIntake: a.cfg.Engine.IntakeYield,
			OnDeadLetter:  a.countDeadLetter("sink-" + name),
		}, a.deliverTo(c)); err != nil {
			return err
		}
	}
	a.wg.Go(func() { a.store.Watch(ctx, a.cfg.Playbooks.ReloadInterval) })
	a.startPlaybookRepos(ctx)
	a.startKnowledge(ctx)
	if err := a.startKubernetes(ctx); err != nil { // kubernetes.go
		return err
	}
	if err := a.startSchedules(ctx); err != nil { // schedule.go
		return err
	}
	if err := a.startChat(ctx); err != nil { // chat.go
		return err
	}
	a.wg.Go(func() {
		if err := a.http.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("HTTP server stopped", "err", err)
		}
	})
	a.logger.Info("medic is ready", "http", "http://"+a.Addr(), "sinks", a.sinks.Names(),
		"playbooks", len(a.store.Current().Playbooks), "playbook_version", a.store.Current().Version)
	if a.cfg.Memory.ReleaseAfterStart {
		a.wg.Go(func() { a.releaseStartupMemory(ctx) })
	}
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
		"executable_mappings", res.Mappings, "skipped_mappings", res.Skipped)
}

// Reload re-reads the playbooks (SIGHUP, the reload endpoint).
// Playbook repositories are fetched first.
func (a *App) Reload(ctx context.Context) (bool, error) {
	a.refreshPlaybookRepos(ctx)
	return a.store.Reload(ctx)
}

// Shutdown stops accepting webhooks, then stops consumers (in-flight work is
// finished or left for redelivery), closes sinks and the bus.
func (a *App) Shutdown(ctx context.Context) error {
	var errs []error
	if a.http != nil {
		if err := a.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down HTTP server: %w", err))
		}
	}
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	a.stopKubernetes() // before the bus closes
	if err := a.closeResources(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (a *App) closeResources() error {
	var errs []error
	if a.bus != nil {
		a.bus.Close() // stops consumers first
	}
	if a.sinks != nil {
		if err := a.sinks.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if a.kb != nil {
		if err := a.kb.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if a.listener != nil && a.http == nil {
		_ = a.listener.Close()
	}
	// Last: everything in the data folder is closed.
	if err := a.lock.Release(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// handleEvent runs the playbooks for one event and publishes the finding to
// each routed sink's subject. It returns (and so acks) only after every
// publish was stored. An alert already processed in its lifetime (a
// re-send) is acked without running anything.
func (a *App) handleEvent(ctx context.Context, d *bus.Delivery) (err error) {
	var ev event.Event
	if err := event.UnmarshalEvent(d.Data, &ev); err != nil {
		return bus.Permanent(fmt.Errorf("decode event on %s: %w", d.Subject, err))
	}
	claim, repeat := a.claimAlert(ctx, d, &ev) // alertstate.go
	if repeat {
		return nil
	}
	defer func() {
		if err != nil {
			a.releaseAlert(ctx, claim)
		}
	}()
	res, err := a.engine.Run(ctx, &ev)
	if err != nil {
		return fmt.Errorf("run playbooks for event %s: %w", ev.ID, err)
	}
	if res.Finding == nil {
		return nil
	}
	if res.Finding.Silenced != nil {
		a.keepSilenced(ctx, res.Finding)
		return nil // acked: delivered to no sink, and not a dead letter
	}
	a.redact(res.Finding)
	route := a.sinks.Decide(res.Finding, res.Sinks, time.Now())
	targets := route.Targets
	if len(route.Unknown) > 0 {
		a.logger.Warn("playbooks name sinks that are not configured", "sinks", route.Unknown, "finding", res.Finding.ID)
	}
	for _, s := range route.Skipped {
		// Not lost: the sink's routing keys say it does not want the
		// finding now. Counted here once, since it is never published.
		a.logger.Info("finding not sent to a sink", "sink", s.Sink, "reason", s.Reason, "finding", res.Finding.ID)
		a.routeSkips.WithLabelValues(s.Sink, s.Reason).Inc()
	}
	if n, err := a.bus.FitFinding(res.Finding); n > 0 || err != nil {
		a.logger.Warn("finding trimmed to fit the bus's max payload", "finding", res.Finding.ID, "trimmed_bytes", n, "error", err)
	}
	if err := a.bus.PublishFindings(ctx, targets, res.Finding); err != nil {
		return fmt.Errorf("publish finding %s for sinks %v: %w", res.Finding.ID, targets, err)
	}

	return nil
}

// SilencedSource marks the enrichment that says a finding was silenced.
const SilencedSource = "silencer"

// keepSilenced keeps a silenced finding where an operator can still see
// it: the finding store behind the finding page, with the page's signed
// link in the debug log. Failing to keep it does not fail the event: the
// silencer's decision stands, and the log line says what was silenced.
func (a *App) keepSilenced(ctx context.Context, f *event.Finding) {
	// Said as evidence too, so the page shows it like anything else.
	f.Add(event.Enrichment{Title: "Silenced", Source: SilencedSource, Blocks: []event.Block{
		event.MarkdownBlock("🔕 Silenced by " + f.Silenced.By + ": " + f.Silenced.Reason + ". No sink received this finding."),
	}})
	a.redact(f)
	log := a.logger.With("finding", f.ID, "silenced_by", f.Silenced.By, "reason", f.Silenced.Reason)
	if a.chat.findings != nil {
		if err := a.chat.findings.Put(ctx, f); err != nil {
			log.Warn("silenced finding not kept for the finding page", "err", err)
			return
		}
		if u := a.chat.links.URL(f.ID); u != "" { // nil-safe: "" without public_url
			log = log.With("page", u)
		}
	}
	log.Debug("finding silenced: delivered to no sink")
}

// RedactionSource marks the enrichment that says what was redacted.
const RedactionSource = "redaction"

// redact removes secrets from f before any sink sees it and, when it
// removed some, says how many at the end of the finding, which every sink
// and the page render like any other evidence.
func (a *App) redact(f *event.Finding) {
	found := a.redactor.Finding(f)
	if found.Total() == 0 {
		return
	}
	f.Add(event.Enrichment{Title: "Redacted", Source: RedactionSource, Blocks: []event.Block{
		event.MarkdownBlock("🔒 " + found.Note() + " before this finding left medic."),
	}})
}

func (a *App) deliverTo(c *sinks.Configured) bus.Handler {
	name := c.Spec.Name
	encoded, _ := c.Sink.(sinks.EncodedSender)
	// A sink that keeps its own durable record of what it delivered needs
	// no second one.
	self, _ := c.Sink.(sinks.SelfDeduplicating)
	records := a.delivered
	if self != nil && self.DeduplicatesItself() {
		records = nil
	}
	return func(ctx context.Context, d *bus.Delivery) error {
		var (
			id         = d.Header.Get(bus.HeaderFindingID)
			receivedAt time.Time
			f          *event.Finding
		)
		if encoded == nil || id == "" {
			f = new(event.Finding)
			if uerr := event.UnmarshalFinding(d.Data, f); uerr != nil {
				return bus.Permanent(fmt.Errorf("decode finding on %s: %w", d.Subject, uerr))
			}
			id, receivedAt = f.ID, f.Event.ReceivedAt
		} else {
			receivedAt, _ = time.Parse(time.RFC3339Nano, d.Header.Get(bus.HeaderReceivedAt))
		}
		key := sinks.IdempotencyKey(name, id)
		if records != nil && id != "" {
			// Redelivered after a crash between the send and the ack: the
			// record says it was sent. A failed read sends anyway; a
			// possible duplicate is better than a possibly lost finding.
			switch done, rerr := records.Delivered(ctx, key); {
			case rerr != nil:
				a.logger.Warn("cannot read the delivery record; sending", "sink", name, "finding", id, "err", rerr)
			case done:
				a.logger.Info("finding already delivered to this sink; not sending it again",
					"sink", name, "finding", id, "attempt", d.Attempt)
				a.skipped.WithLabelValues(name).Inc()
				return nil
			}
		}
		start := time.Now()
		var err error
		if f == nil {
			// The hot path: the sink writes the stored JSON as it is.
			err = encoded.SendEncoded(ctx, id, d.Data)
		} else {
			err = c.Sink.Send(ctx, f)
		}
		if err != nil {
			a.failures.WithLabelValues(name).Inc()
			return fmt.Errorf("send finding %s to sink %s: %w", id, name, err)
		}
		if records != nil && id != "" {
			// Recorded even when medic is stopping: the send happened. Record
			// waits out a NATS leader election (seconds) within this bound.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
			if rerr := records.Record(rctx, key); rerr != nil {
				a.logger.Warn("finding delivered but not recorded; a redelivery would send it again",
					"sink", name, "finding", id, "err", rerr)
			}
			cancel()
		}
		a.deliverySecs.WithLabelValues(name).Observe(time.Since(start).Seconds())
		a.deliveries.WithLabelValues(name).Inc()
		if !receivedAt.IsZero() {
			a.endToEnd.WithLabelValues(name).Observe(time.Since(receivedAt).Seconds())
		}
		return nil
	}
}

func (a *App) countDeadLetter(consumer string) func(*bus.Delivery, string) {
	return func(*bus.Delivery, string) { a.deadLetters.WithLabelValues(consumer).Inc() }
}

func (a *App) initMetrics() error {
	a.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "medic_sink_deliveries_total", Help: "Findings delivered, by sink.",
	}, []string{"sink"})
	a.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "medic_sink_failures_total", Help: "Failed delivery attempts, by sink (each is retried or dead-lettered).",
	}, []string{"sink"})
	a.deliverySecs = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "medic_sink_delivery_duration_seconds", Help: "Time a sink takes to deliver one finding.",
		Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 30},
	}, []string{"sink"})
	a.endToEnd = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "medic_event_to_delivery_seconds", Help: "Time from receiving an event to delivering its finding, by sink.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 120},
	}, []string{"sink"})
	a.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "medic_sink_redeliveries_skipped_total",
		Help: "Findings redelivered (after a crash) that the delivery record showed were already sent, by sink.",
	}, []string{"sink"})
	a.routeSkips = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "medic_sink_skipped_total",
		Help: "Findings routed to a sink that its routing keys kept from it (send_resolved, activity, mute_intervals, stop), by sink and reason.",
	}, []string{"sink", "reason"})
	a.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "medic_dead_letters_total", Help: "Messages moved to the dead-letter stream, by consumer.",
	}, []string{"consumer"})
	intakeYield := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "medic_pipeline_intake_yield_seconds_total",
		Help: "Time playbook and sink workers waited for trigger intake in flight (engine.intake_yield).",
	}, func() float64 {
		if a.bus == nil {
			return 0
		}
		return a.bus.IntakeYield().Seconds()
	})
	for _, c := range []prometheus.Collector{a.deliveries, a.failures, a.deliverySecs, a.endToEnd, a.deadLetters, a.skipped, a.routeSkips, intakeYield} {
		if err := a.registry.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}
