package app

import (
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/promql"
	"github.com/medichq/medic/internal/plugins"
)

// Option changes how New assembles medic.
type Option func(*options)

type options struct {
	kube    kubernetes.Interface
	dynamic dynamic.Interface
	// rest is what kube was built from (commands in pods need it); nil
	// for a caller's fakes.
	rest *rest.Config
	// plugins are the registries playbooks and sinks are built from:
	// plugins.Builtin() unless WithPlugins says otherwise (plugins.go).
	plugins *plugins.Set
}

// WithKubeClients hands medic the Kubernetes clients its actions use (and
// its triggers, where they take them from the App), instead of the ones it
// would build from its configuration. Tests pass fake clientsets.
func WithKubeClients(kube kubernetes.Interface, dyn dynamic.Interface) Option {
	return func(o *options) { o.kube, o.dynamic = kube, dyn }
}

// actionEnv is what the actions get at run time: the cluster and the
// Prometheus, each nil when not configured (the actions then add a note).
func (a *App) actionEnv(o options) (*actions.Env, error) {
	env := &actions.Env{
		Logger:      a.logger.With("component", "action"),
		ClusterName: a.cfg.ClusterName,
		Kube:        o.kube,
		Dynamic:     o.dynamic,
		RESTConfig:  o.rest,
		Remediation: actions.PolicyFrom(a.cfg.Remediation),
	}
	if p := a.cfg.Prometheus; p.URL != "" {
		api, err := promql.NewAPI(promql.Config{URL: p.URL, BearerTokenFile: p.BearerTokenFile, Timeout: p.Timeout})
		if err != nil {
			return nil, fmt.Errorf("prometheus: %w", err)
		}
		env.Prometheus = api
		a.logger.Info("prometheus_enricher queries Prometheus", "url", p.URL)
	}
	return env, nil
}
