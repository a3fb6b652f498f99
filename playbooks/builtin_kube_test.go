package playbooks

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/medichq/medic/event"
)

// The built-in Kubernetes alert playbooks load, each can be disabled by
// name, and without a cluster they still give a finding whose actions say
// why their evidence is missing.
func TestBuiltinKubernetesAlertPlaybooks(t *testing.T) {
	t.Parallel()
	files, err := BuiltinFiles()
	if err != nil {
		t.Fatal(err)
	}
	set, err := Build(files, Options{Plugins: testPlugins})
	if err != nil {
		t.Fatalf("built-in playbooks do not load: %v", err)
	}
	want := map[string][]string{
		"builtin-kube-pod-crash-looping":            {"pod_issue_investigator", "logs_enricher", "pod_events_enricher", "ask_ai"},
		"builtin-kube-pod-not-ready":                {"pod_issue_investigator", "pod_status_enricher", "pod_events_enricher", "ask_ai"},
		"builtin-kube-container-waiting":            {"pod_issue_investigator", "pod_events_enricher", "ask_ai"},
		"builtin-kube-deployment-replicas-mismatch": {"deployment_status_enricher", "related_pods", "pod_issue_investigator", "resource_events_enricher", "recent_changes_enricher", "ask_ai"},
		"builtin-kube-job-failed":                   {"job_info_enricher", "resource_events_enricher", "logs_enricher", "ask_ai"},
		"builtin-kube-node-not-ready":               {"node_status_enricher", "resource_events_enricher", "ask_ai"},
		// The Kubernetes-event playbooks, named like Robusta's defaults.
		"builtin-pod-crash-loop":     {"pod_issue_investigator", "logs_enricher", "pod_events_enricher", "ask_ai"},
		"builtin-pod-oom-killed":     {"pod_issue_investigator", "pod_status_enricher", "pod_events_enricher", "ask_ai"},
		"builtin-image-pull-backoff": {"pod_issue_investigator", "pod_events_enricher", "ask_ai"},
		"builtin-job-failure":        {"job_info_enricher", "resource_events_enricher", "logs_enricher", "ask_ai"},
		"builtin-node-not-ready":     {"node_status_enricher", "resource_events_enricher", "ask_ai"},
	}
	for name, acts := range want {
		i := slices.IndexFunc(set.Playbooks, func(p *Playbook) bool { return p.Name == name })
		if i < 0 {
			t.Errorf("built-in playbook %s is missing", name)
			continue
		}
		var got []string
		for _, a := range set.Playbooks[i].Actions {
			got = append(got, a.Name)
		}
		if !slices.Equal(got, acts) {
			t.Errorf("%s runs %v, want %v", name, got, acts)
		}
		disabled, err := Build(files, Options{Plugins: testPlugins, Disabled: []string{name}})
		if err != nil {
			t.Fatalf("disable %s: %v", name, err)
		}
		if slices.Contains(disabled.Names(), name) {
			t.Errorf("%s still runs when disabled", name)
		}
	}

	// KubePodCrashLooping without a cluster: the alert enricher, then a
	// note from each Kubernetes action; no action fails.
	engine := newEngine(t, set) // its Env has no cluster
	ev := alert("KubePodCrashLooping", event.StatusFiring, map[string]string{"namespace": "shop", "pod": "cart-7d9", "container": "app"})
	res, err := engine.RunSet(context.Background(), set, ev)
	if err != nil || res.Finding == nil {
		t.Fatalf("run: %v %+v", err, res)
	}
	if !slices.Equal(res.Finding.Playbooks, []string{"builtin-alert-enricher", "builtin-kube-pod-crash-looping"}) {
		t.Errorf("playbooks run: %v", res.Finding.Playbooks)
	}
	var sources []string
	for _, e := range res.Finding.Enrichments {
		sources = append(sources, e.Source)
		if strings.Contains(e.Title, "could not run") {
			t.Errorf("an action failed instead of adding a note: %+v", e)
		}
		if e.Source != "default_enricher" && !strings.Contains(e.Blocks[0].Markdown, "no Kubernetes cluster configured") {
			t.Errorf("%s: %+v", e.Source, e.Blocks)
		}
	}
	// Without a cluster the three evidence actions say so once, not three times.
	if !slices.Equal(sources, []string{"default_enricher", "pod_issue_investigator"}) {
		t.Errorf("enrichments from %v", sources)
	}

	// A crash loop detected by the Kubernetes trigger runs the event
	// playbook, not the alert ones.
	crash := &event.Event{ID: "k1", Kind: event.KindPodCrashLoop, Source: "kubernetes", Status: event.StatusFiring,
		Labels:  map[string]string{"namespace": "shop", "pod": "cart-7d9", "container": "app", "reason": "CrashLoopBackOff", "restart_count": "5"},
		Subject: event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9", Container: "app"}}
	res, err = engine.RunSet(context.Background(), set, crash)
	if err != nil || res.Finding == nil || !slices.Equal(res.Finding.Playbooks, []string{"builtin-pod-crash-loop"}) {
		t.Errorf("pod crash loop event: %v %+v", err, res.Finding)
	}

	// Resolved alerts get no Kubernetes evidence: the state is gone.
	res, err = engine.RunSet(context.Background(), set, alert("KubePodCrashLooping", event.StatusResolved, map[string]string{"namespace": "shop", "pod": "cart-7d9"}))
	if err != nil || slices.Contains(res.Finding.Playbooks, "builtin-kube-pod-crash-looping") {
		t.Errorf("resolved alert ran %v (%v)", res.Finding.Playbooks, err)
	}
}
