package kube

import (
	"context"
	"errors"
	"sort"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	kubetrig "github.com/medichq/medic/sources/kubernetes"
)

// HelmStatusParams are helm_status_enricher's parameters.
type HelmStatusParams struct {
	// Revisions is how many of the latest revisions to show (default 10).
	Revisions int `yaml:"revisions"`
}

// Validate rejects a revision count that shows nothing.
func (p *HelmStatusParams) Validate() error {
	if p.Revisions < 1 {
		return errors.New("revisions: must be at least 1")
	}
	return nil
}

func addHelm(r *actions.Registry) {
	actions.Add(r, "helm_status_enricher",
		"Show a Helm release's history (revision, status, chart, app version, description, updated) from Helm's release records; the release is the event's release label (the on_helm_release_* triggers set it). Reading the records needs get/list on Secrets (the chart's rbac.helmReleases).",
		func() *HelmStatusParams { return &HelmStatusParams{Revisions: 10} },
		func(p *HelmStatusParams) (actions.Runner[kubeDeps], error) {
			return actions.RunFunc[kubeDeps](func(ctx context.Context, deps kubeDeps, f *event.Finding) error {
				return finish(f, "helm_status_enricher", "Helm release", helmStatus(ctx, deps, f, p.Revisions))
			}), nil
		})
}

func helmStatus(ctx context.Context, deps kubeDeps, f *event.Finding, keep int) error {
	ev := &f.Event
	release := ev.Labels[kubeevent.LabelRelease]
	ns := ev.Labels[kubeevent.LabelNamespace]
	if ev.Subject.Kind == "HelmRelease" {
		release, ns = ev.Subject.Name, ev.Subject.Namespace
	}
	if release == "" || ns == "" {
		return problemf("the event names no Helm release (a release and a namespace label)")
	}
	kc, err := client(deps)
	if err != nil {
		return err
	}
	c := call{verb: "list", resource: "secrets", namespace: ns}
	list, err := kc.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: kubetrig.HelmOwnerSelector + ",name=" + release})
	if err != nil {
		return c.explain(err)
	}
	var revs []*kubetrig.HelmRelease
	for i := range list.Items {
		r, err := kubetrig.DecodeHelmRelease(&list.Items[i])
		if err != nil {
			continue // another owner's Secret, or a record Helm itself could not read
		}
		revs = append(revs, r)
	}
	if len(revs) == 0 {
		return problemf("no Helm release records for %s/%s", ns, release)
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].Version > revs[j].Version })
	f.Add(event.Enrichment{Title: "Helm release " + ns + "/" + release, Source: "helm_status_enricher",
		Blocks: []event.Block{HelmHistoryBlock(revs, keep)}})
	return nil
}

// HelmHistoryBlock renders release revisions, newest first, as helm
// history does.
func HelmHistoryBlock(revs []*kubetrig.HelmRelease, keep int) event.Block {
	rows := make([][]string, 0, min(len(revs), keep))
	for i, r := range revs {
		if i == keep {
			break
		}
		rows = append(rows, []string{strconv.Itoa(r.Version), r.Info.LastDeployed.UTC().Format(timeLayout), r.Info.Status,
			r.ChartRef(), r.Chart.Metadata.AppVersion, r.Info.Description})
	}
	return event.Block{Kind: event.BlockTable, Table: &event.TableBlock{
		Headers: []string{"Revision", "Updated", "Status", "Chart", "App version", "Description"}, Rows: rows}}
}
