package robusta

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The mapping tests run every row against this binary's registries: a row
// whose target medic lacks must say so by name, a row whose target medic has
// must use it. Both hold before and after other branches add targets.

func convertDoc(t *testing.T, doc map[string]any, opts Options) *Result {
	t.Helper()
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(data, "test.yaml", opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func itemsOf(res *Result, kind string) []Item {
	var out []Item
	for _, it := range res.Items {
		if it.Kind == kind {
			out = append(out, it)
		}
	}
	return out
}

func hasReason(it Item, s string) bool {
	return slices.ContainsFunc(it.Reasons, func(r string) bool { return strings.Contains(r, s) })
}

// onePlaybook is a values file with one playbook p.
func onePlaybook(trigger map[string]any, actions ...any) map[string]any {
	return map[string]any{"customPlaybooks": []any{map[string]any{"name": "p", "triggers": []any{trigger}, "actions": actions}}}
}

// sample returns the sample parameters of a row, {} by default.
func sample(samples map[string]map[string]any, name string) map[string]any {
	if p := samples[name]; p != nil {
		return p
	}
	return map[string]any{}
}

var triggerSamples = map[string]map[string]any{
	"on_schedule":                      {"fixed_delay_repeat": map[string]any{"repeat": 3, "seconds_delay": 60}},
	"on_kubernetes_resource_operation": {"resources": []any{"deployments"}, "operations": []any{"update"}},
}

func TestTriggerRows(t *testing.T) {
	t.Parallel()
	registered := shipped.Triggers.Names()
	for _, name := range sortedKeys(triggerRows) {
		row := triggerRows[name]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := convertDoc(t, onePlaybook(map[string]any{name: sample(triggerSamples, name)},
				map[string]any{"default_enricher": map[string]any{}}), testOptions())
			it := itemsOf(res, KindTrigger)[0]
			switch {
			case missingTarget(t, it, row.medic, slices.Contains(registered, row.medic), "medic lacks `"+row.medic+"`"):
			case it.Outcome == NotConverted:
				// medic has the trigger but it rejects the parameters:
				// the reason is the trigger's own, not "lacks".
				if hasReason(it, "lacks") || hasReason(it, "no equivalent") {
					t.Errorf("registered %s reported missing: %+v", row.medic, it)
				}
				t.Logf("%s rejects the sample parameters: %v", row.medic, it.Reasons)
			default:
				if it.Outcome != Converted || it.Target != row.medic {
					t.Errorf("medic has %s: %+v", row.medic, it)
				}
				if !strings.Contains(string(res.Playbooks), row.medic+":") {
					t.Errorf("the playbook lacks %s:\n%s", row.medic, res.Playbooks)
				}
			}
		})
	}
}

// missingTarget checks a row whose target medic does not have (the row
// names none, or this binary lacks it) and reports whether it was one.
func missingTarget(t *testing.T, it Item, target string, registered bool, lacks string) bool {
	t.Helper()
	switch {
	case target == "":
		if it.Outcome != NotConverted || !hasReason(it, "no equivalent") || it.Todo == "" {
			t.Errorf("a row without equivalent: %+v", it)
		}
	case !registered:
		if it.Outcome != NotConverted || !hasReason(it, lacks) {
			t.Errorf("want not converted, %q: %+v", lacks, it)
		}
	default:
		return false
	}
	return true
}

// TestOtherKindsUseResourceOperation: a change trigger on a Kind medic has
// no own trigger for becomes on_kubernetes_resource_operation on its
// resource (by group/version/resource), never a trigger on any resource;
// every one builds in medic.
func TestOtherKindsUseResourceOperation(t *testing.T) {
	t.Parallel()
	row := triggerRows["on_clusterrole_all_changes"]
	p := row.params(map[string]any{"name_prefix": "admin"})
	if row.medic != "on_kubernetes_resource_operation" || fmt.Sprint(p["resources"]) != "[rbac.authorization.k8s.io/v1/clusterroles]" ||
		fmt.Sprint(p["operations"]) != "[create update delete]" || p["name_prefix"] != "admin" {
		t.Errorf("on_clusterrole_all_changes → %s %v", row.medic, p)
	}
	for kind := range otherKinds {
		name := "on_" + kind + "_update"
		row := triggerRows[name]
		if err := buildWith(row.medic, row.params(map[string]any{}), (&converter{opts: testOptions()}).triggersBuild); err != nil {
			t.Errorf("%s → %s: %v", name, row.medic, err)
		}
	}
}

var actionSamples = map[string]map[string]any{
	"prometheus_enricher":   {"promql_query": `up{namespace="$namespace"}`},
	"custom_graph_enricher": {"promql_query": "up", "graph_title": "Up", "graph_duration_minutes": 60},
	"create_finding":        {"title": "Pod $name failed", "severity": "HIGH"},
	"customise_finding":     {"title": "x"},
	"create_event_finding":  {"title": "x"},
	"template_enricher":     {"template": "Owner $labels.team"},
	"pod_graph_enricher":    {"resource_type": "Memory"},
	"name_silencer":         {"names": []any{"Watchdog"}},
	"severity_silencer":     {"severity": "INFO"},
	"button_enricher":       {"button_text": "Runbook for $labels.team", "button_url": "https://runbooks.example.com/$alertname"},
}

func TestActionRows(t *testing.T) {
	t.Parallel()
	registered := shipped.Actions.Names()
	for _, name := range sortedKeys(actionRows) {
		row := actionRows[name]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := convertDoc(t, onePlaybook(map[string]any{"on_prometheus_alert": map[string]any{"alert_name": "X"}},
				map[string]any{name: sample(actionSamples, name)}, map[string]any{"default_enricher": map[string]any{}}), testOptions())
			it := itemsOf(res, KindAction)[0]
			pb := itemsOf(res, KindPlaybook)[0]
			want := -1
			for i, m := range row.medic {
				if slices.Contains(registered, m) {
					want = i
					break
				}
			}
			first := ""
			if len(row.medic) > 0 {
				first = row.medic[0]
			}
			switch {
			case missingTarget(t, it, first, want >= 0, "medic lacks `"+first+"`"):
			case it.Outcome != NotConverted:
				if it.Target != row.medic[want] {
					t.Errorf("target %q, want %q", it.Target, row.medic[want])
				}
				if (want > 0 || row.loss != "") && it.Outcome != Lossy {
					t.Errorf("a fallback or lossy mapping is not reported as a loss: %+v", it)
				}
			default:
				// medic has the target but rejects the sample's
				// parameters: the reason is the action's own, not "lacks".
				if hasReason(it, "lacks") {
					t.Errorf("registered %s reported missing: %+v", row.medic[want], it)
				}
				t.Logf("%s rejects the sample parameters: %v", row.medic[want], it.Reasons)
			}
			if row.essential != "" && it.Outcome == NotConverted && pb.Outcome != NotConverted {
				t.Errorf("a playbook that lost an essential action is converted: %+v", pb)
			}
			if row.essential == "" && pb.Outcome == NotConverted && !hasReason(pb, "does not load") {
				t.Errorf("the playbook keeps default_enricher and should be converted: %+v", pb)
			}
		})
	}
}

// sinkSamples are Robusta sinks in their documented shapes. verified marks
// medic sink types whose parameters the mapping was checked against: when
// medic has the type, the sample must convert.
var sinkSamples = map[string]struct {
	params   map[string]any
	verified bool
}{
	"slack_sink":       {map[string]any{"slack_channel": "#alerts", "api_key": "xoxb-1"}, true},
	"ms_teams_sink":    {map[string]any{"webhook_url": "https://example.webhook.office.com/x"}, true},
	"webhook_sink":     {map[string]any{"url": "https://hooks.example.com/medic"}, true},
	"file_sink":        {map[string]any{"file_name": "/tmp/findings.jsonl"}, true},
	"pagerduty_sink":   {map[string]any{"api_key": "pd-key"}, true},
	"opsgenie_sink":    {map[string]any{"api_key": "og-key", "teams": []any{"sre"}, "tags": []any{"prod"}}, true},
	"mail_sink":        {map[string]any{"mailto": "mailtos://alerts:pw@smtp.example.com:587?from=alerts@example.com&to=oncall@example.com"}, true},
	"jira_sink":        {map[string]any{"url": "https://x.atlassian.net", "username": "bot@example.com", "api_key": "jira-key", "project_name": "OPS", "priority_mapping": map[string]any{"HIGH": "High"}}, true},
	"mattermost_sink":  {map[string]any{"url": "https://mm.example.com", "token": "mm-token", "channel": "alerts"}, false},
	"discord_sink":     {map[string]any{"url": "https://discord.com/api/webhooks/1/x"}, true},
	"telegram_sink":    {map[string]any{"bot_token": "tg-token", "chat_id": 12345, "thread_id": 7}, true},
	"google_chat_sink": {map[string]any{"webhook_url": "https://chat.googleapis.com/v1/spaces/x"}, true},
	"webex_sink":       {map[string]any{"bot_access_token": "wx-token", "room_id": "room"}, true},
	"victorops_sink":   {map[string]any{"url": "https://alert.victorops.com/integrations/generic/20131114/alert/vo-key/ops"}, true},
	"kafka_sink": {map[string]any{"kafka_url": "kafka-0:9092,kafka-1:9092", "topic": "robusta",
		"auth": map[string]any{"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "u", "sasl_plain_password": "p"}}, true},
}

func TestSinkRows(t *testing.T) {
	t.Parallel()
	types := shipped.Sinks.Types()
	for _, name := range sortedKeys(sinkRows) {
		row := sinkRows[name]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sample := sinkSamples[name]
			p := map[string]any{"name": "s1"}
			for k, v := range sample.params {
				p[k] = v
			}
			res := convertDoc(t, map[string]any{"sinksConfig": []any{map[string]any{name: p}}}, testOptions())
			it := itemsOf(res, KindSink)[0]
			switch {
			case missingTarget(t, it, row.medic, slices.Contains(types, row.medic), "medic lacks the `"+row.medic+"` sink type"):
			case it.Outcome == NotConverted:
				if sample.verified || hasReason(it, "lacks") {
					t.Errorf("medic has %s but the sample does not convert: %+v\n%s", row.medic, it, res.Report())
				}
				t.Logf("%s rejects the mapped parameters: %v", row.medic, it.Reasons)
			default:
				if !strings.Contains(string(res.Config), "type: "+row.medic) {
					t.Errorf("sinks.yaml lacks type %s:\n%s", row.medic, res.Config)
				}
				for _, s := range row.secrets {
					if !strings.Contains(string(res.Config), s+"_file: "+secretPath("s1", s)) ||
						!strings.Contains(string(res.HelmValues), "key: "+secretKeyOf("s1", s)) {
						t.Errorf("secret %s is not a reference:\n%s\n%s", s, res.Config, res.HelmValues)
					}
				}
				loads(t, res)
			}
		})
	}
}

func TestMailto(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		url  string
		want string // the pairs, password as a reference
		lost bool
		fail bool
	}{
		{"mailtos://alerts:pw@smtp.example.com:587?from=alerts@example.com&to=a@example.com,b@example.com", "[host smtp.example.com port 587 username alerts password {password } from alerts@example.com to [a@example.com b@example.com]]", false, false},
		{"mailtos://bot:pw@example.com:465?to=a@example.com", "[host example.com port 465 implicit_tls true username bot password {password } from bot@example.com to [a@example.com]]", false, false},
		{"mailto://relay.internal?from=k8s@example.com&to=ops@example.com", "[host relay.internal port 25 insecure_skip_starttls true from k8s@example.com to [ops@example.com]]", true, false},
		{"mailtos://u:p@gmail.com?smtp=smtp.gmail.com&to=x@example.com&format=html", "[host smtp.gmail.com port 587 username u password {password } from u@gmail.com to [x@example.com]]", true, false},
		{"mailtos://user:pw@smtp.example.com&from=a@example.com&to=b@example.com,c@example.com", "[host smtp.example.com port 587 username user password {password } from a@example.com to [b@example.com c@example.com]]", false, false},
		{"https://example.com", "", false, true},
	} {
		var ic itemConv
		pairs := mailParams(&ic, tt.url)
		if (len(ic.failed) > 0) != tt.fail || (len(ic.losses) > 0) != tt.lost {
			t.Errorf("%s: failed %v lost %v", tt.url, ic.failed, ic.losses)
		}
		if !tt.fail && fmt.Sprint(pairs) != tt.want {
			t.Errorf("%s:\n got %v\nwant %s", tt.url, pairs, tt.want)
		}
		if strings.Contains(fmt.Sprint(pairs), ":pw") || strings.Contains(fmt.Sprint(pairs), " pw") {
			t.Errorf("%s: the password is in the pairs: %v", tt.url, pairs)
		}
	}
}

// TestMigrationDocNamesEveryRow keeps docs/migration-from-robusta.md true:
// every Robusta name of the mapping is in its tables.
func TestMigrationDocNamesEveryRow(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "migration-from-robusta.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	var names []string
	names = append(names, sortedKeys(actionRows)...)
	names = append(names, sortedKeys(sinkRows)...)
	for _, n := range sortedKeys(triggerRows) {
		if strings.Contains(text, "`"+n+"`") {
			continue
		}
		// The change triggers are named by kind: on_<kind>_<operation>.
		generated := false
		for _, op := range []string{"_create", "_update", "_delete", "_all_changes"} {
			kind := strings.TrimSuffix(strings.TrimPrefix(n, "on_"), op)
			if strings.HasSuffix(n, op) && (slices.Contains(changeKinds, kind) || otherKinds[kind] != "" || kind == "kubernetes_any_resource") {
				generated = strings.Contains(text, kind)
			}
		}
		if !generated {
			names = append(names, n)
		}
	}
	for _, n := range names {
		if !strings.Contains(text, "`"+n+"`") {
			t.Errorf("docs/migration-from-robusta.md does not name `%s`", n)
		}
	}
}

// TestDefaultEnricherAnnotations: medic's default_enricher always adds the
// alert's annotations: Robusta's alert_annotations_enrichment: true is
// converted without loss, false (no annotations) is a loss.
func TestDefaultEnricherAnnotations(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		value any
		want  Outcome
	}{{true, Converted}, {false, Lossy}, {"yes", Lossy}} {
		res := convertDoc(t, map[string]any{"customPlaybooks": []any{map[string]any{"name": "p",
			"triggers": []any{map[string]any{"on_prometheus_alert": map[string]any{"alert_name": "X"}}},
			"actions":  []any{map[string]any{"default_enricher": map[string]any{"alert_annotations_enrichment": tt.value}}}}}}, testOptions())
		found := false
		for _, it := range res.Items {
			if it.Kind == KindAction && it.Name == "default_enricher" {
				found = true
				if it.Outcome != tt.want {
					t.Errorf("alert_annotations_enrichment: %v: %s, want %s (%v)", tt.value, it.Outcome, tt.want, it.Reasons)
				}
			}
		}
		if !found {
			t.Errorf("alert_annotations_enrichment: %v: no default_enricher item:\n%s", tt.value, res.Report())
		}
	}
}
