// Package plugins is the list of the triggers, actions and sinks the medic
// binary ships: Builtin calls each trigger and sink package's Register into
// registries that are values, handed to whoever builds plugins (the
// playbook loader, the app, the CLI). No trigger or sink registers itself
// from init; adding a trigger or sink package is one line in Builtin. The
// actions are still linked by the blank imports below (their packages
// register from init) until they take the same shape.
package plugins

import (
	_ "github.com/medichq/medic/actions"           // built-in actions
	_ "github.com/medichq/medic/actions/ai"        // runbook_enricher, ask_ai
	_ "github.com/medichq/medic/actions/kube"      // Kubernetes evidence: logs, events, status, investigator, YAML
	_ "github.com/medichq/medic/actions/promql"    // prometheus_enricher
	_ "github.com/medichq/medic/actions/remediate" // opt-in remediation: delete_pod, rollout_restart, …
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
	Sinks    *sinks.Registry
}

// Builtin returns the registries of everything medic ships, one Register
// call per package.
func Builtin() *Set {
	s := &Set{Triggers: triggers.NewRegistry(), Sinks: sinks.NewRegistry()}

	kubernetes.Register(s.Triggers) // on_pod_crash_loop, on_job_failure, on_<kind>_<op>, Helm releases, … (built-in kubernetes-events.yaml names them)
	prometheus.Register(s.Triggers) // on_prometheus_alert
	schedule.Register(s.Triggers)   // on_schedule
	webhook.Register(s.Triggers)    // on_webhook

	all.Register(s.Sinks) // every sink type: slack, teams, pagerduty, file, stdout, … (sinks/all lists them)
	return s
}

// Playbooks are the registries the playbook loader builds from.
func (s *Set) Playbooks() playbooks.Plugins {
	return playbooks.Plugins{Triggers: s.Triggers}
}
