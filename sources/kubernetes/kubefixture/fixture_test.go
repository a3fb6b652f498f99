package kubefixture

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/internal/fixtures"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/triggers"
	"github.com/medichq/medic/triggers/kubernetes" // the triggers the fixtures' playbooks name
)

var fixtureNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func decodeOne(t *testing.T, doc string) runtime.Object {
	t.Helper()
	objs, err := DecodeObjects([]byte(doc))
	if err != nil || len(objs) != 1 {
		t.Fatalf("decode: %v %v", err, objs)
	}
	return objs[0]
}

// A crash-looping pod as `kubectl get -o yaml` prints it becomes the
// pod_crash_loop event the detector publishes in a cluster.
func TestEventsFromObjectsCrashLoopSample(t *testing.T) {
	data := fixtures.Read(t, "payloads", "k8s", "crashloopbackoff", "gitops-engine__pod-crashloop.yaml")
	objs, err := DecodeObjects(data)
	if err != nil || len(objs) != 1 {
		t.Fatalf("decode: %v %v", err, objs)
	}
	if _, ok := objs[0].(*corev1.Pod); !ok {
		t.Fatalf("decoded a %T", objs[0])
	}
	trig := kubeTriggers(t, "- {triggers: [on_pod_crash_loop, on_pod_oom_killed], actions: [default_enricher]}\n")
	evs, err := EventsFromObjects(context.Background(), trig, fixtureNow, objs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("want one event, got %+v", evs)
	}
	ev := evs[0]
	if ev.Kind != event.KindPodCrashLoop || ev.Subject.Namespace != "argocd" || ev.Subject.Name != "my-pod" || ev.Subject.Container != "main" ||
		ev.Labels[kubeevent.LabelRestartCount] != "3" || ev.Labels[kubeevent.LabelExitCode] != "1" || ev.Source != kubeevent.Source || ev.ID == "" {
		t.Fatalf("event %+v", ev)
	}
}

// fire_delay is taken as elapsed: every delay of every trigger gives its
// event, at once.
func TestEventsFromObjectsImagePullDelaysElapse(t *testing.T) {
	obj := decodeOne(t, `
apiVersion: v1
kind: Pod
metadata: {name: web-1, uid: u-1}
spec: {containers: [{name: app, image: reg/x:1}]}
status:
  containerStatuses:
  - {name: app, image: reg/x:1, state: {waiting: {reason: ImagePullBackOff, message: back-off}}}
`)
	trig := kubeTriggers(t, `
- {triggers: [on_image_pull_backoff], actions: [default_enricher]}
- {triggers: [{on_image_pull_backoff: {fire_delay: 30m}}], actions: [default_enricher]}
`)
	start := time.Now()
	evs, err := EventsFromObjects(context.Background(), trig, fixtureNow, obj)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %s: delays were waited for", time.Since(start))
	}
	var delays []string
	for _, ev := range evs {
		if ev.Kind != event.KindImagePullBackoff || ev.Subject.Namespace != "default" || ev.Labels[kubeevent.LabelImage] != "reg/x:1" {
			t.Fatalf("event %+v", ev)
		}
		delays = append(delays, ev.Labels[kubeevent.LabelFireDelay])
	}
	if strings.Join(delays, ",") != "2m0s,30m0s" {
		t.Fatalf("fire delays %v", delays)
	}
}

// A node whose Ready condition just turned false reports after duration;
// warning events, jobs and a list of objects work too.
func TestEventsFromObjectsNodeEventJobList(t *testing.T) {
	objs, err := DecodeObjects([]byte(`{
  "apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "n"},
     "status": {"conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
       "lastTransitionTime": "2026-01-01T00:00:00Z"}]}},
    {"apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": "BackOff", "count": 4, "message": "Back-off restarting",
     "metadata": {"name": "web-1.abc", "namespace": "shop", "uid": "e"},
     "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "shop", "fieldPath": "spec.containers{app}"},
     "lastTimestamp": "2025-12-31T23:59:00Z"},
    {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "backup", "namespace": "ops", "uid": "j"},
     "status": {"failed": 3, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
       "lastTransitionTime": "2020-01-01T00:00:00Z"}]}}
  ]}`))
	if err != nil || len(objs) != 3 {
		t.Fatalf("decode: %v %v", err, objs)
	}
	trig := kubeTriggers(t, `
- {triggers: [{on_node_not_ready: {duration: 5m}}, on_kubernetes_warning_event, on_job_failure], actions: [default_enricher]}
`)
	evs, err := EventsFromObjects(context.Background(), trig, fixtureNow, objs...)
	if err != nil {
		t.Fatal(err)
	}
	got := map[event.Kind]event.Event{}
	for _, ev := range evs {
		got[ev.Kind] = ev
	}
	if len(evs) != 3 || got[event.KindNodeNotReady].Labels[kubeevent.LabelNotReadyFor] != "5m0s" ||
		got[event.KindKubernetesWarningEvent].Subject.Container != "app" || got[event.KindJobFailure].Subject.Name != "backup" {
		t.Fatalf("events %+v", evs)
	}
}

// Triggers that refuse the object, or no trigger for its kind, make no
// event; kinds the detector does not watch are an error.
func TestEventsFromObjectsNothingAndErrors(t *testing.T) {
	pod := decodeOne(t, `
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: a}
status:
  containerStatuses:
  - {name: c, restartCount: 1, state: {waiting: {reason: CrashLoopBackOff}}}
`)
	for name, trig := range map[string][]triggers.Trigger{
		"restart_count 2 by default": kubeTriggers(t, "- {triggers: [on_pod_crash_loop], actions: [default_enricher]}\n"),
		"no pod informer":            kubeTriggers(t, "- {triggers: [on_job_failure], actions: [default_enricher]}\n"),
		"no trigger":                 nil,
	} {
		evs, err := EventsFromObjects(context.Background(), trig, fixtureNow, pod)
		if err != nil || len(evs) != 0 {
			t.Errorf("%s: %v %+v", name, err, evs)
		}
	}
	dep := decodeOne(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
	if _, err := EventsFromObjects(context.Background(), nil, fixtureNow, dep); err == nil || !strings.Contains(err.Error(), "Deployment: medic's Kubernetes triggers report changes of Pod, Job, Node, Event") {
		t.Errorf("deployment: %v", err)
	}
	if _, err := DecodeObjects([]byte("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")); err == nil {
		t.Error("an unknown kind decoded")
	}
}

// kubeTriggers builds the triggers of the playbooks in yamlText.
func kubeTriggers(t *testing.T, yamlText string) []triggers.Trigger {
	t.Helper()
	set, err := playbooks.Build([]playbooks.File{{Path: "test.yaml", Data: []byte(yamlText)}}, playbooks.Options{Plugins: testPlugins()})
	if err != nil {
		t.Fatalf("playbooks: %v", err)
	}
	return set.Triggers()
}

// testPlugins are what the test playbooks need: the Kubernetes triggers and
// package actions' own actions (create_finding).
func testPlugins() playbooks.Plugins {
	r := actions.NewRegistry()
	actions.Register(r)
	return playbooks.Plugins{Triggers: triggers.NewRegistry(kubernetes.Register), Actions: r}
}
