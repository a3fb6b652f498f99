// Package plugins is the list of what the binary ships: Builtin creates the
// registries and calls every plugin package's Register explicitly, one line
// each, so adding a trigger, action or sink package is one line here.
package plugins

import (
	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/ai"
	"github.com/medichq/medic/actions/kube"
	"github.com/medichq/medic/actions/promql"
	"github.com/medichq/medic/actions/remediate"

	// Triggers and sinks still register themselves from init.
	_ "github.com/medichq/medic/sinks/all"           // every sink type
	_ "github.com/medichq/medic/triggers/kubernetes" // on_pod_crash_loop, on_job_failure, … (built-in kubernetes-events.yaml names them)
	_ "github.com/medichq/medic/triggers/prometheus" // on_prometheus_alert
	_ "github.com/medichq/medic/triggers/schedule"   // on_schedule
	_ "github.com/medichq/medic/triggers/webhook"    // on_webhook
)

// Set is the registries of one binary's plugins, handed as values to
// whoever builds them (the playbook loader, the agent's tools, the CLI).
type Set struct {
	Actions *actions.Registry
}

// Builtin returns the registries of every plugin medic ships. Each call
// builds fresh registries; the app builds one Set at start.
func Builtin() *Set {
	s := &Set{Actions: actions.NewRegistry()}
	actions.Register(s.Actions)   // create_finding, default_enricher, template_enricher, the silencers
	ai.Register(s.Actions)        // runbook_enricher, ask_ai
	kube.Register(s.Actions)      // Kubernetes evidence: logs, events, status, investigator, YAML, Helm, silencers
	promql.Register(s.Actions)    // prometheus_enricher
	remediate.Register(s.Actions) // opt-in remediation: delete_pod, rollout_restart, …
	return s
}
