package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/medichq/medic/sources/alertmanager"
)

// rule is one entry of internal/fixtures/testdata/alert-rules.json (kube-prometheus rules).
type rule struct {
	Alert       string `json:"alert"`
	Expr        string `json:"expr"`
	Severity    string `json:"severity"`
	Summary     string `json:"summary"`
	Description string `json:"description"`
	RunbookURL  string `json:"runbook_url"`
	Group       string `json:"group"`
}

func loadRules(path string) ([]rule, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rules []rule
	if err := json.Unmarshal(raw, &rules); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rules) == 0 {
		return nil, fmt.Errorf("%s holds no rules", path)
	}
	return rules, nil
}

// alertGen builds unique, realistic alerts: the rules' names, severities,
// annotations and runbooks, with namespace, pod, container, job and a
// bench_id label that makes every alert (and so its fingerprint and event
// ID) distinct. startsAt is distinct too: base plus bench_id milliseconds.
type alertGen struct {
	rules       []rule
	base        time.Time
	externalURL string
}

const (
	benchReceiver    = "medic-bench"
	benchExternalURL = "http://alertmanager.bench.local:9093"
)

var (
	labelRef = regexp.MustCompile(`\{\{\s*\$labels\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)
	valueRef = regexp.MustCompile(`\{\{[^{}]*\$value[^{}]*\}\}`)
)

// expand does what Prometheus does for the common cases of its annotation
// templates: label references and $value. Anything fancier stays as written.
func expand(s string, labels template.KV) string {
	s = labelRef.ReplaceAllStringFunc(s, func(m string) string {
		return labels[labelRef.FindStringSubmatch(m)[1]]
	})
	return valueRef.ReplaceAllString(s, "42")
}

var namespaces = []string{"shop", "payments", "search", "checkout", "monitoring", "kube-system", "data", "edge"}

func (g *alertGen) alert(id int) template.Alert {
	r := g.rules[id%len(g.rules)]
	ns := namespaces[id%len(namespaces)]
	labels := template.KV{
		"alertname":  r.Alert,
		"severity":   r.Severity,
		"namespace":  ns,
		"pod":        fmt.Sprintf("%s-api-%05d-x7k2p", ns, id%100000),
		"container":  "app",
		"job":        "kube-state-metrics",
		"prometheus": "monitoring/k8s",
		"bench_id":   strconv.Itoa(id),
	}
	annotations := template.KV{}
	if r.Summary != "" {
		annotations["summary"] = expand(r.Summary, labels)
	}
	if r.Description != "" {
		annotations["description"] = expand(r.Description, labels)
	}
	if r.RunbookURL != "" {
		annotations["runbook_url"] = r.RunbookURL
	}
	a := template.Alert{
		Status:       "firing",
		Labels:       labels,
		Annotations:  annotations,
		StartsAt:     g.base.Add(time.Duration(id) * time.Millisecond),
		GeneratorURL: "http://prometheus.bench.local:9090/graph?g0.expr=" + url.QueryEscape(r.Expr) + "&g0.tab=1",
	}
	a.Fingerprint = alertmanager.Fingerprint(labels)
	return a
}

// body returns one webhook request carrying the alerts with bench_ids ids,
// shaped like Alertmanager's (version 4).
func (g *alertGen) body(ids []int) ([]byte, error) {
	alerts := make(template.Alerts, len(ids))
	for i, id := range ids {
		alerts[i] = g.alert(id)
	}
	common := commonKV(alerts, func(a template.Alert) template.KV { return a.Labels })
	msg := alertmanager.Message{
		Data: &template.Data{
			Receiver:           benchReceiver,
			Status:             "firing",
			Alerts:             alerts,
			NotificationReason: "first notification",
			GroupLabels:        template.KV{},
			CommonLabels:       common,
			CommonAnnotations:  commonKV(alerts, func(a template.Alert) template.KV { return a.Annotations }),
			RouteLabels:        template.KV{},
			ExternalURL:        benchExternalURL,
		},
		Version:  "4",
		GroupKey: "{}:{}",
	}
	return json.Marshal(&msg)
}

// commonKV is what every alert shares, as Alertmanager computes
// commonLabels and commonAnnotations.
func commonKV(alerts template.Alerts, kv func(template.Alert) template.KV) template.KV {
	out := template.KV{}
	if len(alerts) == 0 {
		return out
	}
	for k, v := range kv(alerts[0]) {
		out[k] = v
	}
	for _, a := range alerts[1:] {
		m := kv(a)
		for k, v := range out {
			if m[k] != v {
				delete(out, k)
			}
		}
	}
	return out
}

// batches splits the ids first..first+n-1 into requests of at most size.
func batches(first, n, size int) [][]int {
	var out [][]int
	for start := 0; start < n; start += size {
		end := min(start+size, n)
		ids := make([]int, 0, end-start)
		for i := start; i < end; i++ {
			ids = append(ids, first+i)
		}
		out = append(out, ids)
	}
	return out
}
