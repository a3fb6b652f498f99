// Package plugins links every built-in trigger, action and sink into the
// binary. Their packages register themselves from init; importing them here
// is the one line that adding a new one takes.
package plugins

import (
	_ "github.com/medichq/medic/actions"             // built-in actions
	_ "github.com/medichq/medic/actions/ai"          // runbook_enricher, ask_ai
	_ "github.com/medichq/medic/actions/kube"        // Kubernetes evidence: logs, events, status, investigator, YAML
	_ "github.com/medichq/medic/actions/promql"      // prometheus_enricher
	_ "github.com/medichq/medic/actions/remediate"   // opt-in remediation: delete_pod, rollout_restart, …
	_ "github.com/medichq/medic/sinks/all"           // every sink type
	_ "github.com/medichq/medic/triggers/kubernetes" // on_pod_crash_loop, on_job_failure, … (built-in kubernetes-events.yaml names them)
	_ "github.com/medichq/medic/triggers/prometheus" // on_prometheus_alert
	_ "github.com/medichq/medic/triggers/schedule"   // on_schedule
	_ "github.com/medichq/medic/triggers/webhook"    // on_webhook
)
