package playtest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/fixtures"
	"github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/playbooks"
)

// testOptions load playbooks with the binary's registries: the built-in
// playbooks name the Kubernetes and Prometheus triggers, ask_ai and
// actions/kube's evidence.
var testOptions = playbooks.Options{Plugins: plugins.Builtin().Playbooks()}

func builtinSet(t *testing.T) *playbooks.Set {
	t.Helper()
	files, err := playbooks.BuiltinFiles()
	if err != nil {
		t.Fatal(err)
	}
	set, err := playbooks.Build(files, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func readSample(t *testing.T, rel string) []byte {
	t.Helper()
	return fixtures.Read(t, "payloads", "k8s", filepath.FromSlash(rel))
}

// A crash-looping pod as kubectl prints it matches the built-in crash-loop
// playbook through the event medic's detector makes of it.
func TestKubernetesPodFixtureCrashLoop(t *testing.T) {
	data := readSample(t, "crashloopbackoff/gitops-engine__pod-crashloop.yaml")
	set := builtinSet(t)
	dec := &Decoder{Set: set}
	evs, err := dec.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if dec.Objects != 1 || len(evs) != 1 || evs[0].Kind != event.KindPodCrashLoop || evs[0].Subject.String() != "pod/argocd/my-pod" || evs[0].Subject.Container != "main" {
		for i := range evs {
			evs[i].Raw = nil
		}
		t.Fatalf("objects %d, events %+v", dec.Objects, evs)
	}
	r := Run(set, &evs[0], nil)
	if !slices.Equal(r.PlaybookNames(), []string{"builtin-pod-crash-loop"}) ||
		!slices.Equal(r.ActionNames(), []string{"pod_issue_investigator", "logs_enricher", "pod_events_enricher", "ask_ai"}) {
		t.Fatalf("report:\n%s", r.Text())
	}
}

// An image that cannot be pulled matches the image-pull playbook: its
// fire_delay counts as elapsed.
func TestKubernetesPodFixtureImagePullBackOff(t *testing.T) {
	data := readSample(t, "imagepullbackoff/gitops-engine__pod-imagepullbackoff.yaml")
	set := builtinSet(t)
	evs, err := DecodeEvents(data, set)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != event.KindImagePullBackoff || evs[0].Labels["fire_delay"] != "2m0s" {
		t.Fatalf("events %+v", evs)
	}
	r := Run(set, &evs[0], nil)
	if !slices.Equal(r.PlaybookNames(), []string{"builtin-image-pull-backoff"}) ||
		!slices.Equal(r.ActionNames(), []string{"pod_issue_investigator", "pod_events_enricher", "ask_ai"}) {
		t.Fatalf("report:\n%s", r.Text())
	}
}

// A fixture file may name a Kubernetes object; one the triggers report
// nothing for expects no playbook.
func TestKubernetesObjectFixtures(t *testing.T) {
	set := builtinSet(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("pod.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop}
status:
  containerStatuses:
  - {name: app, restartCount: 5, lastState: {terminated: {exitCode: 137}}, state: {waiting: {reason: CrashLoopBackOff}}}
`)
	path := write("fixtures.yaml", `
- name: crash loop
  event: pod.yaml
  expect: {playbooks: [builtin-pod-crash-loop]}
- name: a healthy pod is quiet
  event: {apiVersion: v1, kind: Pod, metadata: {name: ok, namespace: shop}, status: {phase: Running}}
  expect: {playbooks: []}
- name: a healthy pod expected to match
  event: {apiVersion: v1, kind: Pod, metadata: {name: ok, namespace: shop}, status: {phase: Running}}
  expect: {playbooks: [builtin-pod-crash-loop]}
`)
	fixtures, err := LoadFixtures(path, set)
	if err != nil {
		t.Fatal(err)
	}
	if len(fixtures) != 3 {
		t.Fatalf("fixtures %+v", fixtures)
	}
	for i, wantPass := range []bool{true, true, false} {
		res := Check(set, nil, fixtures[i])
		if res.Passed() != wantPass {
			t.Errorf("%s: passed %v, diffs %v", fixtures[i].Name, res.Passed(), res.Diffs)
		}
	}
	if res := Check(set, nil, fixtures[2]); len(res.Diffs) != 1 || !strings.Contains(res.Diffs[0], "got no event") {
		t.Errorf("diffs %v", res.Diffs)
	}
	if _, err := LoadFixtures(write("bad.yaml", "name: x\nevent: {apiVersion: apps/v1, kind: Deployment, metadata: {name: d}}\nexpect: {playbooks: []}\n"), set); err == nil ||
		!strings.Contains(err.Error(), "bad.yaml:2: event: Deployment: medic's Kubernetes triggers report changes of Pod, Job, Node, Event") {
		t.Errorf("deployment: %v", err)
	}
}
