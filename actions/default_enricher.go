package actions

import (
	"context"
	"sort"
	"strings"

	"github.com/medichq/medic/event"
)

// annotationsShownElsewhere are already the finding's title and description,
// or become links.
var annotationsShownElsewhere = map[string]bool{
	"summary": true, "description": true, "message": true, "runbook_url": true, "runbook": true,
}

func addDefaultEnricher(r *Registry) {
	Add(r, "default_enricher", "Add the alert's labels and annotations, and links to its graph, runbook and a prefilled silence.",
		func() *NoParams { return &NoParams{} },
		func(*NoParams) (Runner[any], error) { return RunFunc[any](defaultEnrich), nil })
}

func defaultEnrich(_ context.Context, _ any, f *event.Finding) error {
	ev := &f.Event
	var blocks []event.Block
	if len(ev.Labels) > 0 {
		blocks = append(blocks, event.KeyValueBlock(sortedPairs(ev.Labels, nil, "alertname")))
	}
	if extra := sortedPairs(ev.Annotations, annotationsShownElsewhere, ""); len(extra) > 0 {
		blocks = append(blocks, event.KeyValueBlock(extra))
	}
	if links := alertLinks(ev); len(links) > 0 {
		blocks = append(blocks, event.LinksBlock(links...))
	}
	if len(blocks) == 0 {
		return nil
	}
	f.Add(event.Enrichment{Title: "Alert labels", Source: "default_enricher", Blocks: blocks})
	return nil
}

// sortedPairs orders keys alphabetically with first (if present) leading.
func sortedPairs(m map[string]string, skip map[string]bool, first string) [][2]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !skip[k] {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if (keys[i] == first) != (keys[j] == first) {
			return keys[i] == first
		}
		return keys[i] < keys[j]
	})
	out := make([][2]string, len(keys))
	for i, k := range keys {
		out[i] = [2]string{k, m[k]}
	}
	return out
}

// alertLinks returns the graph, runbook and silence links of an alert.
func alertLinks(ev *event.Event) []event.Link {
	var links []event.Link
	if ev.GeneratorURL != "" {
		links = append(links, event.Link{Label: "Graph", URL: ev.GeneratorURL})
	}
	for _, k := range []string{"runbook_url", "runbook"} {
		if u := ev.Annotations[k]; isURL(u) {
			links = append(links, event.Link{Label: "Runbook", URL: u})
			break
		}
	}
	if s := ev.SilenceURL(); s != "" {
		links = append(links, event.Link{Label: "Silence", URL: s})
	}
	return links
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}
