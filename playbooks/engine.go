package playbooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/triggers"
)

// RateLimiter keeps the triggers' rate-limit claims: *triggerstate.Limits
// (JetStream KV, shared by replicas, kept across restarts). Admit reports
// whether eventID may fire for key within window; the answer for one event
// ID does not change when the event is redelivered.
type RateLimiter interface {
	Admit(ctx context.Context, key, eventID string, window time.Duration, now time.Time) (bool, error)
}

// windowCap is a RateLimiter whose claims expire (triggerstate.Limits:
// after kubernetes.state_ttl): a longer window is cut to MaxWindow.
type windowCap interface {
	MaxWindow() time.Duration
}

// Engine runs the playbooks of the current set against events.
type Engine struct {
	store         *Store
	env           *actions.Env
	logger        *slog.Logger
	actionTimeout time.Duration
	now           func() time.Time
	limiter       RateLimiter // nil: rate limits are not applied
	maxWindow     time.Duration
	// windowsChecked is the last set whose rate limits were held to
	// maxWindow (checkWindows), so each set is warned about once.
	windowsChecked atomic.Pointer[Set]

	runs          *prometheus.CounterVec
	actionErrors  *prometheus.CounterVec
	actionSeconds *prometheus.HistogramVec
	unmatched     prometheus.Counter
	silenced      *prometheus.CounterVec
	rateLimited   *prometheus.CounterVec
}

// Result is what running the playbooks for one event produced.
type Result struct {
	// Finding is nil when no playbook matched.
	Finding *event.Finding
	// Sinks is the union of the sinks the matched playbooks named, in order;
	// empty means "the default sinks".
	Sinks []string
}

// NewEngine returns an engine over store. env is handed to every action.
func NewEngine(store *Store, env *actions.Env, actionTimeout time.Duration, logger *slog.Logger, reg prometheus.Registerer) (*Engine, error) {
	e := &Engine{
		store:         store,
		env:           env,
		logger:        logger,
		actionTimeout: actionTimeout,
		now:           time.Now,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_playbook_runs_total",
			Help: "Playbook runs, by playbook.",
		}, []string{"playbook"}),
		actionErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_action_errors_total",
			Help: "Actions that failed; the finding carries a note instead of their enrichment.",
		}, []string{"action"}),
		actionSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "medic_action_duration_seconds",
			Help:    "Time actions take.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .5, 1, 5, 30},
		}, []string{"action"}),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "medic_events_unmatched_total",
			Help: "Events no playbook matched.",
		}),
		silenced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_findings_silenced_total",
			Help: "Findings a silencer action stopped before any sink, by playbook and silencer.",
		}, []string{"playbook", "silencer"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_trigger_rate_limited_total",
			Help: "Playbook runs a trigger's rate_limit held back (the trigger matched, but fired for the same key within its window), by trigger.",
		}, []string{"trigger"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{e.runs, e.actionErrors, e.actionSeconds, e.unmatched, e.silenced, e.rateLimited} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register engine metrics: %w", err)
			}
		}
	}
	return e, nil
}

// LimitRates makes the engine apply the rate limits of the triggers that
// have one (triggers.Limited) through l. Call it before the first Run;
// without it (medic playbooks test) every matching playbook runs.
func (e *Engine) LimitRates(l RateLimiter) {
	e.limiter = l
	if c, ok := l.(windowCap); ok {
		e.maxWindow = c.MaxWindow()
	}
}

// checkWindows warns, once per playbook set (when the engine first runs
// it), about the rate limits the limiter cuts: a window longer than its
// claims live (kubernetes.state_ttl) would be silently shorter.
func (e *Engine) checkWindows(set *Set) {
	// Load first: every event passes here, and only a new set needs the
	// write (a Swap per event would make 32 workers contend for the line).
	if e.limiter == nil || e.maxWindow <= 0 || e.windowsChecked.Load() == set || e.windowsChecked.Swap(set) == set {
		return
	}
	for _, pb := range set.Playbooks {
		for _, t := range pb.Triggers {
			if lim, ok := t.Trigger.(triggers.Limited); ok && lim.RateLimit() > e.maxWindow {
				e.logger.Warn("a trigger's rate_limit is longer than kubernetes.state_ttl, which bounds the rate-limit state; it is cut to state_ttl",
					"playbook", pb.Name, "trigger", t.Name, "rate_limit", lim.RateLimit(), "state_ttl", e.maxWindow)
			}
		}
	}
}

// ErrNoPlaybooks is returned before the first good playbook set loaded.
var ErrNoPlaybooks = errors.New("no playbook set loaded")

// Run runs every matching playbook in order, each one's actions in order,
// and stops after a playbook with stop: true. A silencer action (one that
// sets Finding.Silenced) stops everything after it, later playbooks and
// deferred actions included, as Robusta's stop_processing does: the finding
// is silenced, so evidence for it would be work for nobody. Action failures do not fail the
// run: they become a visible note on the finding, because a finding with a
// missing enrichment is worth more to an on-call engineer than no finding.
func (e *Engine) Run(ctx context.Context, ev *event.Event) (Result, error) {
	set := e.store.Current() // one set for the whole event
	if set == nil {
		return Result{}, ErrNoPlaybooks
	}
	return e.RunSet(ctx, set, ev)
}

// RunSet is Run against an explicit set (for `medic playbooks test`).
func (e *Engine) RunSet(ctx context.Context, set *Set, ev *event.Event) (Result, error) {
	e.checkWindows(set)
	var res Result
	type deferredAction struct {
		pb *Playbook
		a  Action
	}
	var deferred []deferredAction // explain the evidence: after all of it
	limited := false
	for _, pb := range set.Playbooks {
		if !pb.Matches(ev) {
			continue
		}
		if !e.admit(ctx, pb, ev) {
			limited = true
			continue
		}
		if res.Finding == nil {
			res.Finding = event.NewFinding(*ev, e.now())
			res.Finding.PlaybookSet = set.Version
		}
		e.runs.WithLabelValues(pb.Name).Inc()
		res.Finding.Playbooks = append(res.Finding.Playbooks, pb.Name)
		res.Finding.PlaybookSources = append(res.Finding.PlaybookSources, pb.Source())
		for _, a := range pb.Actions {
			if err := ctx.Err(); err != nil {
				return res, fmt.Errorf("run playbook %s: %w", pb.Name, err)
			}
			if actions.IsDeferred(a.Action) {
				deferred = append(deferred, deferredAction{pb, a})
				continue
			}
			e.runAction(ctx, pb, a, res.Finding)
			if res.Finding.Silenced != nil {
				e.silence(pb, a, res.Finding)
				return res, nil
			}
		}
		for _, s := range pb.Sinks {
			if !slices.Contains(res.Sinks, s) {
				res.Sinks = append(res.Sinks, s)
			}
		}
		if pb.Stop {
			break
		}
	}
	for _, d := range deferred {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("run playbook %s: %w", d.pb.Name, err)
		}
		e.runAction(ctx, d.pb, d.a, res.Finding)
	}
	if res.Finding == nil && !limited {
		e.unmatched.Inc()
	}
	return res, nil
}

// admit applies the rate limits of pb's triggers that match ev: the
// playbook runs when one matching trigger has no limit or its limit admits
// ev. A refusal is a deliberate skip, counted by trigger; the claim is keyed
// by the event ID, so a redelivered event gets the answer it got before
// (neither counted twice nor lost). When the state cannot be read the
// playbook runs: a duplicate finding is better than a missed one.
func (e *Engine) admit(ctx context.Context, pb *Playbook, ev *event.Event) bool {
	if e.limiter == nil {
		return true
	}
	var refused *Trigger
	for i := range pb.Triggers {
		t := &pb.Triggers[i]
		if !t.Match(ev) {
			continue
		}
		lim, ok := t.Trigger.(triggers.Limited)
		if !ok || lim.RateLimit() <= 0 {
			return true
		}
		ok, err := e.limiter.Admit(ctx, lim.LimitKey(ev), ev.ID, lim.RateLimit(), e.now())
		if err != nil {
			e.logger.Warn("rate-limit state unavailable; running the playbook", "playbook", pb.Name, "trigger", t.Name, "event", ev.ID, "err", err)
			return true
		}
		if ok {
			return true
		}
		refused = t
	}
	if refused == nil { // Matches said one matched; be safe
		return true
	}
	e.rateLimited.WithLabelValues(refused.Name).Inc()
	e.logger.Debug("rate limit holds the playbook back", "playbook", pb.Name, "trigger", refused.Name, "event", ev.ID)
	return false
}

// silence records that action a of playbook pb silenced f.
func (e *Engine) silence(pb *Playbook, a Action, f *event.Finding) {
	f.Silenced.By = a.Name + " in playbook " + pb.Name
	e.silenced.WithLabelValues(pb.Name, a.Name).Inc()
}

func (e *Engine) runAction(ctx context.Context, pb *Playbook, a Action, f *event.Finding) {
	ctx, cancel := context.WithTimeout(ctx, e.actionTimeout)
	defer cancel()
	start := time.Now()
	err := e.safeRun(ctx, a, f)
	e.actionSeconds.WithLabelValues(a.Name).Observe(time.Since(start).Seconds())
	if err == nil {
		return
	}
	e.actionErrors.WithLabelValues(a.Name).Inc()
	e.logger.Warn("action failed", "playbook", pb.Name, "action", a.Name, "finding", f.ID, "err", err)
	f.Add(event.Enrichment{
		Title:  fmt.Sprintf("%s could not run", a.Name),
		Source: a.Name,
		Blocks: []event.Block{event.MarkdownBlock(fmt.Sprintf("⚠ %s (playbook %s): %v", a.Name, pb.Name, err))},
	})
}

func (e *Engine) safeRun(ctx context.Context, a Action, f *event.Finding) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e.logger.Error("action panicked", "action", a.Name, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error (panic): %v", r)
		}
	}()
	return a.Run(ctx, e.env, f)
}
