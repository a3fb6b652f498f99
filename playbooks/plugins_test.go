package playbooks

import (
	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/ai"
	"github.com/medichq/medic/actions/kube"
	"github.com/medichq/medic/triggers"
	"github.com/medichq/medic/triggers/kubernetes"
	"github.com/medichq/medic/triggers/prometheus"
	"github.com/medichq/medic/triggers/schedule"
	"github.com/medichq/medic/triggers/webhook"
)

// testPlugins are the registries the tests build playbooks from: every
// trigger, package actions' own actions and those the built-in playbooks
// name (actions/kube, ask_ai), so that the built-in playbooks load.
var testPlugins = Plugins{
	Triggers: triggers.NewRegistry(kubernetes.Register, prometheus.Register, schedule.Register, webhook.Register),
	Actions: func() *actions.Registry {
		r := actions.NewRegistry()
		actions.Register(r)
		ai.Register(r)
		kube.Register(r)
		return r
	}(),
}
