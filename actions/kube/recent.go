package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	kubetrig "github.com/medichq/medic/sources/kubernetes"
)

// RecentChangesParams are recent_changes_enricher's parameters.
type RecentChangesParams struct {
	// Window is how long before the event a rollout counts as recent.
	Window time.Duration `yaml:"window"`
	// MaxChanges is how many rollouts to show, newest first.
	MaxChanges int `yaml:"max_changes"`
}

// Validate names the field that is out of range.
func (p *RecentChangesParams) Validate() error {
	switch {
	case p.Window <= 0:
		return errors.New("window: must be positive")
	case p.MaxChanges < 1:
		return errors.New("max_changes: must be at least 1")
	}
	return nil
}

const revisionAnnotation = "deployment.kubernetes.io/revision"

func addRecent(r *actions.Registry) {
	actions.Add(r, "recent_changes_enricher",
		"Say what changed in the event's Deployment shortly before it (\"Deployment shop/api changed 4m before the alert: containers[api].image: api:1.4.2 → api:1.5.0\"), from the Deployment's ReplicaSets: each rollout's pod template against the one before.",
		func() *RecentChangesParams { return &RecentChangesParams{Window: time.Hour, MaxChanges: 3} },
		func(p *RecentChangesParams) (actions.Runner[kubeDeps], error) {
			return runOnCluster("recent_changes_enricher", "Recent changes", func(ctx context.Context, kc kubernetes.Interface, f *event.Finding) error {
				return recentChanges(ctx, kc, f, p)
			}), nil
		})
}

func recentChanges(ctx context.Context, kc kubernetes.Interface, f *event.Finding, p *RecentChangesParams) error {
	ev := &f.Event
	ns, name, err := workloadRef(ctx, kc, ev, "Deployment")
	if err != nil {
		return err
	}
	d, err := kc.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return call{verb: "get", resource: "deployments", namespace: ns, name: name}.explain(err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return problemf("deployment %s/%s has an invalid selector: %v", ns, name, err)
	}
	list, err := kc.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return call{verb: "list", resource: "replicasets", namespace: ns}.explain(err)
	}
	at := ev.StartsAt
	if at.IsZero() {
		at = f.CreatedAt
	}
	what := "the event"
	if ev.Kind == event.KindPrometheusAlert {
		what = "the alert"
	}
	lines := DeploymentRollouts(d, list.Items, at, what, p.Window, p.MaxChanges)
	if len(lines) == 0 {
		return nil // nothing changed within the window: no evidence to show
	}
	blocks := make([]event.Block, 0, len(lines))
	for _, l := range lines {
		blocks = append(blocks, event.MarkdownBlock(l))
	}
	f.Add(event.Enrichment{Title: "Recent changes", Source: "recent_changes_enricher", Blocks: blocks})
	return nil
}

// DeploymentRollouts words the rollouts of d (its ReplicaSets, by
// revision) that started within window before at, newest first, at most
// max: each one's pod template against the revision before it. what names
// what happened at at ("the alert").
func DeploymentRollouts(d *appsv1.Deployment, rss []appsv1.ReplicaSet, at time.Time, what string, window time.Duration, max int) []string {
	type rev struct {
		n  int
		rs *appsv1.ReplicaSet
	}
	var revs []rev
	for i := range rss {
		rs := &rss[i]
		if c := metav1.GetControllerOf(rs); c == nil || c.UID != d.UID {
			continue
		}
		n, err := strconv.Atoi(rs.Annotations[revisionAnnotation])
		if err != nil {
			continue
		}
		revs = append(revs, rev{n, rs})
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].n > revs[j].n })
	var out []string
	for i := 0; i+1 < len(revs) && len(out) < max; i++ {
		cur, prev := revs[i].rs, revs[i+1].rs
		when := cur.CreationTimestamp.Time
		if when.After(at) {
			continue // after the event: not its cause
		}
		if at.Sub(when) > window {
			break
		}
		cs := kubetrig.DiffObjects(template(prev), template(cur), false)
		if len(cs) == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("Deployment %s/%s changed %s before %s (revision %d → %d): %s",
			d.Namespace, d.Name, ago(at.Sub(when)), what, revs[i+1].n, revs[i].n, kubeevent.SummarizeChanges(cs)))
	}
	return out
}

// template is a ReplicaSet's pod template without the hash label every
// ReplicaSet has its own of.
func template(rs *appsv1.ReplicaSet) map[string]any {
	t := rs.Spec.Template.DeepCopy()
	delete(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(t)
	if err != nil {
		return nil
	}
	return m
}

func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	}
	return d.Round(time.Minute).String()
}
