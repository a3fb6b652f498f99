package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/sinks/slack"
	"github.com/medichq/medic/sinks/stdout"
	"github.com/medichq/medic/sinks/teams"
)

// changeEvent is an on_deployment_update event as the detector publishes
// it: the diff in its changes annotation, the summary as its description.
func changeEvent(t *testing.T, cs []kubeevent.Change) event.Event {
	t.Helper()
	b, err := json.Marshal(cs)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return event.Event{
		ID: "change-1", Kind: event.KindKubernetesResource, Source: kubeevent.Source, Status: event.StatusFiring, Severity: event.SeverityInfo,
		Title:       "Deployment shop/api updated (spec)",
		Description: kubeevent.SummarizeChanges(cs),
		Labels:      map[string]string{"namespace": "shop", "name": "api", "kind": "Deployment", "operation": "update", "resource": "apps/v1/deployments", "changed": "spec"},
		Annotations: map[string]string{kubeevent.AnnotationChanges: string(b)},
		Subject:     event.Subject{Kind: "Deployment", Namespace: "shop", Name: "api"},
		StartsAt:    at, ReceivedAt: at,
	}
}

var rollout = []kubeevent.Change{
	{Path: "spec.replicas", Label: "replicas", Op: kubeevent.ChangeChanged, Old: "3", New: "1"},
	{Path: "spec.template.spec.containers[0].image", Label: "containers[api].image", Op: kubeevent.ChangeChanged, Old: "api:1.4.2", New: "api:1.5.0"},
	{Path: "spec.template.spec.containers[0].env[1]", Label: "containers[api].env[TRACE]", Op: kubeevent.ChangeAdded, New: `{"name":"TRACE","value":"1"}`},
	{Path: "spec.template.spec.containers[0].resources.limits.memory", Label: "containers[api].resources.limits.memory", Op: kubeevent.ChangeChanged, Old: "512Mi", New: "256Mi"},
	{Path: "data.password", Label: "data.password", Op: kubeevent.ChangeChanged},
}

func runReportChanges(t *testing.T, ev event.Event, yamlParams string) *event.Finding {
	t.Helper()
	a := build(t, "report_changes", yamlParams)
	f := event.NewFinding(ev, ev.ReceivedAt)
	if err := a.Run(context.Background(), &actions.Env{}, f); err != nil {
		t.Fatal(err)
	}
	return f
}

// The diff as an on-call engineer reads it in the terminal, Slack and Teams.
func TestReportChangesGolden(t *testing.T) {
	t.Parallel()
	f := runReportChanges(t, changeEvent(t, rollout), "{}")
	var buf bytes.Buffer
	if err := stdout.Render(&buf, f, false); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "report_changes_stdout", buf.Bytes())
	sl, err := json.MarshalIndent(slack.Render(f, slack.RenderOptions{}), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "report_changes_slack", append(sl, '\n'))
	tm, err := json.MarshalIndent(teams.Card(f, teams.CardOptions{}), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "report_changes_teams", append(tm, '\n'))
}

func TestReportChangesFieldsToMonitor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		params string
		rows   int
	}{
		{"{}", len(rollout)},
		{"{fields_to_monitor: [spec.replicas]}", 1},
		{`{fields_to_monitor: ["spec.template.spec.containers[0]"]}`, 3},
		{"{fields_to_monitor: [spec.paused]}", 0},
	}
	for _, tt := range tests {
		f := runReportChanges(t, changeEvent(t, rollout), tt.params)
		rows := 0
		for _, e := range f.Enrichments {
			if e.Source == "report_changes" {
				rows += len(e.Blocks[0].Table.Rows)
			}
		}
		if rows != tt.rows {
			t.Errorf("%s: %d rows, want %d", tt.params, rows, tt.rows)
		}
		if silenced := f.Silenced != nil; silenced != (tt.rows == 0) {
			t.Errorf("%s: silenced %v with %d rows", tt.params, f.Silenced, rows)
		}
	}
	// A create has no diff: nothing to report.
	ev := changeEvent(t, nil)
	delete(ev.Annotations, kubeevent.AnnotationChanges)
	if f := runReportChanges(t, ev, "{fields_to_monitor: [spec.replicas]}"); len(f.Enrichments) != 0 || f.Silenced != nil {
		t.Errorf("an event without a diff: enrichments %+v silenced %v", f.Enrichments, f.Silenced)
	}
	if _, err := buildErr("report_changes", `{fields_to_monitor: ["spec..x"]}`); err == nil {
		t.Error("a bad path was accepted")
	}
}
