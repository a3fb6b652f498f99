// Package chatfmt holds what the chat sinks (slack, teams) and medic's
// finding page say the same way: the subject of a finding as facts, the
// labels not shown elsewhere, the alert's links, durations, and the
// de-duplication of evidence the header already shows. It formats for no
// chat in particular.
package chatfmt

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
)

// Fact is a named value.
type Fact struct{ Name, Value string }

// workloadKinds are subject kinds shown as the workload.
var workloadKinds = map[string]bool{
	"Deployment": true, "StatefulSet": true, "DaemonSet": true, "Job": true,
	"CronJob": true, "ReplicaSet": true, "ReplicationController": true,
}

// workloadLabels name a workload in an alert's labels, most specific first.
var workloadLabels = []struct{ label, kind string }{
	{"deployment", "deployment"}, {"statefulset", "statefulset"}, {"daemonset", "daemonset"},
	{"job_name", "job"}, {"cronjob", "cronjob"}, {"replicaset", "replicaset"},
}

// shownInSubject are labels Subject already shows (or the header does).
var shownInSubject = map[string]bool{
	"alertname": true, "severity": true, "cluster": true, "namespace": true, "pod": true, "pod_name": true,
	"container": true, "node": true, "deployment": true, "statefulset": true, "daemonset": true,
	"job_name": true, "cronjob": true, "replicaset": true,
	// medic's own bookkeeping, not the cluster's: what a Kubernetes
	// trigger's rate limit counts per (an owner path or an object's UID).
	kubeevent.LabelRateLimitSubject: true,
}

// Subject returns what the finding is about, in a fixed order: Cluster,
// Namespace, Workload, Pod, Container, Node, Alert; unknown ones are left
// out. cluster is medic's cluster_name; an alert's own cluster label wins
// (one Alertmanager often serves several clusters).
func Subject(f *event.Finding, cluster string) []Fact {
	ev := &f.Event
	s := ev.Subject
	var out []Fact
	add := func(name, value string) {
		if v := strings.TrimSpace(value); v != "" {
			out = append(out, Fact{name, v})
		}
	}
	add("Cluster", first(ev.Labels["cluster"], cluster))
	add("Namespace", first(s.Namespace, ev.Labels["namespace"]))
	workload := ""
	if workloadKinds[s.Kind] && s.Name != "" {
		workload = strings.ToLower(s.Kind) + "/" + s.Name
	} else {
		for _, w := range workloadLabels {
			if v := ev.Labels[w.label]; v != "" {
				workload = w.kind + "/" + v
				break
			}
		}
	}
	add("Workload", workload)
	pod := ""
	if s.Kind == "Pod" {
		pod = s.Name
	}
	add("Pod", first(pod, ev.Labels["pod"], ev.Labels["pod_name"]))
	add("Container", first(s.Container, ev.Labels["container"]))
	node := s.Node
	if s.Kind == "Node" {
		node = first(node, s.Name)
	}
	add("Node", first(node, ev.Labels["node"]))
	if s.Kind != "" && s.Kind != "Pod" && s.Kind != "Node" && !workloadKinds[s.Kind] && s.Name != "" {
		add(s.Kind, s.Name)
	}
	add("Alert", ev.Labels["alertname"])
	return out
}

// ExtraLabels are the event's labels that Subject and the header do not
// already show (nor medic's own bookkeeping labels), sorted by name.
func ExtraLabels(ev *event.Event) []Fact {
	keys := make([]string, 0, len(ev.Labels))
	for k := range ev.Labels {
		if !shownInSubject[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]Fact, len(keys))
	for i, k := range keys {
		out[i] = Fact{k, ev.Labels[k]}
	}
	return out
}

// AlertLinks are the alert's own links: its graph (generator URL), its
// runbook, and Alertmanager's prefilled "new silence" page.
func AlertLinks(ev *event.Event) []event.Link {
	var links []event.Link
	if IsWebURL(ev.GeneratorURL) {
		links = append(links, event.Link{Label: "Graph", URL: ev.GeneratorURL})
	}
	for _, k := range []string{"runbook_url", "runbook"} {
		if u := ev.Annotations[k]; IsWebURL(u) {
			links = append(links, event.Link{Label: "Runbook", URL: u})
			break
		}
	}
	if u := ev.SilenceURL(); u != "" {
		links = append(links, event.Link{Label: "Silence", URL: u})
	}
	return links
}

// IsWebURL reports whether s is an absolute http(s) URL: the only links
// medic puts in a message or a page.
func IsWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// RepeatsLabels reports whether a table block only repeats the event's
// labels (default_enricher's first table), which the header already shows.
func RepeatsLabels(t *event.TableBlock, ev *event.Event) bool {
	if t == nil || len(t.Headers) > 0 || len(t.Rows) == 0 || len(t.Rows) != len(ev.Labels) {
		return false
	}
	for _, r := range t.Rows {
		if len(r) != 2 {
			return false
		}
		if v, ok := ev.Labels[r[0]]; !ok || v != r[1] {
			return false
		}
	}
	return true
}

// IsKeyValue reports whether a table is a two-column key-value table.
func IsKeyValue(t *event.TableBlock) bool {
	if t == nil || len(t.Headers) > 0 {
		return false
	}
	for _, r := range t.Rows {
		if len(r) > 2 {
			return false
		}
	}
	return true
}

// RemainingLinks drops the links whose URL was already shown.
func RemainingLinks(links []event.Link, shown map[string]bool) []event.Link {
	var out []event.Link
	for _, l := range links {
		if !shown[l.URL] {
			out = append(out, l)
		}
	}
	return out
}

// Status is the finding's status in capitals, FIRING when unset.
func Status(f *event.Finding) string {
	if f.Event.Status == "" {
		return "FIRING"
	}
	return strings.ToUpper(string(f.Event.Status))
}

// Severity is the finding's severity, info when unset.
func Severity(f *event.Finding) string {
	if f.Severity == "" {
		return string(event.SeverityInfo)
	}
	return string(f.Severity)
}

// Resolved reports whether the finding reports a resolved condition.
func Resolved(f *event.Finding) bool { return f.Event.Status == event.StatusResolved }

// ResolvedAfter is how long the condition lasted: from startsAt to endsAt,
// or to when medic received the resolved event when endsAt is missing.
func ResolvedAfter(f *event.Finding) (time.Duration, bool) {
	ev := &f.Event
	end := ev.EndsAt
	if end.IsZero() {
		end = ev.ReceivedAt
	}
	if ev.StartsAt.IsZero() || end.IsZero() || end.Before(ev.StartsAt) {
		return 0, false
	}
	return end.Sub(ev.StartsAt), true
}

// Duration renders d for people: 45s, 14m, 2h 5m, 3d 4h.
func Duration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Round(time.Minute)/time.Minute))
	case d < 24*time.Hour:
		d = d.Round(time.Minute)
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	default:
		d = d.Round(time.Hour)
		days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd %dh", days, h)
	}
}

// LastLines returns the last n lines of text and how many were left out.
func LastLines(text string, n int) (string, int) {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return "", 0
	}
	lines := strings.Split(text, "\n")
	if len(lines) <= n {
		return text, 0
	}
	return strings.Join(lines[len(lines)-n:], "\n"), len(lines) - n
}

// CountLines counts the lines of text.
func CountLines(text string) int {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return 0
	}
	return strings.Count(text, "\n") + 1
}

// HasLogs reports whether the finding carries a non-empty log block.
func HasLogs(f *event.Finding) bool {
	return slices.ContainsFunc(f.Enrichments, func(e event.Enrichment) bool {
		return slices.ContainsFunc(e.Blocks, func(b event.Block) bool {
			return b.Kind == event.BlockLog && b.Log != nil && strings.TrimSpace(b.Log.Text) != ""
		})
	})
}

// Silenceable reports whether a silence can be made for the finding: a
// firing Prometheus alert with labels.
func Silenceable(f *event.Finding) bool {
	return f.Event.Kind == event.KindPrometheusAlert && !Resolved(f) && len(f.Event.Labels) > 0
}

// Bytes renders a size for people: 512 B, 12.3 KB, 2.0 MB.
func Bytes(n int) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KB", float64(n)/1024)
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/(1024*1024))
	}
}

func first(vals ...string) string {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}
