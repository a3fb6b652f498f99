package playbooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// Engine runs the playbooks of the current set against events.
type Engine struct {
	store         *Store
	env           *actions.Env
	logger        *slog.Logger
	actionTimeout time.Duration
	now           func() time.Time

	runs          *prometheus.CounterVec
	actionErrors  *prometheus.CounterVec
	actionSeconds *prometheus.HistogramVec
	unmatched     prometheus.Counter
	silenced      *prometheus.CounterVec
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
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{e.runs, e.actionErrors, e.actionSeconds, e.unmatched, e.silenced} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register engine metrics: %w", err)
			}
		}
	}
	return e, nil
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
	var res Result
	type deferredAction struct {
		pb *Playbook
		a  Action
	}
	var deferred []deferredAction // explain the evidence: after all of it
	for _, pb := range set.Playbooks {
		if !pb.Matches(ev) {
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
	if res.Finding == nil {
		e.unmatched.Inc()
	}
	return res, nil
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
