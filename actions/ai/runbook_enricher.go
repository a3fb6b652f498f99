// Package ai holds the knowledge-base and AI actions: runbook_enricher adds
// the runbooks that match a finding, ask_ai explains the finding with a
// model, grounded in those runbooks. Both need nothing at load time, so
// `medic playbooks validate` works without a model or a knowledge base.
package ai

import (
	"context"
	"fmt"
	"strings"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/rag"
)

// RunbookParams are runbook_enricher's parameters.
type RunbookParams struct {
	// TopK is how many runbooks to show (default 3).
	TopK int `yaml:"top_k"`
}

// Validate checks top_k.
func (p *RunbookParams) Validate() error {
	if p.TopK < 1 || p.TopK > 20 {
		return fmt.Errorf("top_k: %d is not between 1 and 20", p.TopK)
	}
	return nil
}

// RunbookTitle and RunbookSource name the enrichment.
const (
	RunbookTitle  = "Runbooks"
	RunbookSource = "runbook_enricher"
	snippetChars  = 300
)

// runbookDeps is what runbook_enricher uses: the knowledge base's search.
type runbookDeps = interface{ Runbooks() *rag.Retriever }

func addRunbookEnricher(r *actions.Registry) {
	actions.Add(r, "runbook_enricher",
		"Add the knowledge-base runbooks for the finding: the one its runbook_url or alert name links to, then the best search hits, with links and excerpts.",
		func() *RunbookParams { return &RunbookParams{TopK: 3} },
		func(p *RunbookParams) (actions.Runner[runbookDeps], error) {
			topK := p.TopK
			return actions.RunFunc[runbookDeps](func(ctx context.Context, deps runbookDeps, f *event.Finding) error {
				return enrichRunbooks(ctx, deps, f, topK)
			}), nil
		})
}

func enrichRunbooks(ctx context.Context, deps runbookDeps, f *event.Finding, topK int) error {
	kb := deps.Runbooks()
	if kb == nil {
		f.Add(event.Enrichment{Title: RunbookTitle, Source: RunbookSource,
			Blocks: []event.Block{event.MarkdownBlock("Knowledge base unavailable: no runbooks searched.")}})
		return nil
	}
	hits, err := kb.ForFinding(ctx, f, topK, 1)
	if err != nil {
		f.Add(event.Enrichment{Title: RunbookTitle, Source: RunbookSource,
			Blocks: []event.Block{event.MarkdownBlock("Knowledge base unavailable: " + err.Error())}})
		return nil
	}
	if len(hits) == 0 {
		f.Add(event.Enrichment{Title: RunbookTitle, Source: RunbookSource,
			Blocks: []event.Block{event.MarkdownBlock("No runbook in the knowledge base matches this finding.")}})
		return nil
	}
	f.Add(RunbookEnrichment(hits))
	return nil
}

// RunbookEnrichment renders hits: links to the runbooks, then a table of
// source, section and excerpt.
func RunbookEnrichment(hits []rag.Hit) event.Enrichment {
	var links []event.Link
	rows := make([][]string, 0, len(hits))
	for _, h := range hits {
		label := h.Title
		if h.Direct {
			label += " (linked by the alert)"
		}
		if h.URL != "" {
			links = append(links, event.Link{Label: label, URL: h.URL})
		}
		section := h.Heading
		if section == "" {
			section = "-"
		}
		rows = append(rows, []string{h.Source, section, snippet(h.Text, snippetChars)})
	}
	blocks := []event.Block{}
	if len(links) > 0 {
		blocks = append(blocks, event.LinksBlock(links...))
	}
	blocks = append(blocks, event.Block{Kind: event.BlockTable, Table: &event.TableBlock{
		Headers: []string{"Source", "Section", "Excerpt"}, Rows: rows,
	}})
	return event.Enrichment{Title: RunbookTitle, Source: RunbookSource, Blocks: blocks}
}

// snippet is the start of a chunk as one line.
func snippet(text string, n int) string {
	s := strings.Join(strings.Fields(text), " ")
	if len(s) <= n {
		return s
	}
	cut := strings.LastIndexByte(s[:n], ' ')
	if cut < n/2 {
		cut = n
	}
	return strings.ToValidUTF8(s[:cut], "") + "…"
}
