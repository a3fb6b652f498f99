package robusta

import (
	"fmt"
	"regexp"
	"strings"
)

// The mappings from Robusta's names to medic's are data: one row per
// Robusta name. A row may name several medic targets, best first; the first
// one this binary has is used, and using a later one is a loss the report
// states. Where no target is registered, the report says medic lacks the
// first one, so the figures rise as medic grows without touching the rows.

// triggerRow maps one Robusta trigger.
type triggerRow struct {
	robusta string
	medic   string
	// params rewrites Robusta's parameters for medic (nil: unchanged).
	params func(p map[string]any) map[string]any
	// todo is what to do when medic has no equivalent.
	todo string
}

// actionRow maps one Robusta action.
type actionRow struct {
	robusta string
	// medic are the candidate targets, best first.
	medic []string
	// fallbackLoss says what a target after the first loses.
	fallbackLoss string
	// loss says what the mapping always loses.
	loss string
	// params rewrites Robusta's parameters; it reports what it drops.
	params func(c *itemConv, p map[string]any) map[string]any
	// essential, when set, says why a playbook without this action is not
	// the playbook its author wrote (a silencer: it would deliver what
	// was silenced; a remediation: it would report a fix it does not
	// make), so it is not converted.
	essential string
	// todo is what to do when none of medic is there.
	todo string
}

// sinkRow maps one Robusta sink type.
type sinkRow struct {
	robusta string
	medic   string
	// params maps a Robusta parameter to medic's (same name when absent).
	params map[string]string
	// secrets are the medic parameters that hold a secret: they become a
	// reference to a Kubernetes Secret, never a value in the output.
	secrets []string
	// convert rewrites Robusta parameters that do not map one to one
	// (mail_sink's Apprise URL) into medic key, value pairs; a value may be
	// a secretRef.
	convert map[string]func(c *itemConv, v any) []any
	// set are medic parameters every converted sink gets, where medic's
	// default would behave differently from Robusta's sink.
	set  map[string]any
	todo string
}

// changeKinds are the Kinds medic has change triggers for
// (on_<kind>_create|update|delete|all_changes).
var changeKinds = []string{
	"pod", "deployment", "replicaset", "statefulset", "daemonset", "job", "cronjob", "node",
	"service", "configmap", "secret", "ingress", "namespace", "horizontalpodautoscaler", "persistentvolumeclaim",
}

// otherKinds are Kinds Robusta has change triggers for and medic watches
// only through on_kubernetes_resource_operation, which names them by
// group/version/resource (the core group is empty: v1/serviceaccounts).
var otherKinds = map[string]string{
	"clusterrole":        "rbac.authorization.k8s.io/v1/clusterroles",
	"clusterrolebinding": "rbac.authorization.k8s.io/v1/clusterrolebindings",
	"serviceaccount":     "v1/serviceaccounts",
	"persistentvolume":   "v1/persistentvolumes",
	"networkpolicy":      "networking.k8s.io/v1/networkpolicies",
	"role":               "rbac.authorization.k8s.io/v1/roles",
	"rolebinding":        "rbac.authorization.k8s.io/v1/rolebindings",
}

// helmReleaseParams turns the release names and namespace Robusta's Helm
// triggers match exactly into one include rule of the trigger's scope.
// The scope is then converted as a Robusta scope, whose patterns match from
// the start (re.match), so each value ends in $: it matches the whole
// release name and namespace, as Robusta's comparison did. A scope of the playbook's own is left as it is: the
// trigger then reports the two keys it cannot merge.
func helmReleaseParams(p map[string]any) map[string]any {
	if _, ok := p["scope"]; ok {
		return p
	}
	rule := map[string]any{}
	// Only a list of strings (or one string) is carried: anything else
	// stays an unknown parameter rather than a dropped condition.
	if names := stringsOf(p["names"]); len(names) > 0 && (len(names) == len(asList(p["names"])) || isString(p["names"])) {
		quoted := make([]string, len(names))
		for i, n := range names {
			quoted[i] = regexp.QuoteMeta(n) + "$"
		}
		rule["name"] = strings.Join(quoted, "|")
		delete(p, "names")
	}
	if ns, ok := p["namespace"].(string); ok && ns != "" {
		rule["namespace"] = regexp.QuoteMeta(ns) + "$"
		delete(p, "namespace")
	}
	if len(rule) > 0 {
		p["scope"] = map[string]any{"include": []any{rule}}
	}
	return p
}

var changeOps = map[string][]string{
	"create":      {"create"},
	"update":      {"update"},
	"delete":      {"delete"},
	"all_changes": {"create", "update", "delete"},
}

var triggerRows = buildTriggerRows()

func buildTriggerRows() map[string]triggerRow {
	rows := map[string]triggerRow{}
	add := func(r triggerRow) { rows[r.robusta] = r }
	for _, n := range []string{
		"on_prometheus_alert", "on_pod_crash_loop", "on_image_pull_backoff", "on_job_failure",
		"on_pod_oom_killed", "on_container_oom_killed", "on_pod_evicted", "on_schedule",
		"on_kubernetes_resource_operation",
		"on_helm_release_unhealthy", "on_helm_release_fail", "on_helm_release_deploy", "on_helm_release_uninstall",
	} {
		row := triggerRow{robusta: n, medic: n}
		if strings.HasPrefix(n, "on_helm_release_") {
			row.params = helmReleaseParams
		}
		add(row)
	}
	for _, op := range []string{"create", "update", "delete", "all_changes"} {
		for _, k := range changeKinds {
			n := "on_" + k + "_" + op
			add(triggerRow{robusta: n, medic: n})
		}
		n := "on_kubernetes_any_resource_" + op
		add(triggerRow{robusta: n, medic: n})
		for k, plural := range otherKinds {
			ops := changeOps[op]
			add(triggerRow{
				robusta: "on_" + k + "_" + op, medic: "on_kubernetes_resource_operation",
				params: func(p map[string]any) map[string]any {
					p["resources"] = []any{plural}
					p["operations"] = toAny(ops)
					return p
				},
			})
		}
	}
	// Robusta's warning-event triggers are medic's one warning-event
	// trigger, which fires on a new (or newly repeated) Warning.
	for _, n := range []string{"on_kubernetes_warning_event", "on_kubernetes_warning_event_create", "on_kubernetes_warning_event_update"} {
		add(triggerRow{robusta: n, medic: "on_kubernetes_warning_event"})
	}
	add(triggerRow{robusta: "on_event_create", todo: "medic watches Warning events only: use on_kubernetes_warning_event"})
	add(triggerRow{robusta: "on_kubernetes_warning_event_delete", todo: "a deleted Event is not an incident; drop the playbook"})
	for _, n := range []string{"on_report_callback", "on_sink_callback", "on_recurring_callback"} {
		add(triggerRow{robusta: n, todo: "Robusta UI callbacks have no medic equivalent; medic's Slack buttons (ask_ai, silence, more_logs) cover the common ones"})
	}
	return rows
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// triggerFor returns the row of a Robusta trigger; an unknown name maps to
// itself.
func triggerFor(name string) triggerRow {
	if r, ok := triggerRows[name]; ok {
		return r
	}
	return triggerRow{robusta: name, medic: name}
}

var actionRows = rowsByName([]actionRow{
	{robusta: "create_finding", medic: []string{"create_finding"}, params: findingParams},
	{robusta: "customise_finding", medic: []string{"create_finding"}, params: findingParams},
	{robusta: "template_enricher", medic: []string{"template_enricher"}, params: templateParams},
	{robusta: "alert_explanation_enricher", medic: []string{"template_enricher"}, params: explanationParams},
	{robusta: "default_enricher", medic: []string{"default_enricher"}, params: defaultEnricherParams},
	{robusta: "logs_enricher", medic: []string{"logs_enricher"}},
	{robusta: "foreign_logs_enricher", medic: []string{"logs_enricher"}, params: dropAllParams},
	{robusta: "pod_events_enricher", medic: []string{"pod_events_enricher"}},
	{robusta: "event_resource_events", medic: []string{"resource_events_enricher"}, params: dropAllParams},
	{robusta: "resource_events_enricher", medic: []string{"resource_events_enricher"}},
	{robusta: "deployment_events_enricher", medic: []string{"resource_events_enricher"}, params: dropAllParams},
	{robusta: "event_report", medic: []string{"resource_events_enricher"}, params: dropAllParams},
	{robusta: "deployment_status_enricher", medic: []string{"deployment_status_enricher"}},
	{robusta: "statefulset_status_enricher", medic: []string{"statefulset_status_enricher"}},
	{robusta: "daemonset_status_enricher", medic: []string{"daemonset_status_enricher"}},
	{robusta: "pod_status_enricher", medic: []string{"pod_status_enricher"}},
	{robusta: "node_status_enricher", medic: []string{"node_status_enricher"}},
	{robusta: "node_allocatable_resources_enricher", medic: []string{"node_status_enricher"}, params: dropAllParams},
	{robusta: "node_running_pods_enricher", medic: []string{"node_status_enricher"}, params: dropAllParams},
	{robusta: "node_health_watcher", medic: []string{"node_status_enricher"}, params: dropAllParams},
	{robusta: "job_info_enricher", medic: []string{"job_info_enricher"}},
	{robusta: "related_pods", medic: []string{"related_pods"}},
	{robusta: "resource_yaml", medic: []string{"resource_yaml"}},
	{robusta: "pod_issue_investigator", medic: []string{"pod_issue_investigator"}},
	{robusta: "job_events_enricher", medic: []string{"job_events_enricher", "resource_events_enricher"},
		fallbackLoss: "the events of the Job only, not of its pods", params: dropAllParams},
	{robusta: "job_pod_enricher", medic: []string{"job_pod_enricher", "related_pods"},
		fallbackLoss: "the Job's pods are listed without their logs", params: dropAllParams},
	{robusta: "pod_oom_killer_enricher", medic: []string{"pod_oom_killer_enricher", "pod_issue_investigator"},
		fallbackLoss: "the investigator's view instead of the OOM-killer report", params: dropAllParams},
	{robusta: "oom_killer_enricher", medic: []string{"pod_oom_killer_enricher", "pod_issue_investigator"},
		fallbackLoss: "the investigator's view instead of the OOM-killer report", params: dropAllParams},
	{robusta: "report_crash_loop", medic: []string{"report_crash_loop", "pod_issue_investigator"},
		fallbackLoss: "the investigator's view (status, previous logs) instead of Robusta's crash-loop report", params: dropAllParams},
	{robusta: "image_pull_backoff_reporter", medic: []string{"image_pull_backoff_reporter", "pod_issue_investigator"},
		fallbackLoss: "the investigator's view instead of the pull-error analysis", params: dropAllParams},
	{robusta: "report_scheduling_failure", medic: []string{"report_scheduling_failure", "pod_issue_investigator"},
		fallbackLoss: "the investigator's view instead of the scheduling report", params: dropAllParams},
	{robusta: "chat_gpt_enricher", medic: []string{"ask_ai"}, params: askAIParams},
	{robusta: "holmes_enricher", medic: []string{"ask_ai"}, params: askAIParams},
	{robusta: "prometheus_enricher", medic: []string{"prometheus_enricher"}, params: promqlParams},
	{robusta: "custom_graph_enricher", medic: []string{"prometheus_enricher"}, params: promqlParams},
	{robusta: "pod_graph_enricher", medic: []string{"prometheus_enricher"}, params: graphParams("pod")},
	{robusta: "node_graph_enricher", medic: []string{"prometheus_enricher"}, params: graphParams("node")},
	{robusta: "oomkilled_container_graph_enricher", medic: []string{"prometheus_enricher"}, params: graphParams("container")},
	{robusta: "resource_babysitter", medic: []string{"report_changes"}},
	{robusta: "json_change_tracker", medic: []string{"report_changes"}},
	{robusta: "helm_status_enricher", medic: []string{"helm_status_enricher"}},
	{robusta: "pod_status_silencer", medic: []string{"pod_status_silencer"}, essential: silences},
	{robusta: "node_restart_silencer", medic: []string{"node_restart_silencer"}, essential: silences},
	{robusta: "severity_silencer", medic: []string{"severity_silencer"}, essential: silences},
	{robusta: "name_silencer", medic: []string{"name_silencer"}, essential: silences},
	{robusta: "delete_pod", medic: []string{"delete_pod"}, essential: remediates},
	{robusta: "rollout_restart", medic: []string{"rollout_restart"}, essential: remediates},
	{robusta: "restart_deployment", medic: []string{"rollout_restart"}, essential: remediates},
	{robusta: "scale_workload", medic: []string{"scale_workload"}, essential: remediates},
	{robusta: "alert_handling_job", medic: []string{"run_job"}, essential: remediates},
	{robusta: "pod_bash_enricher", medic: []string{"pod_bash_enricher"}},
	{robusta: "node_bash_enricher", medic: []string{"node_bash_enricher"}},
	{robusta: "kubectl_command", medic: []string{"kubectl_command"}, essential: remediates},
	{robusta: "alert_graph_enricher", medic: []string{"default_enricher"}, params: dropAllParams,
		loss: "a link to the alert's graph in Prometheus instead of the graph image"},
	{robusta: "statefulset_replicas_enricher", medic: []string{"statefulset_status_enricher"}, params: dropAllParams},
	{robusta: "warning_events_report", medic: []string{"resource_events_enricher"}, params: dropAllParams},
	{robusta: "pod_evicted_enricher", medic: []string{"pod_status_enricher"}, params: dropAllParams,
		loss: "the pod's status instead of Robusta's eviction report"},
	{robusta: "resource_events_diff", medic: []string{"report_changes"}, params: dropAllParams},
	{robusta: "create_event_finding", medic: []string{"create_finding"}, params: findingParams},
	{robusta: "node_cpu_enricher", medic: []string{"prometheus_enricher"}, params: graphParams("node")},
	{robusta: "cpu_throttling_analysis_enricher", medic: []string{"prometheus_enricher"}, params: throttlingParams},
	{robusta: "target_down_dns_silencer", essential: silences, todo: "silence the alert in Alertmanager, or use name_silencer"},
	{robusta: "button_enricher", medic: []string{"template_enricher"}, params: buttonParams,
		loss: "a link in the finding instead of a button"},
	{robusta: "krr_scan", todo: "run KRR as a CronJob and send its report with the `webhook` sink, or open an issue"},
	{robusta: "add_deployment_lines_to_grafana", todo: "medic does not write Grafana annotations; change triggers with report_changes put the change in the finding instead, or open an issue"},
	{robusta: "add_alert_lines_to_grafana", todo: "medic does not write Grafana annotations; open an issue"},
	{robusta: "python_profiler", todo: "medic has no profilers; run one by hand with pod_bash_enricher, or open an issue"},
	{robusta: "python_memory", todo: "medic has no profilers; open an issue"},
	{robusta: "java_process_inspector", todo: "medic has no profilers; open an issue"},
	{robusta: "stack_trace_enricher", todo: "medic has no stack-trace action; open an issue"},
	{robusta: "disk_benchmark", todo: "run it as a Job with run_job"},
	{robusta: "mention_enricher", todo: "put the mention in the title with create_finding or route with channel_override"},
})

// Why a playbook cannot do without an action.
const (
	silences   = "without it the playbook would deliver what Robusta silenced"
	remediates = "without it the playbook would report without remediating"
)

func rowsByName(rows []actionRow) map[string]actionRow {
	m := make(map[string]actionRow, len(rows))
	for _, r := range rows {
		if _, dup := m[r.robusta]; dup {
			panic("robusta: action row " + r.robusta + " twice")
		}
		m[r.robusta] = r
	}
	return m
}

func actionFor(name string) actionRow {
	if r, ok := actionRows[name]; ok {
		return r
	}
	return actionRow{robusta: name, medic: []string{name}}
}

// secretsDir is where the Helm chart mounts secrets (medic.secretsDir).
const secretsDir = "/var/run/secrets/medic"

// SecretName is the Kubernetes Secret the converted values refer to.
const SecretName = "medic-sinks"

var sinkRows = map[string]sinkRow{
	"slack_sink": {robusta: "slack_sink", medic: "slack",
		params: map[string]string{"slack_channel": "channel", "channel_override": "channel_override"}},
	"ms_teams_sink": {robusta: "ms_teams_sink", medic: "teams", secrets: []string{"webhook_url"}},
	"webhook_sink":  {robusta: "webhook_sink", medic: "webhook"},
	"file_sink":     {robusta: "file_sink", medic: "file", params: map[string]string{"file_name": "path"}},
	"pagerduty_sink": {robusta: "pagerduty_sink", medic: "pagerduty",
		params: map[string]string{"api_key": "routing_key"}, secrets: []string{"routing_key"}},
	"opsgenie_sink": {robusta: "opsgenie_sink", medic: "opsgenie",
		params: map[string]string{"host": "api_url"}, secrets: []string{"api_key"}},
	"mail_sink": {robusta: "mail_sink", medic: "email", convert: map[string]func(*itemConv, any) []any{"mailto": mailParams}},
	"jira_sink": {robusta: "jira_sink", medic: "jira",
		secrets: []string{"api_key"}, convert: map[string]func(*itemConv, any) []any{"priority_mapping": jiraPriorities}},
	"mattermost_sink": {robusta: "mattermost_sink", medic: "mattermost", secrets: []string{"token"}},
	"discord_sink": {robusta: "discord_sink", medic: "discord",
		params: map[string]string{"url": "webhook_url"}, secrets: []string{"webhook_url"}},
	"telegram_sink": {robusta: "telegram_sink", medic: "telegram",
		params: map[string]string{"thread_id": "message_thread_id"}, secrets: []string{"bot_token"}},
	"google_chat_sink": {robusta: "google_chat_sink", medic: "google_chat",
		params: map[string]string{"webhook_url": "webhook_url"}, secrets: []string{"webhook_url"}},
	"webex_sink": {robusta: "webex_sink", medic: "webex",
		params: map[string]string{"bot_access_token": "bot_token"}, secrets: []string{"bot_token"}},
	"kafka_sink": {robusta: "kafka_sink", medic: "kafka",
		convert: map[string]func(*itemConv, any) []any{"kafka_url": kafkaBrokers, "auth": kafkaAuth}},
	"robusta_sink": {robusta: "robusta_sink",
		todo: "the Robusta UI has no medic equivalent: medic keeps findings on its own finding page; drop this sink"},
	// Robusta sent every finding as CRITICAL (each one pages): always_critical
	// keeps that, where medic would send warnings as WARNING.
	"victorops_sink": {robusta: "victorops_sink", medic: "victorops",
		params: map[string]string{"url": "webhook_url"}, secrets: []string{"webhook_url"},
		set: map[string]any{"always_critical": true}},
	"servicenow_sink":  {robusta: "servicenow_sink", todo: noSink("ServiceNow")},
	"service_now_sink": {robusta: "service_now_sink", todo: noSink("ServiceNow")},
	"rocketchat_sink":  {robusta: "rocketchat_sink", todo: noSink("Rocket.Chat")},
	"zulip_sink":       {robusta: "zulip_sink", todo: noSink("Zulip")},
	"pushover_sink":    {robusta: "pushover_sink", todo: noSink("Pushover")},
	"datadog_sink":     {robusta: "datadog_sink", todo: noSink("Datadog")},
	"yamessenger_sink": {robusta: "yamessenger_sink", todo: noSink("Yandex Messenger")},
}

func noSink(what string) string {
	return fmt.Sprintf("medic has no %s sink; send to it through the `webhook` sink and a relay, or open an issue", what)
}

// sinkKeyWidens says, for the routing keys every Robusta sink may have,
// whether losing the key would let the sink receive more than before.
var sinkRoutingKeys = map[string]bool{
	"scope":            true,
	"match":            true,
	"activity":         true,
	"mute_intervals":   true,
	"stop":             true,
	"send_resolved":    false, // decided by its value, see sinkKeyLoss
	"grouping":         false,
	"channel_override": false,
}

// secretKeyOf returns the file the chart mounts a sink's secret at.
func secretKeyOf(sink, key string) string { return "sink-" + sink + "-" + key }

func secretPath(sink, key string) string { return secretsDir + "/" + secretKeyOf(sink, key) }

// slackBotTokenPath is where the chart mounts slack.botToken.
const slackBotTokenPath = secretsDir + "/slack-bot-token"

// severityMap maps Robusta's severities to medic's, as medic's sink scopes
// read them (scope.robustaSeverity): Robusta gives a Prometheus critical
// alert HIGH, error MEDIUM, warning LOW.
var severityMap = map[string]string{
	"HIGH": "critical", "MEDIUM": "high", "LOW": "warning", "INFO": "info", "DEBUG": "none",
}

// graphQueries are the PromQL queries of Robusta's graph enrichers, by
// subject and resource_type, over the event's subject.
var graphQueries = map[string]map[string]string{
	"pod": {
		"cpu":    `sum by (container) (rate(container_cpu_usage_seconds_total{namespace="{{ .Subject.Namespace }}", pod="{{ .Subject.Name }}", container!=""}[5m]))`,
		"memory": `sum by (container) (container_memory_working_set_bytes{namespace="{{ .Subject.Namespace }}", pod="{{ .Subject.Name }}", container!=""})`,
		"disk":   `sum by (persistentvolumeclaim) (kubelet_volume_stats_used_bytes{namespace="{{ .Subject.Namespace }}"})`,
	},
	"node": {
		"cpu":    `sum(rate(container_cpu_usage_seconds_total{node="{{ .Subject.Node }}", container!=""}[5m]))`,
		"memory": `sum(container_memory_working_set_bytes{node="{{ .Subject.Node }}", container!=""})`,
		"disk":   `1 - sum(node_filesystem_avail_bytes{mountpoint="/"}) / sum(node_filesystem_size_bytes{mountpoint="/"})`,
	},
	"container": {
		"memory": `max by (container) (container_memory_working_set_bytes{namespace="{{ .Subject.Namespace }}", pod="{{ .Subject.Name }}", container!=""})`,
		"cpu":    `sum by (container) (rate(container_cpu_usage_seconds_total{namespace="{{ .Subject.Namespace }}", pod="{{ .Subject.Name }}", container!=""}[5m]))`,
	},
}

func graphParams(subject string) func(c *itemConv, p map[string]any) map[string]any {
	return func(c *itemConv, p map[string]any) map[string]any {
		rt := strings.ToLower(fmt.Sprint(p["resource_type"]))
		if p["resource_type"] == nil {
			rt = "memory"
			if subject != "container" {
				rt = "cpu"
			}
		}
		q, ok := graphQueries[subject][rt]
		if !ok {
			c.fail("resource_type %q has no query in medic's mapping; write one with prometheus_enricher's query", p["resource_type"])
			return nil
		}
		out := map[string]any{"query": q, "range": "1h", "graph": true,
			"title": fmt.Sprintf("%s %s", strings.ToUpper(rt[:1])+rt[1:], subject)}
		for _, k := range sortedKeys(p) {
			switch k {
			case "resource_type":
			case "display_limits", "delay_graph_s":
				c.lose("%s dropped: medic draws the usage only", k)
			default:
				c.lose("parameter %q dropped: medic's prometheus_enricher has no such parameter", k)
			}
		}
		return out
	}
}

func throttlingParams(c *itemConv, p map[string]any) map[string]any {
	dropAllParams(c, p)
	return map[string]any{"title": "CPU throttling", "range": "1h", "graph": true,
		"query": `sum by (container) (rate(container_cpu_cfs_throttled_periods_total{namespace="{{ .Subject.Namespace }}", pod="{{ .Subject.Name }}"}[5m])) / sum by (container) (rate(container_cpu_cfs_periods_total{namespace="{{ .Subject.Namespace }}", pod="{{ .Subject.Name }}"}[5m]))`}
}

// jiraPriorities maps jira_sink's priority_mapping (Robusta severities →
// Jira priorities) to the jira sink's priorities (medic severities).
func jiraPriorities(c *itemConv, v any) []any {
	m, ok := v.(map[string]any)
	if !ok {
		c.lose("priority_mapping is not a mapping: dropped")
		return nil
	}
	out := map[string]any{}
	for _, k := range sortedKeys(m) {
		sev, ok := severityMap[strings.ToUpper(k)]
		switch {
		case !ok:
			c.lose("priority_mapping: %q is not a Robusta severity", k)
		case out[sev] != nil:
			c.lose("priority_mapping: %s and another severity are both medic's %s; the first is kept", k, sev)
		default:
			out[sev] = m[k]
		}
	}
	return []any{"priorities", out}
}

func buttonParams(c *itemConv, p map[string]any) map[string]any {
	text, _ := p["button_text"].(string)
	link, _ := p["button_url"].(string)
	if link == "" {
		c.fail("button_url: required")
		return nil
	}
	if text == "" {
		text = link
	}
	return map[string]any{"template": fmt.Sprintf("[%s](%s)", convertTemplate(text), convertTemplate(link))}
}

func promqlParams(c *itemConv, p map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range sortedKeys(p) {
		v := p[k]
		switch k {
		case "promql_query", "query":
			out["query"] = convertTemplate(fmt.Sprint(v))
		case "graph_title", "title":
			out["title"] = fmt.Sprint(v)
		case "graph_duration_minutes":
			out["range"] = fmt.Sprintf("%vm", v)
			out["graph"] = true
		case "prometheus_url", "prometheus_auth", "prometheus_additional_labels":
			c.lose("%s dropped: medic queries the Prometheus of its configuration (prometheus.url)", k)
		case "query_type":
			if s := fmt.Sprint(v); s == "Range" || s == "range" {
				out["graph"] = true
				if out["range"] == nil {
					out["range"] = "1h"
				}
			}
		default:
			c.lose("parameter %q dropped: medic's prometheus_enricher has no such parameter", k)
		}
	}
	if out["query"] == nil {
		c.fail("no promql_query: medic's prometheus_enricher needs a query")
		return nil
	}
	if out["graph"] == true && out["range"] == nil {
		out["range"] = "1h"
	}
	return out
}

func askAIParams(c *itemConv, p map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range sortedKeys(p) {
		if k == "model" {
			out["model"] = p[k]
			continue
		}
		c.lose("parameter %q dropped: medic's ask_ai uses the ai: configuration (ai.apiKey, ai.chatModel) and the finding's evidence", k)
	}
	return out
}

func dropAllParams(c *itemConv, p map[string]any) map[string]any {
	for _, k := range sortedKeys(p) {
		c.lose("parameter %q dropped: medic's action has no such parameter", k)
	}
	return map[string]any{}
}

// defaultEnricherParams: medic's default_enricher always adds the alert's
// annotations, which is what Robusta's alert_annotations_enrichment: true
// asks for; false (no annotations) and any other parameter are losses.
func defaultEnricherParams(c *itemConv, p map[string]any) map[string]any {
	if v, ok := p["alert_annotations_enrichment"].(bool); ok && v {
		p = clone(p)
		delete(p, "alert_annotations_enrichment")
	}
	return dropAllParams(c, p)
}

func findingParams(c *itemConv, p map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range sortedKeys(p) {
		v := p[k]
		switch k {
		case "title", "description":
			out[k] = convertTemplate(fmt.Sprint(v))
		case "severity":
			sev, ok := severityMap[strings.ToUpper(fmt.Sprint(v))]
			if !ok {
				c.lose("severity %v dropped: not a Robusta severity", v)
				continue
			}
			out["severity"] = sev
		case "aggregation_key":
			c.lose("aggregation_key dropped: medic makes one finding per event")
		default:
			c.lose("parameter %q dropped: medic's create_finding has no such parameter", k)
		}
	}
	return out
}

func templateParams(c *itemConv, p map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range sortedKeys(p) {
		if k == "template" {
			out[k] = convertTemplate(fmt.Sprint(p[k]))
			continue
		}
		out[k] = p[k]
	}
	return out
}

func explanationParams(c *itemConv, p map[string]any) map[string]any {
	var parts []string
	for _, k := range sortedKeys(p) {
		switch k {
		case "alert_explanation", "recommended_resolution":
		default:
			c.lose("parameter %q dropped", k)
		}
	}
	if s, _ := p["alert_explanation"].(string); s != "" {
		parts = append(parts, convertTemplate(s))
	}
	if s, _ := p["recommended_resolution"].(string); s != "" {
		parts = append(parts, "**Recommended resolution:** "+convertTemplate(s))
	}
	return map[string]any{"title": "Alert explanation", "template": strings.Join(parts, "\n\n")}
}

func isString(v any) bool { _, ok := v.(string); return ok }
