package robusta

import (
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/scope"
)

// TestNeverWidens: a condition medic cannot keep is never dropped
// silently. Either the item is not converted, or the condition is in the
// output (once medic has the key, after other branches merge).
func TestNeverWidens(t *testing.T) {
	t.Parallel()
	fileSink := func(extra map[string]any) map[string]any {
		p := map[string]any{"name": "audit", "file_name": "/tmp/f.jsonl"}
		for k, v := range extra {
			p[k] = v
		}
		return map[string]any{"file_sink": p}
	}
	playbook := func(trigger map[string]any, acts ...any) map[string]any {
		if len(acts) == 0 {
			acts = []any{map[string]any{"default_enricher": map[string]any{}}}
		}
		return map[string]any{"name": "p", "triggers": []any{trigger}, "actions": acts, "sinks": []any{"audit"}}
	}
	alert := map[string]any{"on_prometheus_alert": map[string]any{"alert_name": "X"}}
	for _, tt := range []struct {
		name string
		sink map[string]any
		pb   map[string]any
		// kept is what the output must hold if the sink is converted.
		kept string
		// notConverted must be not converted (sink or playbook).
		notConverted string
	}{
		{name: "label operator !=", sink: fileSink(map[string]any{"scope": map[string]any{"include": []any{map[string]any{"labels": "team!=sandbox"}}}}), notConverted: KindSink},
		// "pod" (a prefix in Robusta) would also match medic's kinds pod_crash_loop, pod_evicted…
		{name: "identifier matching medic's kinds", sink: fileSink(map[string]any{"scope": map[string]any{"include": []any{map[string]any{"identifier": "pod"}}}}), notConverted: KindSink},
		{name: "identifier", sink: fileSink(map[string]any{"scope": map[string]any{"include": []any{map[string]any{"identifier": "KubePod.*"}}}}), kept: "identifier: (?:KubePod.*).*"},
		{name: "title rule", sink: fileSink(map[string]any{"scope": map[string]any{"exclude": []any{map[string]any{"title": ".*RESOLVED.*"}}}}), notConverted: KindSink},
		{name: "mute_intervals", sink: fileSink(map[string]any{"mute_intervals": []any{map[string]any{"start_date": "2025-12-24 00:00", "end_date": "2025-12-26 23:59"}}}), kept: "mute_intervals:"},
		{name: "activity", sink: fileSink(map[string]any{"activity": map[string]any{"timezone": "UTC", "intervals": []any{map[string]any{"days": []any{"Mon"}, "hours": []any{map[string]any{"start": "09:00", "end": "17:00"}}}}}}), kept: "activity:"},
		{name: "stop", sink: fileSink(map[string]any{"stop": true}), kept: "stop: true"},
		{name: "send_resolved false", sink: fileSink(map[string]any{"send_resolved": false}), kept: "send_resolved: false"},
		{name: "trigger condition medic lacks", sink: fileSink(nil),
			pb: playbook(map[string]any{"on_prometheus_alert": map[string]any{"alert_name": "X", "k8s_providers": []any{"GKE"}}}), notConverted: KindPlaybook},
		{name: "silencer", sink: fileSink(nil),
			pb: playbook(alert, map[string]any{"name_silencer": map[string]any{"names": []any{"Watchdog"}}}, map[string]any{"default_enricher": map[string]any{}}),
			// with a registry that lacks name_silencer, see opts below
			notConverted: KindPlaybook},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pb := tt.pb
			if pb == nil {
				pb = playbook(alert)
			}
			registered := shipped.Actions.Names()
			opts := Options{Plugins: shipped.Playbooks(), Sinks: shipped.Sinks, HasAction: func(n string) bool { return n != "name_silencer" && slices.Contains(registered, n) }}
			res := convertDoc(t, map[string]any{"sinksConfig": []any{tt.sink}, "customPlaybooks": []any{pb}}, opts)
			sink, play := itemsOf(res, KindSink)[0], itemsOf(res, KindPlaybook)[0]
			switch {
			case tt.notConverted == KindSink && sink.Outcome != NotConverted:
				t.Errorf("sink %s:\n%s", sink.Outcome, res.Report())
			case tt.notConverted == KindPlaybook && play.Outcome != NotConverted:
				t.Errorf("playbook %s:\n%s", play.Outcome, res.Report())
			case tt.kept != "" && sink.Outcome != NotConverted && !strings.Contains(string(res.Config), tt.kept):
				t.Errorf("the sink is %s without %q:\n%s", sink.Outcome, tt.kept, res.Config)
			}
			// A playbook whose only sink is not converted would go to
			// the default sinks: it is not converted either.
			if sink.Outcome == NotConverted && play.Outcome != NotConverted {
				t.Errorf("playbook %s while its sink is not:\n%s", play.Outcome, res.Report())
			}
			if tt.notConverted != "" && res.Lossless() {
				t.Error("a lossless import")
			}
		})
	}
}

// TestStopOfAnEarlierSink: the sinks after one whose stop medic does not
// keep would receive more: they are not converted either.
func TestStopOfAnEarlierSink(t *testing.T) {
	t.Parallel()
	res := convertDoc(t, map[string]any{"sinksConfig": []any{
		map[string]any{"file_sink": map[string]any{"name": "before", "file_name": "/tmp/a"}},
		map[string]any{"robusta_sink": map[string]any{"name": "ui", "token": "x", "stop": true}},
		map[string]any{"file_sink": map[string]any{"name": "fallback", "file_name": "/tmp/b"}},
	}}, testOptions())
	sinks := itemsOf(res, KindSink)
	if sinks[0].Outcome != Converted || sinks[1].Outcome != NotConverted || sinks[2].Outcome != NotConverted || !hasReason(sinks[2], "stop") {
		t.Errorf("sinks: %+v", sinks)
	}
}

// TestLossIsReported: what medic drops without widening is converted with
// loss, with the reason.
func TestLossIsReported(t *testing.T) {
	t.Parallel()
	res := convertDoc(t, map[string]any{
		"sinksConfig": []any{map[string]any{"file_sink": map[string]any{"name": "audit", "file_name": "/tmp/f", "channel_override": "labels.team"}}},
		"customPlaybooks": []any{map[string]any{"name": "p",
			"triggers": []any{map[string]any{"on_prometheus_alert": map[string]any{"alert_name": "X"}}},
			"actions":  []any{map[string]any{"create_finding": map[string]any{"title": "t", "aggregation_key": "k"}}}}},
	}, testOptions())
	for _, it := range res.Items {
		switch {
		case it.Kind == KindSinkParam && it.Name == "channel_override":
			if it.Outcome != Lossy && !strings.Contains(string(res.Config), "channel_override") {
				t.Errorf("channel_override: %+v", it)
			}
		case it.Kind == KindAction:
			if it.Outcome != Lossy || !hasReason(it, "aggregation_key") {
				t.Errorf("create_finding: %+v", it)
			}
		case it.Kind == KindPlaybook:
			if it.Outcome != Lossy {
				t.Errorf("a playbook with a lossy action: %+v", it)
			}
		}
	}
}

// TestSecretsNeverCopied puts canary secrets in every secret place of the
// sinks Robusta users configure and greps every output for them.
func TestSecretsNeverCopied(t *testing.T) {
	t.Parallel()
	const canary = "CANARY-7f3a"
	res := convertDoc(t, map[string]any{"sinksConfig": []any{
		map[string]any{"slack_sink": map[string]any{"name": "main", "slack_channel": "alerts", "api_key": "xoxb-" + canary + "-1"}},
		map[string]any{"slack_sink": map[string]any{"name": "other", "slack_channel": "other", "api_key": "xoxb-" + canary + "-2"}},
		map[string]any{"ms_teams_sink": map[string]any{"name": "teams", "webhook_url": "https://x.webhook.office.com/" + canary}},
		map[string]any{"webhook_sink": map[string]any{"name": "hook", "url": "https://hooks.example.com/", "authorization": "Bearer " + canary}},
		map[string]any{"pagerduty_sink": map[string]any{"name": "pd", "api_key": canary + "-pd"}},
		map[string]any{"opsgenie_sink": map[string]any{"name": "og", "api_key": canary + "-og"}},
		map[string]any{"mail_sink": map[string]any{"name": "mail", "mailto": "mailtos://bot:" + canary + "@smtp.example.com:587?to=a@example.com"}},
		map[string]any{"jira_sink": map[string]any{"name": "jira", "url": "https://x.atlassian.net", "username": "u", "api_key": canary + "-jira", "project_name": "OPS"}},
		map[string]any{"mattermost_sink": map[string]any{"name": "mm", "url": "https://mm", "token": canary + "-mm", "channel": "c"}},
		map[string]any{"discord_sink": map[string]any{"name": "discord", "url": "https://discord.com/api/webhooks/1/" + canary}},
		map[string]any{"telegram_sink": map[string]any{"name": "tg", "bot_token": canary + "-tg", "chat_id": 1}},
		map[string]any{"google_chat_sink": map[string]any{"name": "gchat", "webhook_url": "https://chat.googleapis.com/" + canary}},
		map[string]any{"webex_sink": map[string]any{"name": "webex", "bot_access_token": canary + "-wx", "room_id": "r"}},
		map[string]any{"kafka_sink": map[string]any{"name": "kafka", "kafka_url": "k:9092", "topic": "t", "auth": map[string]any{"sasl_plain_password": canary}}},
		map[string]any{"robusta_sink": map[string]any{"name": "ui", "token": canary + "-ui"}},
		map[string]any{"slack_sink": map[string]any{"name": "env", "slack_channel": "e", "api_key": "{{ env.SLACK_API_KEY }}"}},
	}}, testOptions())
	for name, out := range outputs(t, res) {
		if strings.Contains(out, canary) {
			t.Errorf("%s holds a secret:\n%s", name, out)
		}
	}
	// Where medic has the sink type, the secret became a reference.
	if len(res.Secrets) == 0 || res.Secrets[0].SecretKey != "slack-bot-token" || res.Secrets[0].File != slackBotTokenPath {
		t.Errorf("secrets: %+v", res.Secrets)
	}
	for _, s := range res.Secrets {
		if s.SecretName != SecretName || !strings.HasPrefix(s.File, secretsDir+"/") {
			t.Errorf("secret %+v", s)
		}
	}
	if !strings.Contains(string(res.Config), "webhook_url_file: "+secretPath("teams", "webhook_url")) {
		t.Errorf("the Teams webhook is not a file reference:\n%s", res.Config)
	}
	// The second Slack sink's token differs from the first: medic has one.
	for _, it := range res.Items {
		if it.Kind == KindSinkParam && it.Name == "api_key" && strings.Contains(it.Where, "(other)") && it.Outcome != Lossy {
			t.Errorf("a second Slack token is not reported: %+v", it)
		}
	}
}

// TestIdentifierScopeMeansRobusta: a converted identifier rule matches, in
// medic's scope, the events Robusta's rule matched: alerts by name prefix
// and Robusta's built-in crash-loop and image-pull findings as medic's own
// kinds; nothing else.
func TestIdentifierScopeMeansRobusta(t *testing.T) {
	t.Parallel()
	pat, err := identifierPattern([]string{"CrashLoopBackoff", "KubeNode"})
	if err != nil {
		t.Fatal(err)
	}
	var sc scope.Scope
	if err := yaml.Unmarshal([]byte("exclude:\n- identifier: '"+pat+"'\n"), &sc); err != nil {
		t.Fatalf("%s: %v", pat, err)
	}
	alert := func(name string) *event.Event {
		return &event.Event{Kind: event.KindPrometheusAlert, Labels: map[string]string{"alertname": name}}
	}
	for _, tt := range []struct {
		name     string
		ev       *event.Event
		excluded bool
	}{
		{"medic's crash loop", &event.Event{Kind: event.KindPodCrashLoop}, true},
		{"alert named by the prefix", alert("KubeNodeNotReady"), true},
		{"alert named exactly", alert("CrashLoopBackoff"), true},
		{"other alert", alert("KubePodCrashLooping"), false},
		{"alert containing the name", alert("MyKubeNodeDown"), false},
		{"medic's image pull backoff", &event.Event{Kind: event.KindImagePullBackoff}, false},
		{"medic's OOM kill", &event.Event{Kind: event.KindPodOOMKilled}, false},
	} {
		if got := !sc.Match(tt.ev, event.SeverityWarning); got != tt.excluded {
			t.Errorf("%s: excluded = %v, want %v (pattern %s)", tt.name, got, tt.excluded, pat)
		}
	}
}

// TestHelmReleaseNamesStayExact: Robusta's Helm triggers match release
// names and the namespace exactly; the converted trigger scope does too
// (no prefix match: demo-app does not take in demo-app-canary).
func TestHelmReleaseNamesStayExact(t *testing.T) {
	t.Parallel()
	res := convertDoc(t, map[string]any{"customPlaybooks": []any{map[string]any{"name": "h",
		"triggers": []any{map[string]any{"on_helm_release_unhealthy": map[string]any{"names": []any{"demo-app", "api.v2"}, "namespace": "default"}}},
		"actions":  []any{map[string]any{"helm_status_enricher": map[string]any{}}}}}}, testOptions())
	var pbs []struct {
		Triggers []map[string]struct {
			Scope scope.Scope `yaml:"scope"`
		} `yaml:"triggers"`
	}
	if err := yaml.Unmarshal(res.Playbooks, &pbs); err != nil || len(pbs) != 1 || len(pbs[0].Triggers) != 1 {
		t.Fatalf("the playbook is not converted (%v):\n%s\n%s", err, res.Playbooks, res.Report())
	}
	sc := pbs[0].Triggers[0]["on_helm_release_unhealthy"].Scope
	release := func(ns, name string) *event.Event {
		return &event.Event{Subject: event.Subject{Kind: "HelmRelease", Namespace: ns, Name: name}}
	}
	for _, tt := range []struct {
		ev   *event.Event
		want bool
	}{
		{release("default", "demo-app"), true},
		{release("default", "api.v2"), true},
		{release("default", "demo-app-canary"), false},
		{release("default", "apixv2"), false},
		{release("default-2", "demo-app"), false},
		{release("kube-system", "demo-app"), false},
	} {
		if got := sc.Match(tt.ev, event.SeverityWarning); got != tt.want {
			t.Errorf("%s/%s: match = %v, want %v", tt.ev.Subject.Namespace, tt.ev.Subject.Name, got, tt.want)
		}
	}
}
