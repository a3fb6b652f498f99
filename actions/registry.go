// Package actions holds the action registry and the built-in actions. An
// action adds to a Finding: it changes its title or description, or appends
// enrichments (logs, events, status, links, runbook hits). Each action lives
// in one file and registers itself from init with one Register line.
package actions

import (
	"context"
	"log/slog"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/registry"
	"github.com/medichq/medic/rag"
)

// Action runs against one finding. It is built once per playbook load from
// its parameters, so it must be safe for concurrent use.
type Action interface {
	Run(ctx context.Context, env *Env, f *event.Finding) error
}

// Env carries what actions need at run time. Parameters are checked at load
// time without an Env, so `medic playbooks validate` needs no cluster.
// Fields are nil when the capability is not configured; actions then add a
// clear note instead of failing.
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

// Func adapts a function to Action.
type Func func(ctx context.Context, env *Env, f *event.Finding) error

// Run calls fn.
func (fn Func) Run(ctx context.Context, env *Env, f *event.Finding) error { return fn(ctx, env, f) }

var defs = registry.New[Action]("action")

// Definition describes one registered action.
type Definition = registry.Definition[Action]

// Register adds a action under name. P is its parameter struct; defaults
// returns it filled with defaults. A duplicate name panics at start-up.
func Register[P any](name, doc string, defaults func() *P, build func(*P) (Action, error)) {
	registry.Add(defs, name, doc, defaults, build)
}

// Build decodes node strictly into the action's parameters and builds it.
func Build(name string, node *yaml.Node) (Action, error) { return defs.Build(name, node) }

// Names lists registered actions, sorted.
func Names() []string { return defs.Names() }

// Definitions lists registered actions sorted by name, for docs and schemas.
func Definitions() []Definition { return defs.Definitions() }

// NoParams is the parameter struct of actions that take none.
type NoParams struct{}
