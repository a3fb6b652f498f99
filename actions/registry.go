// Package actions holds the action registry and the built-in actions. An
// action adds to a Finding: it changes its title or description, or appends
// enrichments (logs, events, status, links, runbook hits).
//
// Registration is explicit: each action package exports Register, which adds
// its actions to a Registry with Add, and the binary's wiring
// (internal/plugins.Builtin) lists the packages it ships. An action declares
// the interface of what it uses of Env; Add checks, when the action
// registers, that Env provides it, and the action's body sees only that.
package actions

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/registry"
	"github.com/medichq/medic/rag"
)

// Action runs against one finding with the app's Env. It is built once per
// playbook load from its parameters, so it must be safe for concurrent use.
// It is what the engine runs; authors write a Runner, which Add binds to
// an Action.
type Action interface {
	Run(ctx context.Context, env *Env, f *event.Finding) error
}

// Runner is an action as its author writes it: Run sees only D, the
// interface of the Env methods the action uses (interface{ KubeClient()
// kubernetes.Interface }, interface{ Cluster() string }, or any for an
// action that uses nothing of it). Declaring D keeps what an action reaches
// visible in its signature and in Registry.Uses.
type Runner[D any] interface {
	Run(ctx context.Context, deps D, f *event.Finding) error
}

// RunFunc adapts a function to Runner.
type RunFunc[D any] func(ctx context.Context, deps D, f *event.Finding) error

// Run calls fn.
func (fn RunFunc[D]) Run(ctx context.Context, deps D, f *event.Finding) error {
	return fn(ctx, deps, f)
}

// Env is what the app gives actions at run time, built once by
// internal/app (and by the agent for its tool calls). Parameters are
// checked at load time without an Env, so `medic playbooks validate` needs
// no cluster. Fields are nil when the capability is not configured; actions
// then add a clear note instead of failing.
//
// Actions do not read the fields: they see Env through the interface D of
// the methods below that they declare (Add). The methods are nil-safe, so a
// nil *Env reads as nothing configured. The fields stay exported so that the
// app and tests build an Env as a literal.
type Env struct {
	Logger *slog.Logger
	// ClusterName labels findings from this medic instance.
	ClusterName string
	// Kube and Dynamic reach the cluster; nil when no cluster is configured.
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// RESTConfig is the configuration Kube was built from: commands in pods
	// (pods/exec) need it to open a stream. Nil with Kube.
	RESTConfig *rest.Config
	// Remediation is the operator's remediation policy; the zero value is
	// read-only.
	Remediation Remediation
	// Prometheus answers PromQL queries; nil when prometheus.url is not set.
	Prometheus promv1.API
	// AI answers questions about findings (ask_ai, the chat buttons); it
	// returns rag.ErrNotConfigured when no model is configured. KB finds a
	// finding's runbooks (runbook_enricher); nil when the knowledge base
	// could not be opened.
	AI rag.Answerer
	KB *rag.Retriever
}

// Log is the logger to log to, never nil.
func (e *Env) Log() *slog.Logger {
	if e == nil || e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}

// Cluster is the configuration's cluster_name.
func (e *Env) Cluster() string {
	if e == nil {
		return ""
	}
	return e.ClusterName
}

// KubeClient is the typed Kubernetes client; nil without a cluster.
func (e *Env) KubeClient() kubernetes.Interface {
	if e == nil {
		return nil
	}
	return e.Kube
}

// DynamicClient is the dynamic Kubernetes client, for objects of any kind;
// nil without a cluster.
func (e *Env) DynamicClient() dynamic.Interface {
	if e == nil {
		return nil
	}
	return e.Dynamic
}

// KubeRESTConfig is the configuration the clients were built from (pods/exec
// opens its stream with it); nil without a cluster.
func (e *Env) KubeRESTConfig() *rest.Config {
	if e == nil {
		return nil
	}
	return e.RESTConfig
}

// Policy is the operator's remediation policy; read-only when not set.
func (e *Env) Policy() Remediation {
	if e == nil {
		return Remediation{}
	}
	return e.Remediation
}

// PrometheusAPI answers PromQL queries; nil when prometheus.url is not set.
func (e *Env) PrometheusAPI() promv1.API {
	if e == nil {
		return nil
	}
	return e.Prometheus
}

// Answerer answers questions about findings; nil when the app gave none.
func (e *Env) Answerer() rag.Answerer {
	if e == nil {
		return nil
	}
	return e.AI
}

// Runbooks finds a finding's runbooks in the knowledge base; nil when it
// could not be opened.
func (e *Env) Runbooks() *rag.Retriever {
	if e == nil {
		return nil
	}
	return e.KB
}

// Registry holds the actions a binary ships. The zero value is not usable;
// use NewRegistry. internal/plugins.Builtin fills one with every built-in
// action; a test fills one with the package it tests.
type Registry struct {
	defs *registry.Registry[Action]

	mu   sync.RWMutex
	uses map[string][]string // action name → the Env methods its D lists
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{defs: registry.New[Action]("action"), uses: map[string][]string{}}
}

// Definition describes one registered action.
type Definition = registry.Definition[Action]

// Add registers the action name, `actions.Add(r, name, doc, defaults,
// build)`: P is its parameter struct (defaults returns it filled with
// defaults; the registry calls its Validate), D the interface of what its
// Runner uses of Env. build is called with the decoded parameters each time
// a playbook naming the action loads.
//
// Add panics if D is not an interface that *Env satisfies, or if name is
// registered twice: programming errors that no configuration can cause,
// caught the first time the binary (or a test) builds its registry.
func Add[P, D any](r *Registry, name, doc string, defaults func() *P, build func(*P) (Runner[D], error)) {
	dt := reflect.TypeFor[D]()
	if dt.Kind() != reflect.Interface || !reflect.TypeFor[*Env]().Implements(dt) {
		panic(fmt.Sprintf("action %q: its Runner must take an interface of Env's methods, not %v", name, dt))
	}
	methods := make([]string, dt.NumMethod()) // sorted, as reflect lists them
	for i := range methods {
		methods[i] = dt.Method(i).Name
	}
	registry.Add(r.defs, name, doc, defaults, func(p *P) (Action, error) {
		run, err := build(p)
		if err != nil {
			return nil, err
		}
		return bound[D]{run}, nil
	})
	r.mu.Lock()
	r.uses[name] = methods
	r.mu.Unlock()
}

// bound is a Runner[D] as the engine runs it: Env narrowed to D.
type bound[D any] struct{ r Runner[D] }

// Run hands the Runner the Env as D; Add checked that *Env is a D, so the
// assertion cannot fail (a nil *Env is a D too: its methods are nil-safe).
func (b bound[D]) Run(ctx context.Context, env *Env, f *event.Finding) error {
	return b.r.Run(ctx, any(env).(D), f)
}

// Deferred reports whether the Runner defers itself (see Deferred).
func (b bound[D]) Deferred() bool {
	d, ok := b.r.(Deferred)
	return ok && d.Deferred()
}

// RunnerOf returns the Runner that an action built by a Registry binds, for
// a package that looks at its own actions' types (the remediation
// Executor); a itself for any other Action.
func RunnerOf(a Action) any {
	if u, ok := a.(interface{ runner() any }); ok {
		return u.runner()
	}
	return a
}

func (b bound[D]) runner() any { return b.r }

// Build decodes node strictly into the action's parameters and builds it.
func (r *Registry) Build(name string, node *yaml.Node) (Action, error) {
	return r.defs.Build(name, node)
}

// Has reports whether name is registered.
func (r *Registry) Has(name string) bool { return r.defs.Has(name) }

// Names lists registered actions, sorted.
func (r *Registry) Names() []string { return r.defs.Names() }

// Definitions lists registered actions sorted by name, for docs and schemas.
func (r *Registry) Definitions() []Definition { return r.defs.Definitions() }

// Uses lists the Env methods the action name declared it uses, sorted; nil
// when name is not registered (an action that uses nothing has an empty,
// non-nil list).
func (r *Registry) Uses(name string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.uses[name]
}

// NoParams is the parameter struct of actions that take none.
type NoParams struct{}

// Register adds package actions' own actions: create_finding,
// default_enricher, template_enricher and the silencers.
func Register(r *Registry) {
	addCreateFinding(r)
	addDefaultEnricher(r)
	addTemplateEnricher(r)
	addSilencers(r)
}
