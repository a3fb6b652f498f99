package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// cluster is a fake cluster for one test.
type cluster struct {
	kube    *fake.Clientset
	dynamic *dynamicfake.FakeDynamicClient
}

func newCluster(t *testing.T, objs ...runtime.Object) *cluster {
	t.Helper()
	var clones []runtime.Object
	for _, o := range objs {
		clones = append(clones, o.DeepCopyObject())
	}
	c := &cluster{
		kube:    fake.NewClientset(clones...),
		dynamic: dynamicfake.NewSimpleDynamicClient(scheme.Scheme, objs...),
	}
	// The fakes record every call, whichever reactor answered it.
	t.Cleanup(func() { recordCalls(t, c.kube.Actions(), c.dynamic.Actions()) })
	return c
}

func (c *cluster) env() *actions.Env {
	return &actions.Env{Kube: c.kube, Dynamic: c.dynamic, ClusterName: "test"}
}

// logs makes GetLogs answer text instead of the fake's "fake logs".
func (c *cluster) logs(text string) {
	c.kube.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		return true, &runtime.Unknown{Raw: []byte(text)}, nil
	})
}

// deny makes verb on resource (and subresource, "" for the object itself)
// answer 403 Forbidden.
func (c *cluster) deny(verb, res, sub string) {
	c.kube.PrependReactor(verb, res, func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != sub {
			return false, nil, nil
		}
		name := ""
		if g, ok := a.(k8stesting.GetAction); ok {
			name = g.GetName()
		}
		gr := schema.GroupResource{Resource: res}
		if sub != "" {
			gr.Resource += "/" + sub
		}
		return true, nil, apierrors.NewForbidden(gr, name, errDenied)
	})
}

// missing makes get on resource answer 404 whatever the fake holds.
func (c *cluster) missing(res string) {
	c.kube.PrependReactor("get", res, func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewNotFound(schema.GroupResource{Resource: res}, a.(k8stesting.GetAction).GetName())
	})
}

// k8sAction is a fake client's recorded request.
type k8sAction = k8stesting.Action

// forbidden is the API server's 403 for get on res/name.
func forbidden(res, name string) error {
	return apierrors.NewForbidden(schema.GroupResource{Resource: res}, name, errDenied)
}

type deniedErr struct{}

func (deniedErr) Error() string { return "RBAC: access denied" }

var errDenied = deniedErr{}

// logRequests returns the PodLogOptions of every GetLogs call.
func (c *cluster) logRequests() []*corev1.PodLogOptions {
	var out []*corev1.PodLogOptions
	for _, a := range c.kube.Actions() {
		if a.GetVerb() == "get" && a.GetResource().Resource == "pods" && a.GetSubresource() == "log" {
			if g, ok := a.(k8stesting.GenericAction); ok {
				if o, ok := g.GetValue().(*corev1.PodLogOptions); ok {
					out = append(out, o)
				}
			}
		}
	}
	return out
}

// build decodes params (YAML) strictly, as a playbook would, and builds
// the action.
func build(t *testing.T, name, params string) actions.Action {
	t.Helper()
	a, err := buildErr(name, params)
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	return a
}

func buildErr(name, params string) (actions.Action, error) {
	var node *yaml.Node
	if params != "" {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(params), &doc); err != nil {
			return nil, err
		}
		node = doc.Content[0]
	}
	return registered.Build(name, node)
}

// registered is this package's actions, as internal/plugins.Builtin adds
// them.
var registered = func() *actions.Registry {
	r := actions.NewRegistry()
	Register(r)
	return r
}()

// podEvent is a Kubernetes event about a pod, as a trigger sends it.
func podEvent(kind event.Kind, pod *corev1.Pod, container string) *event.Event {
	return &event.Event{
		ID:       "e-" + pod.Name,
		Kind:     kind,
		Source:   "kubernetes",
		Status:   event.StatusFiring,
		Severity: event.SeverityHigh,
		Title:    "Pod " + pod.Namespace + "/" + pod.Name + " " + string(kind),
		Subject:  event.Subject{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, Container: container, Node: pod.Spec.NodeName},
		StartsAt: sampleBase,
	}
}

// alertEvent is a Prometheus alert with labels, its subject resolved the
// way the webhook does (here: by SubjectOf, the same rules).
func alertEvent(name string, labels map[string]string) *event.Event {
	l := map[string]string{"alertname": name}
	for k, v := range labels {
		l[k] = v
	}
	ev := &event.Event{
		ID:       "a-" + strings.ToLower(name),
		Kind:     event.KindPrometheusAlert,
		Source:   "alertmanager",
		Status:   event.StatusFiring,
		Severity: event.SeverityWarning,
		Title:    name,
		Labels:   l,
		StartsAt: sampleBase,
	}
	ev.Subject = SubjectOf(ev)
	return ev
}

// runActions runs actions (name, params pairs) against ev, the way the
// engine does, and returns the finding. An action that returns an error
// fails the test: these actions degrade to notes.
func runActions(t *testing.T, env *actions.Env, ev *event.Event, steps ...[2]string) *event.Finding {
	t.Helper()
	f := event.NewFinding(*ev, sampleBase.Add(time.Minute))
	f.Playbooks = []string{"test"}
	for _, s := range steps {
		a := build(t, s[0], s[1])
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.Run(ctx, env, f)
		cancel()
		if err != nil {
			t.Fatalf("%s returned an error instead of a note: %v", s[0], err)
		}
	}
	return f
}

// enrichment returns the finding's enrichment from source, failing when
// there is not exactly one.
func enrichment(t *testing.T, f *event.Finding, source string) event.Enrichment {
	t.Helper()
	var found []event.Enrichment
	for _, e := range f.Enrichments {
		if e.Source == source {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one enrichment from %s, got %d: %+v", source, len(found), f.Enrichments)
	}
	return found[0]
}

// noteOf returns the text of an enrichment that is a single note ("⚠ …").
func noteOf(t *testing.T, e event.Enrichment) string {
	t.Helper()
	for _, b := range e.Blocks {
		if b.Kind == event.BlockMarkdown && strings.HasPrefix(b.Markdown, "⚠ ") {
			return b.Markdown
		}
	}
	t.Fatalf("enrichment %q from %s has no note: %+v", e.Title, e.Source, e.Blocks)
	return ""
}

// text is every string of an enrichment, for "contains" checks.
func text(e event.Enrichment) string {
	var b strings.Builder
	b.WriteString(e.Title + "\n")
	for _, bl := range e.Blocks {
		switch bl.Kind {
		case event.BlockMarkdown:
			b.WriteString(bl.Markdown + "\n")
		case event.BlockLog:
			b.WriteString(bl.Log.Source + "\n" + bl.Log.Text)
		case event.BlockTable:
			b.WriteString(strings.Join(bl.Table.Headers, " | ") + "\n")
			for _, r := range bl.Table.Rows {
				b.WriteString(strings.Join(r, " | ") + "\n")
			}
		}
	}
	return b.String()
}

func eventsToObjects(evs []corev1.Event) []runtime.Object {
	out := make([]runtime.Object, len(evs))
	for i := range evs {
		out[i] = &evs[i]
	}
	return out
}
