package playbooks

import (
	"github.com/medichq/medic/triggers"
	"github.com/medichq/medic/triggers/kubernetes"
	"github.com/medichq/medic/triggers/prometheus"
	"github.com/medichq/medic/triggers/schedule"
	"github.com/medichq/medic/triggers/webhook"
)

// testPlugins are the registries the tests build playbooks from: every
// trigger, so that the built-in playbooks load.
var testPlugins = Plugins{
	Triggers: triggers.NewRegistry(kubernetes.Register, prometheus.Register, schedule.Register, webhook.Register),
}
