// Package kubernetes is the source that turns changes in a Kubernetes
// cluster into medic events.
//
// Detection and matching are split. The Detector runs shared informers
// (client-go) and turns object changes into event.Events — pod_crash_loop,
// pod_oom_killed, container_oom_killed, image_pull_backoff, pod_evicted,
// job_failure, node_not_ready, kubernetes_warning_event,
// kubernetes_resource, helm_release — in the vocabulary of event/kubeevent
// and publishes them through event.Publisher. The playbook triggers
// (triggers/kubernetes: on_pod_crash_loop, …) match those events with their
// parameters; this package does not import them.
//
// The Detector is told what the running playbook set wants (SetInterest
// with the Interest of its triggers) and publishes an occurrence when one of
// those triggers' filters passes. What needs the objects stays here:
//
//   - Delays: fire_delay (on_image_pull_backoff) and duration
//     (on_node_not_ready) are timers in the detector. When one expires the
//     detector reads the object again from the informer cache, so a state
//     that recovered within the delay stays quiet. Only the source has the
//     cache; an event on the bus cannot be asked whether it is still true.
//   - Restarts: every published occurrence is marked "seen" in State
//     (JetStream KV bucket medic_trigger_state), so the re-list after a
//     restart reports nothing twice. The occurrences are the objects' states;
//     recognising one again needs the object, which only the source has.
//
// Rate limits are not the detector's: like every source's, they are the
// matching side's (playbooks.Engine applies triggers.Limited, with claims in
// the same bucket, counted by medic_trigger_rate_limited_total). What a
// Kubernetes trigger's rate_limit counts per (the owning workload of a pod,
// found through its ReplicaSet and Job owners in the informer caches) is
// written on every event as the label kubeevent.LabelRateLimitSubject, so
// the matchers stay pure functions of the event.
//
// Event IDs derive from stable facts of the object (UID, container, restart
// count, termination time, event count, transition times), so two replicas
// watching the same cluster publish the same ID and JetStream keeps one.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/internal/kube"
)

// Options configure a Detector.
type Options struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface // nil: on_kubernetes_resource stays silent
	// Namespaces to watch; empty means all.
	Namespaces []string
	Publisher  event.Publisher
	// State keeps what was reported and the episodes' first sightings;
	// nil: in memory.
	State  State
	Logger *slog.Logger
	// Clock drives delays and ages; nil: the real clock.
	Clock clock.WithDelayedExecution
	// StateTTL is how long State keeps a record (kubernetes.state_ttl; the
	// bucket's TTL); default 24h. It bounds the detector's memory of what
	// it published too.
	StateTTL time.Duration
	// MaxEventAge: past transitions older than this are not reported
	// (default 1h). See kube.Config.
	MaxEventAge time.Duration
	// Resync is the informers' resync period (default 0: none).
	Resync time.Duration
	// HelmReleases lets the Helm release triggers read Helm's release
	// records (Secrets labelled owner=helm); off, they stay silent.
	HelmReleases bool
	// OnHandled, when set, is called after a handler looked at an object
	// (and queued what it found): tests wait on it instead of on time.
	OnHandled func(obj any)
}

// Detector watches the cluster and publishes events for the triggers of
// the running playbook set.
type Detector struct {
	opts   Options
	log    *slog.Logger
	clock  clock.WithDelayedExecution
	state  State
	forbid *kube.ForbiddenLogger

	interest atomic.Pointer[Interest]

	queue   workqueue.TypedRateLimitingInterface[string]
	pendMu  sync.Mutex
	pending map[string]candidate // "ev:<id>" → the candidate

	seenMu sync.Mutex
	seen   map[string]time.Time // locally handled IDs: spares State lookups

	timerMu sync.Mutex
	timers  map[string]*armed // delayed re-checks, one per queue key

	episodeMu sync.Mutex
	episodes  map[string]map[string]bool // pod key → image-pull episode keys known here

	mu        sync.Mutex
	ctx       context.Context
	cancel    context.CancelFunc
	running   bool
	stopped   bool
	scopes    []*nsScope // one per watched namespace ("" = all)
	cluster   informers.SharedInformerFactory
	started   map[string]bool // typed informers registered: "pods", "jobs", …
	synced    []namedSync
	dyn       map[schema.GroupVersionResource]*dynWatch
	lastErrMu sync.Mutex
	lastErr   map[string]error
	wg        sync.WaitGroup

	// Helm release records: their own informers (a label selector on
	// Secrets), started only with Options.HelmReleases.
	helmFactories []informers.SharedInformerFactory
	helmWarned    bool

	// Idle bookkeeping: the sequence number of each key's latest Add; a key
	// leaves when a run that started after that Add succeeded.
	trackMu   sync.Mutex
	seq       uint64
	addSeq    map[string]uint64
	published atomic.Int64
}

type nsScope struct {
	ns      string
	factory informers.SharedInformerFactory
}

type namedSync struct {
	name   string
	synced cache.InformerSynced
}

type armed struct {
	at    time.Time
	timer clock.Timer
	fired atomic.Bool
}

// candidate is an event the detector may publish.
type candidate struct {
	ev event.Event
	// subject is what the triggers' rate limits count per (the owning
	// workload, the involved object and reason, the node, …); offer writes
	// it on the event as kubeevent.LabelRateLimitSubject.
	subject string
	// factTime is when a past transition happened; zero for ongoing states.
	// Transitions older than MaxEventAge are not reported.
	factTime time.Time
}

// NewDetector checks opts and returns a detector; Start runs it.
func NewDetector(opts Options) (*Detector, error) {
	if opts.Kube == nil {
		return nil, errors.New("kubernetes detector: no client")
	}
	if opts.Publisher == nil {
		return nil, errors.New("kubernetes detector: no publisher")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.StateTTL <= 0 {
		opts.StateTTL = 24 * time.Hour
	}
	if opts.MaxEventAge <= 0 {
		opts.MaxEventAge = time.Hour
	}
	if opts.State == nil {
		opts.State = NewMemoryState(opts.StateTTL, opts.Clock.Now)
	}
	d := &Detector{
		opts:     opts,
		log:      opts.Logger,
		clock:    opts.Clock,
		state:    opts.State,
		forbid:   &kube.ForbiddenLogger{Logger: opts.Logger},
		pending:  map[string]candidate{},
		seen:     map[string]time.Time{},
		timers:   map[string]*armed{},
		episodes: map[string]map[string]bool{},
		started:  map[string]bool{},
		dyn:      map[schema.GroupVersionResource]*dynWatch{},
		lastErr:  map[string]error{},
		addSeq:   map[string]uint64{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "medic-kubernetes"}),
	}
	d.interest.Store(NewInterest())
	namespaces := opts.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	for _, ns := range namespaces {
		d.scopes = append(d.scopes, &nsScope{ns: ns, factory: informers.NewSharedInformerFactoryWithOptions(
			opts.Kube, opts.Resync, informers.WithNamespace(ns))})
	}
	d.cluster = informers.NewSharedInformerFactory(opts.Kube, opts.Resync)
	return d, nil
}

// SetInterest hands the detector what the running playbook set wants
// (InterestOf its triggers); the application calls it on every (re)load.
// Informers the new interest needs are started; watches of custom
// resources (on_kubernetes_resource) no trigger names any more stop, while
// the typed informers (pods, jobs, nodes, events, …) stay once started:
// their caches also serve owners and evidence. Existing objects are looked at again, so a
// playbook added for a pod that is already crash looping fires.
func (d *Detector) SetInterest(in *Interest) {
	if in == nil {
		in = NewInterest()
	}
	prev := d.interest.Swap(in)
	if prev != nil && prev.sig == in.sig {
		return
	}
	d.mu.Lock()
	running := d.running
	d.mu.Unlock()
	if running {
		d.reconcile()
		d.rescan()
	}
}

// wants reports whether the running interest has a trigger for one of kinds.
func (d *Detector) wants(kinds ...event.Kind) bool { return d.interest.Load().Any(kinds...) }

// Start runs the informers the current triggers need and the worker that
// publishes. It returns at once; WaitForSync waits for the caches.
func (d *Detector) Start(ctx context.Context) error {
	d.mu.Lock()
	if d.running || d.stopped {
		d.mu.Unlock()
		return errors.New("kubernetes detector: already started")
	}
	d.ctx, d.cancel = context.WithCancel(ctx)
	d.running = true
	d.mu.Unlock()
	d.reconcile()
	d.wg.Go(d.work)
	return nil
}

// Stop ends every watch and timer and waits for the worker.
func (d *Detector) Stop() {
	d.mu.Lock()
	if !d.running || d.stopped {
		d.stopped = true
		d.mu.Unlock()
		return
	}
	d.stopped = true
	d.cancel()
	for _, w := range d.dyn {
		w.stop()
	}
	d.mu.Unlock()
	d.queue.ShutDown()
	d.timerMu.Lock()
	for k, a := range d.timers {
		a.timer.Stop()
		delete(d.timers, k)
	}
	d.timerMu.Unlock()
	for _, s := range d.scopes {
		s.factory.Shutdown()
	}
	d.cluster.Shutdown()
	d.mu.Lock()
	helm := slices.Clone(d.helmFactories)
	d.mu.Unlock()
	for _, f := range helm {
		f.Shutdown()
	}
	d.wg.Wait()
}

// WaitForSync waits until every started informer has listed its objects,
// or ctx ends; the error then names the informers that did not sync and the
// last error each one got (a forbidden list names the missing permission).
func (d *Detector) WaitForSync(ctx context.Context) error {
	for {
		d.mu.Lock()
		syncs := slices.Clone(d.synced)
		for _, w := range d.dyn {
			syncs = append(syncs, w.syncs...)
		}
		d.mu.Unlock()
		var missing []string
		for _, s := range syncs {
			if !s.synced() {
				missing = append(missing, s.name)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			var errs []error
			for _, m := range missing {
				if err := d.lastError(m); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", m, err))
				} else {
					errs = append(errs, fmt.Errorf("%s: not synced", m))
				}
			}
			return fmt.Errorf("kubernetes informers not synced: %w", errors.Join(errs...))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (d *Detector) recordErr(name string, err error) {
	d.lastErrMu.Lock()
	d.lastErr[name] = err
	d.lastErrMu.Unlock()
}

func (d *Detector) lastError(name string) error {
	d.lastErrMu.Lock()
	defer d.lastErrMu.Unlock()
	return d.lastErr[name]
}

// watchErrors returns the informer's error handler: forbidden errors are
// logged once, clearly; all are kept for WaitForSync.
func (d *Detector) watchErrors(name, resource, ns string) cache.WatchErrorHandlerWithContext {
	return func(_ context.Context, _ *cache.Reflector, err error) {
		d.recordErr(name, err)
		d.forbid.Report(resource, ns, err)
		if !apierrors.IsForbidden(err) && !errors.Is(err, context.Canceled) {
			d.log.Debug("kubernetes watch error", "informer", name, "err", err)
		}
	}
}

// reconcile starts the informers the current triggers need.
func (d *Detector) reconcile() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running || d.stopped {
		return
	}
	for _, k := range neededKinds(d.wants) {
		if k.cluster {
			d.startTyped(&nsScope{factory: d.cluster}, k.name, k.errorName(), k.informer(d.cluster), k.handlers(d))
			continue
		}
		for _, s := range d.scopes {
			d.startTyped(s, k.name, k.errorName(), k.informer(s.factory), k.handlers(d))
		}
	}
	for _, s := range d.scopes {
		s.factory.Start(d.ctx.Done())
	}
	d.cluster.Start(d.ctx.Done())
	d.reconcileHelm()
	d.reconcileDynamic()
}

// startTyped registers handler on a typed informer once per scope. Jobs may
// be wanted twice (owners and job_failure): the handler is added once and
// looks at the interest when it runs.
func (d *Detector) startTyped(s *nsScope, name, resource string, inf cache.SharedIndexInformer, handler cache.ResourceEventHandler) {
	key := name + "/" + s.ns
	if d.started[key] {
		return
	}
	d.started[key] = true
	_ = inf.SetWatchErrorHandlerWithContext(d.watchErrors(key, resource, s.ns))
	if handler != nil {
		if _, err := inf.AddEventHandler(handler); err != nil {
			d.log.Error("cannot watch kubernetes objects", "resource", resource, "err", err)
		}
	}
	d.synced = append(d.synced, namedSync{name: key, synced: inf.HasSynced})
}

// rescan looks at every cached object again (after the triggers changed).
func (d *Detector) rescan() {
	d.mu.Lock()
	started := maps2slice(d.started)
	d.mu.Unlock()
	for _, key := range started {
		name, ns, _ := strings.Cut(key, "/")
		k, ok := lookupWatched(name)
		if !ok || k.handle == nil {
			continue // Helm's records, caches of owners
		}
		f := d.cluster
		if !k.cluster {
			f = d.scope(ns).factory
		}
		for _, obj := range k.informer(f).GetStore().List() {
			k.handle(d, obj)
		}
	}
}

func maps2slice(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (d *Detector) scope(ns string) *nsScope {
	if len(d.scopes) == 1 && d.scopes[0].ns == "" {
		return d.scopes[0]
	}
	for _, s := range d.scopes {
		if s.ns == ns {
			return s
		}
	}
	return d.scopes[0]
}

// --- the queue ---------------------------------------------------------

const (
	prefixEvent = "ev:"
	prefixPull  = "pull:"
	prefixNode  = "node:"
)

// offer queues a candidate unless it was handled already or is too old.
func (d *Detector) offer(c candidate) {
	if !c.factTime.IsZero() && d.clock.Since(c.factTime) > d.opts.MaxEventAge {
		d.log.Debug("not reporting an old transition", "kind", c.ev.Kind, "subject", c.ev.Subject.String(), "at", c.factTime)
		return
	}
	if !d.wants(c.ev.Kind) || d.seenLocally(c.ev.ID) {
		return
	}
	c.ev.Labels = maps.Clone(c.ev.Labels) // the handler's map stays its own
	if c.ev.Labels == nil {
		c.ev.Labels = map[string]string{}
	}
	c.ev.Labels[kubeevent.LabelRateLimitSubject] = c.subject
	d.pendMu.Lock()
	d.pending[prefixEvent+c.ev.ID] = c
	d.pendMu.Unlock()
	d.enqueue(prefixEvent + c.ev.ID)
}

func (d *Detector) notify(obj any) {
	if d.opts.OnHandled != nil {
		d.opts.OnHandled(obj)
	}
}

// enqueue adds key to the work queue and notes it for Idle.
func (d *Detector) enqueue(key string) {
	d.trackMu.Lock()
	d.seq++
	d.addSeq[key] = d.seq
	d.trackMu.Unlock()
	d.queue.Add(key)
}

// after re-queues key at (or soon after) at; of several requests for one
// key the earliest wins.
func (d *Detector) after(key string, at time.Time) {
	d.timerMu.Lock()
	defer d.timerMu.Unlock()
	if a, ok := d.timers[key]; ok && !a.fired.Load() {
		if !at.Before(a.at) {
			return
		}
		a.timer.Stop()
	}
	wait := max(at.Sub(d.clock.Now()), 0)
	a := &armed{at: at}
	// The callback takes no lock the clock's callers may hold: a fake clock
	// runs it under its own lock, and after() calls the clock under timerMu.
	a.timer = d.clock.AfterFunc(wait, func() {
		a.fired.Store(true)
		d.enqueue(key)
	})
	d.timers[key] = a
}

// disarm cancels a pending re-check.
func (d *Detector) disarm(key string) {
	d.timerMu.Lock()
	defer d.timerMu.Unlock()
	if a, ok := d.timers[key]; ok {
		a.timer.Stop()
		delete(d.timers, key)
	}
}

// Armed is how many delayed re-checks are waiting (tests use it to know a
// delay has started).
func (d *Detector) Armed() int {
	d.timerMu.Lock()
	defer d.timerMu.Unlock()
	n := 0
	for k, a := range d.timers {
		if a.fired.Load() {
			delete(d.timers, k)
			continue
		}
		n++
	}
	return n
}

// Idle reports whether everything queued so far was processed (delayed
// re-checks that are still waiting aside; see Armed).
func (d *Detector) Idle() bool {
	d.trackMu.Lock()
	defer d.trackMu.Unlock()
	return len(d.addSeq) == 0
}

// Published counts the events the detector published.
func (d *Detector) Published() int64 { return d.published.Load() }

func (d *Detector) work() {
	for {
		key, shutdown := d.queue.Get()
		if shutdown {
			return
		}
		d.trackMu.Lock()
		started := d.addSeq[key]
		d.trackMu.Unlock()
		err := d.process(key)
		switch {
		case err == nil:
			d.queue.Forget(key)
			d.trackMu.Lock()
			if d.addSeq[key] == started {
				delete(d.addSeq, key)
			}
			d.trackMu.Unlock()
		case d.ctx.Err() != nil:
		default:
			d.log.Warn("kubernetes event not published yet; retrying", "item", key, "err", err)
			d.queue.AddRateLimited(key)
		}
		d.queue.Done(key)
	}
}

func (d *Detector) process(key string) error {
	switch {
	case strings.HasPrefix(key, prefixEvent):
		d.pendMu.Lock()
		c, ok := d.pending[key]
		d.pendMu.Unlock()
		if !ok {
			return nil
		}
		if err := d.handle(c); err != nil {
			return err
		}
		d.pendMu.Lock()
		if cur, ok := d.pending[key]; ok && cur.ev.ID == c.ev.ID {
			delete(d.pending, key)
		}
		d.pendMu.Unlock()
		return nil
	case strings.HasPrefix(key, prefixPull):
		return d.checkImagePull(strings.TrimPrefix(key, prefixPull))
	case strings.HasPrefix(key, prefixNode):
		d.checkNode(strings.TrimPrefix(key, prefixNode))
		return nil
	case strings.HasPrefix(key, prefixHelm):
		d.checkHelm(strings.TrimPrefix(key, prefixHelm))
		return nil
	}
	return nil
}

func (d *Detector) seenLocally(id string) bool {
	d.seenMu.Lock()
	defer d.seenMu.Unlock()
	_, ok := d.seen[id]
	return ok
}

func (d *Detector) markLocally(id string) {
	d.seenMu.Lock()
	defer d.seenMu.Unlock()
	if len(d.seen) > 200_000 { // bound memory; State still knows
		cut := d.clock.Now().Add(-d.opts.StateTTL)
		for k, t := range d.seen {
			if t.Before(cut) || len(d.seen) > 100_000 {
				delete(d.seen, k)
			}
		}
	}
	d.seen[id] = d.clock.Now()
}

// handle decides and publishes one candidate: once per occurrence, if one
// of the interest's triggers wants it. Whether a trigger's rate limit lets
// it run is the engine's to decide, for every replica alike.
func (d *Detector) handle(c candidate) error {
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	id := c.ev.ID
	if d.seenLocally(id) {
		return nil
	}
	seen, err := d.state.Seen(ctx, id)
	if err != nil {
		d.log.Warn("trigger state unavailable; deciding without it", "err", err)
	}
	if seen {
		d.markLocally(id)
		return nil
	}
	if !slices.ContainsFunc(d.interest.Load().Wants(c.ev.Kind), func(w Want) bool { return w.Filter(&c.ev) }) {
		return nil // no playbook wants it now
	}
	ev := c.ev
	ev.ReceivedAt = d.clock.Now().UTC()
	if _, err := d.opts.Publisher.Publish(ctx, []event.Event{ev}); err != nil {
		return fmt.Errorf("publish %s event %s: %w", ev.Kind, id, err)
	}
	d.published.Add(1)
	d.log.Info("kubernetes event published", "kind", ev.Kind, "subject", ev.Subject.String(), "id", id, "title", ev.Title)
	if err := d.state.MarkSeen(ctx, id); err != nil {
		d.log.Warn("cannot record a published event; a restart may publish it again", "err", err)
	}
	d.markLocally(id)
	return nil
}
