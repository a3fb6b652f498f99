package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/rag/llm"
)

// rolloutTool is a deployment's rollout history and what changed between
// its last two revisions: the question behind most "it broke after the
// deploy" incidents.
type rolloutTool struct {
	env    *actions.Env
	base   event.Event
	policy NamespacePolicy
}

// maxRevisions bounds the history shown.
const maxRevisions = 10

func (rolloutTool) Spec() llm.ToolSpec {
	return llm.ToolSpec{Name: "rollout_history", Description: "A deployment's revisions (newest first: when, images, replicas) and what changed in the pod template between the last two: images, environment variables (names and whether the value changed; values are not shown), resources, args, probes.",
		Parameters: map[string]any{"type": "object", "additionalProperties": false,
			"properties": map[string]any{
				"namespace": map[string]any{"type": "string", "description": "The deployment's namespace (default: the finding's)."},
				"name":      map[string]any{"type": "string", "description": "The deployment (default: the finding's)."},
			}}}
}

func (t *rolloutTool) Call(ctx context.Context, raw json.RawMessage) (string, error) {
	var a struct{ Namespace, Name string }
	if err := strictJSON(raw, &a); err != nil {
		return "", err
	}
	ns := firstNonEmpty(a.Namespace, t.base.Subject.Namespace, t.base.Labels["namespace"])
	name := a.Name
	if name == "" && t.base.Subject.Kind == "Deployment" {
		name = t.base.Subject.Name
	}
	name = firstNonEmpty(name, t.base.Labels["deployment"])
	if ns == "" || name == "" {
		return "", errors.New("namespace and name of the deployment are required")
	}
	if err := t.policy.Check(ns); err != nil {
		return "", err
	}
	if t.env == nil || t.env.Kube == nil {
		return "", errors.New("no Kubernetes cluster is configured")
	}
	apps := t.env.Kube.AppsV1()
	d, err := apps.Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get deployment %s/%s: %w", ns, name, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return "", fmt.Errorf("deployment %s/%s: %w", ns, name, err)
	}
	list, err := apps.ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return "", fmt.Errorf("list replicasets in %s: %w", ns, err)
	}
	var rss []appsv1.ReplicaSet
	for _, rs := range list.Items {
		if c := metav1.GetControllerOf(&rs); c != nil && c.UID == d.UID {
			rss = append(rss, rs)
		}
	}
	sort.Slice(rss, func(i, j int) bool { return revision(&rss[i]) > revision(&rss[j]) })
	var b strings.Builder
	fmt.Fprintf(&b, "Deployment %s/%s: %d revisions\nrevision | created | replicas (ready) | images\n", ns, name, len(rss))
	for i, rs := range rss {
		if i == maxRevisions {
			fmt.Fprintf(&b, "… %d older\n", len(rss)-maxRevisions)
			break
		}
		fmt.Fprintf(&b, "%d | %s | %d (%d) | %s\n", revision(&rs), rs.CreationTimestamp.UTC().Format(time.RFC3339),
			rs.Status.Replicas, rs.Status.ReadyReplicas, strings.Join(images(rs.Spec.Template.Spec), ", "))
	}
	if len(rss) >= 2 {
		fmt.Fprintf(&b, "\nChanged from revision %d to %d:\n", revision(&rss[1]), revision(&rss[0]))
		changes := templateChanges(rss[1].Spec.Template.Spec, rss[0].Spec.Template.Spec)
		if len(changes) == 0 {
			b.WriteString("- nothing in the containers (labels or annotations only)\n")
		}
		for _, c := range changes {
			b.WriteString("- " + c + "\n")
		}
	}
	return b.String(), nil
}

func revision(rs *appsv1.ReplicaSet) int {
	n, _ := strconv.Atoi(rs.Annotations["deployment.kubernetes.io/revision"])
	return n
}

func images(spec corev1.PodSpec) []string {
	out := make([]string, 0, len(spec.Containers))
	for _, c := range spec.Containers {
		out = append(out, c.Name+"="+c.Image)
	}
	return out
}

// templateChanges lists what differs per container between two pod specs.
// Environment values are compared, never shown: they may be secrets.
func templateChanges(old, cur corev1.PodSpec) []string {
	var out []string
	byName := map[string]corev1.Container{}
	for _, c := range old.Containers {
		byName[c.Name] = c
	}
	for _, c := range cur.Containers {
		o, ok := byName[c.Name]
		if !ok {
			out = append(out, "container "+c.Name+" added")
			continue
		}
		delete(byName, c.Name)
		if o.Image != c.Image {
			out = append(out, fmt.Sprintf("container %s image %s → %s", c.Name, o.Image, c.Image))
		}
		out = append(out, envChanges(c.Name, o.Env, c.Env)...)
		if !slices.Equal(o.Args, c.Args) || !slices.Equal(o.Command, c.Command) {
			out = append(out, fmt.Sprintf("container %s command/args %q → %q", c.Name, append(o.Command, o.Args...), append(c.Command, c.Args...)))
		}
		if o.Resources.String() != c.Resources.String() {
			out = append(out, fmt.Sprintf("container %s resources %s → %s", c.Name, resources(o.Resources), resources(c.Resources)))
		}
		if o.LivenessProbe.String() != c.LivenessProbe.String() || o.ReadinessProbe.String() != c.ReadinessProbe.String() {
			out = append(out, "container "+c.Name+" probes changed")
		}
	}
	for name := range byName {
		out = append(out, "container "+name+" removed")
	}
	sort.Strings(out)
	return out
}

func envChanges(container string, old, cur []corev1.EnvVar) []string {
	was := map[string]corev1.EnvVar{}
	for _, e := range old {
		was[e.Name] = e
	}
	var out []string
	for _, e := range cur {
		o, ok := was[e.Name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("container %s env %s added", container, e.Name))
		case o.Value != e.Value || o.ValueFrom.String() != e.ValueFrom.String():
			out = append(out, fmt.Sprintf("container %s env %s changed (value not shown)", container, e.Name))
		}
		delete(was, e.Name)
	}
	for name := range was {
		out = append(out, fmt.Sprintf("container %s env %s removed", container, name))
	}
	return out
}

func resources(r corev1.ResourceRequirements) string {
	var parts []string
	for _, kv := range []struct {
		what string
		l    corev1.ResourceList
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		keys := make([]string, 0, len(kv.l))
		for k := range kv.l {
			keys = append(keys, string(k))
		}
		sort.Strings(keys)
		for _, k := range keys {
			q := kv.l[corev1.ResourceName(k)]
			parts = append(parts, kv.what+"."+k+"="+q.String())
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}
