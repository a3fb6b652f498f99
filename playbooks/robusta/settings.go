package robusta

import (
	"fmt"
	"strings"
)

// settings are the values outside playbooks and sinks that a migration
// carries: the cluster's name, the Prometheus and Alertmanager medic
// queries, the OpenAI key of Robusta's ChatGPT integration.
type settings struct {
	clusterName     string
	prometheusURL   string
	alertmanagerURL string
	aiKey           bool // the key is a secret: only whether there is one
}

// globalConfigKeys maps Robusta's globalConfig keys: the medic setting, or
// why there is none.
var globalConfigKeys = map[string]struct {
	target string
	todo   string
}{
	"prometheus_url":        {target: "prometheusUrl"},
	"alertmanager_url":      {target: "alertmanagerUrl"},
	"chat_gpt_token":        {target: "ai.apiKey"},
	"grafana_url":           {todo: "medic links graphs to Prometheus (prometheusUrl) and does not write Grafana annotations"},
	"grafana_api_key":       {todo: "medic does not write Grafana annotations"},
	"grafana_dashboard_uid": {todo: "medic does not write Grafana annotations"},
	"account_id":            {todo: "a Robusta SaaS setting: medic has no SaaS; drop it"},
	"signing_key":           {todo: "a Robusta SaaS setting: medic's Slack buttons are verified with slack.signingSecret"},
}

func (c *converter) convertSettings(doc map[string]any) settings {
	var s settings
	add := func(where, name, target string, o Outcome, reason, todo string) {
		it := Item{Kind: KindSetting, Where: where, Name: name, Target: target, Outcome: o, Todo: todo}
		if reason != "" {
			it.Reasons = []string{reason}
		}
		c.res.Items = append(c.res.Items, it)
	}
	if v, ok := doc["clusterName"].(string); ok && v != "" {
		s.clusterName = v
		add("clusterName", "clusterName", "clusterName", Converted, "", "")
	}
	if gc, ok := doc["globalConfig"].(map[string]any); ok {
		for _, k := range sortedKeys(gc) {
			if isZero(gc[k]) {
				continue // the chart's defaults: nothing to carry
			}
			where := "globalConfig." + k
			row, known := globalConfigKeys[k]
			v := fmt.Sprint(gc[k])
			switch {
			case !known:
				// Robusta's runner settings (check_prometheus_flags, …):
				// not a migration's concern.
			case row.target == "":
				add(where, k, "", NotConverted, "medic has no such setting", row.todo)
			case k == "prometheus_url":
				s.prometheusURL = v
				add(where, k, row.target, Converted, "", "")
			case k == "alertmanager_url":
				s.alertmanagerURL = v
				add(where, k, row.target, Converted, "", "")
			case k == "chat_gpt_token":
				s.aiKey = true
				sec := Secret{Where: where, SecretName: SecretName, SecretKey: "ai-api-key", File: secretsDir + "/ai-api-key"}
				if m := envRefRE.FindStringSubmatch(v); m != nil {
					sec.FromEnv = m[1]
				}
				c.res.Secrets = append(c.res.Secrets, sec)
				add(where, k, "ai.apiKey", Lossy, "medic's AI also needs a model, which Robusta's values do not name",
					"set the Helm value ai.chatModel (e.g. gpt-4o-mini); ai.baseUrl empty is OpenAI")
			}
		}
	}
	if repos, ok := doc["playbookRepos"].(map[string]any); ok {
		for _, k := range sortedKeys(repos) {
			add("playbookRepos."+k, k, "", NotConverted,
				"Robusta playbook repositories hold Python actions; medic's playbookRepos hold YAML playbooks",
				"import the playbooks that use its actions (the importer maps the known ones, e.g. chat_gpt_enricher → ask_ai) and port the rest as YAML playbooks")
		}
	}
	return s
}

// helmSettings adds the settings to the Helm values.
func (s settings) helm(v map[string]any) {
	if s.clusterName != "" {
		v["clusterName"] = s.clusterName
	}
	if s.prometheusURL != "" {
		v["prometheusUrl"] = s.prometheusURL
	}
	if s.alertmanagerURL != "" {
		v["alertmanagerUrl"] = s.alertmanagerURL
	}
	if s.aiKey {
		v["ai"] = map[string]any{"apiKey": map[string]any{"secretKeyRef": map[string]any{"name": SecretName, "key": "ai-api-key"}}}
	}
}

// config adds the settings to the medic.yaml fragment; secrets go in
// comments (loading the configuration reads their files).
func (s settings) config(doc map[string]any, b *strings.Builder) {
	if s.clusterName != "" {
		doc["cluster_name"] = s.clusterName
	}
	if s.prometheusURL != "" {
		doc["prometheus"] = map[string]any{"url": s.prometheusURL}
	}
	if s.alertmanagerURL != "" {
		doc["alertmanager"] = map[string]any{"url": s.alertmanagerURL}
	}
	if s.aiKey {
		fmt.Fprintf(b, "# The OpenAI key of Robusta's ChatGPT integration:\n#   ai:\n#     api_key_file: %s/ai-api-key\n", secretsDir)
	}
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}
