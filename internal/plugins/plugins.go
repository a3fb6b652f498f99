// Package plugins is the list of the triggers, actions and sinks the medic
// binary ships: Builtin creates the registries and calls every plugin
// package's Register explicitly, one line each, and the registries are
// values handed to whoever builds plugins (the playbook loader, the agent's
// tools, the app, the CLI). Nothing registers itself from init; adding a
// trigger, action or sink package is one line in Builtin.
package plugins

import (
	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/ai"
	"github.com/medichq/medic/actions/kube"
	"github.com/medichq/medic/actions/promql"
	"github.com/medichq/medic/actions/remediate"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/all"
	"github.com/medichq/medic/triggers"
	"github.com/medichq/medic/triggers/kubernetes"
	"github.com/medichq/medic/triggers/prometheus"
	"github.com/medichq/medic/triggers/schedule"
	"github.com/medichq/medic/triggers/webhook"
)

// Set is one registry per kind of plugin.
type Set struct {
	Triggers *triggers.Registry
	Actions  *actions.Registry
	Sinks    *sinks.Registry
}

// Builtin returns the registries of everything medic ships, one Register
// call per package. Each call builds fresh registries; the app builds one
// Set at start.
func Builtin() *Set {
	s := &Set{Triggers: triggers.NewRegistry(), Actions: actions.NewRegistry(), Sinks: sinks.NewRegistry()}

	kubernetes.Register(s.Triggers) // on_pod_crash_loop, on_job_failure, on_<kind>_<op>, Helm releases, … (built-in kubernetes-events.yaml names them)
	prometheus.Register(s.Triggers) // on_prometheus_alert
	schedule.Register(s.Triggers)   // on_schedule
	webhook.Register(s.Triggers)    // on_webhook

	actions.Register(s.Actions)   // create_finding, default_enricher, template_enricher, the silencers
	ai.Register(s.Actions)        // runbook_enricher, ask_ai
	kube.Register(s.Actions)      // Kubernetes evidence: logs, events, status, investigator, YAML, Helm, silencers
	promql.Register(s.Actions)    // prometheus_enricher
	remediate.Register(s.Actions) // opt-in remediation: delete_pod, rollout_restart, …

	all.Register(s.Sinks) // every sink type: slack, teams, pagerduty, file, stdout, … (sinks/all lists them)
	return s
}

// Playbooks are the registries the playbook loader builds from.
func (s *Set) Playbooks() playbooks.Plugins {
	return playbooks.Plugins{Triggers: s.Triggers, Actions: s.Actions}
}
