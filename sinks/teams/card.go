package teams

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strings"
	"unicode/utf8"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks/chatfmt"
)

// Adaptive Card limits medic keeps to. Teams refuses a card over about
// 28 KB; each text is bounded too so one enrichment cannot eat the card.
const (
	DefaultMaxCardBytes = 28000
	maxText             = 3000
	maxFacts            = 30
	maxTableRows        = 20
	maxTitle            = 200
)

// Element is one Adaptive Card element. Maps marshal with sorted keys, so
// the same finding gives the same bytes.
type Element = map[string]any

// CardOptions shape a card.
type CardOptions struct {
	Cluster string
	// PageURL is medic's signed page for the finding: the Ask AI button
	// and the "more on the finding page" notes link to it ("" for none).
	PageURL        string
	InlineLogLines int
	MaxCardBytes   int
}

// Message wraps a card the way Teams webhooks take it (Workflows'
// "post a card when a webhook request is received" and incoming
// webhooks alike).
func Message(card Element) Element {
	return Element{
		"type": "message",
		"attachments": []any{Element{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content":     card,
		}},
	}
}

// Card renders a finding as an Adaptive Card (schema 1.5) whose JSON stays
// within o.MaxCardBytes: enrichments that do not fit are shortened, then
// left out with a visible "…truncated" note pointing at the finding page.
func Card(f *event.Finding, o CardOptions) Element {
	if o.MaxCardBytes <= 0 {
		o.MaxCardBytes = DefaultMaxCardBytes
	}
	if o.InlineLogLines <= 0 {
		o.InlineLogLines = 15
	}
	shown := map[string]bool{}
	body := head(f, o, shown)
	card := Element{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.5",
		"msteams": Element{"width": "Full"},
		"body":    body,
		"actions": actions(f, o),
	}
	// The head alone too big (a huge description): cut texts until it fits.
	for limit := maxText; size(card) > o.MaxCardBytes-300 && limit > 100; limit /= 2 {
		body = shrinkTexts(body, limit)
		card["body"] = body
	}
	// What was redacted follows the rest, or the note that cut it: its
	// room is kept first.
	var pinned []any
	for i := range f.Enrichments {
		if e := &f.Enrichments[i]; e.Source == event.RedactionSource {
			if el := enrichment(e, f, o, shown, true); el != nil {
				pinned = append(pinned, el)
			}
		}
	}
	noteRoom := 400
	if len(pinned) > 0 {
		noteRoom += size(pinned)
	}
	enrichments := f.WithoutRedaction()
	for i := range enrichments {
		e := &enrichments[i]
		full := enrichment(e, f, o, shown, false)
		if full == nil {
			continue
		}
		card["body"] = append(body, full)
		if size(card) <= o.MaxCardBytes-noteRoom {
			body = append(body, full)
			continue
		}
		short := enrichment(e, f, o, shown, true)
		card["body"] = append(body, short)
		if size(card) <= o.MaxCardBytes-noteRoom {
			body = append(body, short)
			continue
		}
		n := len(enrichments) - i
		note := fmt.Sprintf("…truncated: %d more %s did not fit in Teams", n, plural(n, "section", "sections"))
		if o.PageURL != "" {
			note += fmt.Sprintf(" — [see them on the finding page](%s)", o.PageURL)
		}
		body = append(body, text(note, Element{"isSubtle": true, "separator": true}))
		break
	}
	body = append(body, pinned...)
	card["body"] = body
	return card
}

func size(v any) int {
	b, _ := json.Marshal(v)
	return len(b)
}

func head(f *event.Finding, o CardOptions, shown map[string]bool) []any {
	style := "attention"
	switch {
	case chatfmt.Resolved(f):
		style = "good"
	case f.Severity == event.SeverityWarning:
		style = "warning"
	case f.Severity == event.SeverityInfo || f.Severity == event.SeverityNone || f.Severity == "":
		style = "accent"
	}
	title := oneLine(f.Title)
	if title == "" {
		title = "(untitled finding)"
	}
	header := Element{
		"type": "Container", "style": style, "bleed": true,
		"items": []any{
			text(fmt.Sprintf("%s · %s", chatfmt.Status(f), oneLine(chatfmt.Severity(f))), Element{"weight": "Bolder", "size": "Small"}),
			text(truncate(title, maxTitle), Element{"weight": "Bolder", "size": "Large"}),
		},
	}
	body := []any{header}
	var facts []any
	for _, fact := range chatfmt.Subject(f, o.Cluster) {
		facts = append(facts, Element{"title": fact.Name, "value": plainText(truncate(oneLine(fact.Value), 300))})
	}
	if chatfmt.Resolved(f) {
		if d, ok := chatfmt.ResolvedAfter(f); ok {
			facts = append(facts, Element{"title": "Resolved after", "value": chatfmt.Duration(d)})
		}
	}
	if len(facts) > 0 {
		body = append(body, Element{"type": "FactSet", "facts": facts})
	}
	if d := strings.TrimSpace(f.Description); d != "" && d != strings.TrimSpace(f.Title) {
		body = append(body, text(truncateNote(markdown(d), maxText), nil))
	}
	var labels []any
	for i, l := range chatfmt.ExtraLabels(&f.Event) {
		if i == maxFacts {
			n := len(chatfmt.ExtraLabels(&f.Event)) - i
			labels = append(labels, Element{"title": "…", "value": fmt.Sprintf("truncated: %d more labels", n)})
			break
		}
		labels = append(labels, Element{"title": plainText(truncate(oneLine(l.Name), 100)), "value": plainText(truncate(oneLine(l.Value), 300))})
	}
	if len(labels) > 0 {
		body = append(body, Element{"type": "FactSet", "facts": labels, "spacing": "Small"})
	}
	for _, l := range chatfmt.AlertLinks(&f.Event) {
		shown[l.URL] = true
	}
	meta := "finding " + f.ID
	if len(f.Playbooks) > 0 {
		meta += " · playbooks " + strings.Join(f.Playbooks, ", ")
	}
	body = append(body, text(plainText(truncate(oneLine(meta), 400)), Element{"isSubtle": true, "size": "Small", "spacing": "Small"}))
	return body
}

// actions are the card's buttons. Teams webhooks cannot call medic back,
// so every button opens a page: medic's finding page (with its Ask AI
// button), Alertmanager's silence page, the runbook, the graph.
func actions(f *event.Finding, o CardOptions) []any {
	var out []any
	open := func(title, url string) {
		if url != "" {
			out = append(out, Element{"type": "Action.OpenUrl", "title": title, "url": url})
		}
	}
	open("🤖 Ask AI", o.PageURL)
	for _, l := range chatfmt.AlertLinks(&f.Event) {
		switch l.Label {
		case "Silence":
			if !chatfmt.Resolved(f) {
				open("🔕 Silence", l.URL)
			}
		case "Runbook":
			open("📖 Runbook", l.URL)
		case "Graph":
			open("📈 Graph", l.URL)
		}
	}
	if out == nil {
		return []any{}
	}
	return out
}

// enrichment renders one enrichment as a container; short keeps it small
// for a card that is nearly full. It returns nil for nothing to show.
func enrichment(e *event.Enrichment, f *event.Finding, o CardOptions, shown map[string]bool, short bool) Element {
	textLimit, rows, logLines := maxText, maxTableRows, o.InlineLogLines
	if short {
		textLimit, rows, logLines = 400, 5, min(5, o.InlineLogLines)
	}
	title := oneLine(e.Title)
	if title == "" {
		title = oneLine(e.Source)
	}
	if e.Collapsed && len(e.Blocks) > 1 && e.Blocks[0].Kind == event.BlockMarkdown {
		return collapsed(e, title, f, o, shown, short)
	}
	var items []any
	if title != "" {
		items = append(items, text(plainText(truncate(title, maxTitle)), Element{"weight": "Bolder"}))
	}
	for i := range e.Blocks {
		b := &e.Blocks[i]
		switch b.Kind {
		case event.BlockMarkdown:
			if strings.TrimSpace(b.Markdown) != "" {
				items = append(items, text(truncateNote(markdown(b.Markdown), textLimit), nil))
			}
		case event.BlockTable:
			switch {
			case b.Table == nil:
				items = append(items, subtle("[empty table block]"))
			case chatfmt.RepeatsLabels(b.Table, &f.Event):
			case chatfmt.IsKeyValue(b.Table):
				items = append(items, factSet(b.Table, rows)...)
			default:
				items = append(items, table(b.Table, rows)...)
			}
		case event.BlockLog:
			if b.Log == nil {
				items = append(items, subtle("[empty log block]"))
				continue
			}
			items = append(items, logItems(b.Log, logLines, textLimit, o.PageURL)...)
		case event.BlockLinks:
			if len(b.Links) == 0 {
				items = append(items, subtle("[empty links block]"))
				continue
			}
			var parts []string
			for _, l := range chatfmt.RemainingLinks(b.Links, shown) {
				if !chatfmt.IsWebURL(l.URL) {
					parts = append(parts, plainText(oneLine(l.Label))+": "+plainText(oneLine(l.URL)))
					continue
				}
				shown[l.URL] = true
				parts = append(parts, mdLink(firstNonEmpty(l.Label, l.URL), l.URL))
			}
			if len(parts) > 0 {
				items = append(items, text(truncate(strings.Join(parts, " · "), textLimit), nil))
			}
		case event.BlockImage:
			if b.Image == nil {
				items = append(items, subtle("[empty image block]"))
				continue
			}
			msg := fmt.Sprintf("📈 %s (%s) is not shown in Teams", plainText(oneLine(firstNonEmpty(b.Image.Name, "image"))), chatfmt.Bytes(len(b.Image.PNG)))
			if o.PageURL != "" {
				msg += fmt.Sprintf(" — [see it on the finding page](%s)", o.PageURL)
			}
			items = append(items, subtle(msg))
		default:
			items = append(items, subtle(fmt.Sprintf("[unsupported block kind %q]", oneLine(string(b.Kind)))))
		}
	}
	if len(items) == 0 || (title != "" && len(items) == 1 && len(e.Blocks) > 0) {
		return nil // everything it had is shown elsewhere
	}
	return Element{"type": "Container", "separator": true, "spacing": "Medium", "items": items}
}

// collapsed renders a Collapsed enrichment: its title and summary (the
// first block), and the rest in a hidden container that a "Show details"
// toggle opens, so the detail is in the card without taking its room.
func collapsed(e *event.Enrichment, title string, f *event.Finding, o CardOptions, shown map[string]bool, short bool) Element {
	id := fmt.Sprintf("medic-details-%08x", crc32.ChecksumIEEE([]byte(e.Source+"\x00"+e.Title)))
	items := []any{
		text(plainText(truncate(title, maxTitle)), Element{"weight": "Bolder"}),
		text(truncateNote(markdown(e.Blocks[0].Markdown), maxText), nil),
	}
	rest := event.Enrichment{Title: "", Source: "", Blocks: e.Blocks[1:]}
	if short {
		return Element{"type": "Container", "separator": true, "spacing": "Medium", "items": items}
	}
	if details := enrichment(&rest, f, o, shown, short); details != nil {
		details["id"], details["isVisible"], details["separator"] = id, false, false
		items = append(items, details, Element{"type": "ActionSet", "actions": []any{Element{
			"type": "Action.ToggleVisibility", "title": "Show details", "targetElements": []any{id},
		}}})
	}
	return Element{"type": "Container", "separator": true, "spacing": "Medium", "items": items}
}

func factSet(t *event.TableBlock, rows int) []any {
	var facts []any
	for i, r := range t.Rows {
		if i == rows {
			break
		}
		facts = append(facts, Element{"title": plainText(truncate(oneLine(cell(r, 0)), 100)), "value": plainText(truncate(oneLine(cell(r, 1)), 500))})
	}
	out := []any{Element{"type": "FactSet", "facts": facts}}
	if len(t.Rows) == 0 {
		return []any{subtle("(no rows)")}
	}
	if n := len(t.Rows) - rows; n > 0 {
		out = append(out, subtle(fmt.Sprintf("…truncated: %d more %s", n, plural(n, "row", "rows"))))
	}
	return out
}

// table renders a table with headers as an Adaptive Card 1.5 Table.
func table(t *event.TableBlock, rows int) []any {
	cols := len(t.Headers)
	for _, r := range t.Rows {
		cols = max(cols, len(r))
	}
	if cols == 0 {
		return []any{subtle("(empty table)")}
	}
	columns := make([]any, cols)
	for i := range columns {
		columns[i] = Element{"width": 1}
	}
	row := func(cells []string, bold bool) Element {
		out := make([]any, cols)
		for i := range cols {
			c := plainText(truncate(oneLine(cell(cells, i)), 120))
			if c == "" {
				c = " " // a TextBlock needs text
			}
			tb := text(c, nil)
			if bold {
				tb["weight"] = "Bolder"
			}
			out[i] = Element{"type": "TableCell", "items": []any{tb}}
		}
		return Element{"type": "TableRow", "cells": out}
	}
	var trs []any
	if len(t.Headers) > 0 {
		trs = append(trs, row(t.Headers, true))
	}
	for i, r := range t.Rows {
		if i == rows {
			break
		}
		trs = append(trs, row(r, false))
	}
	out := []any{Element{"type": "Table", "columns": columns, "rows": trs, "firstRowAsHeader": len(t.Headers) > 0, "gridStyle": "default"}}
	if len(t.Rows) == 0 {
		out = append(out, subtle("(no rows)"))
	}
	if n := len(t.Rows) - rows; n > 0 {
		out = append(out, subtle(fmt.Sprintf("…truncated: %d more %s", n, plural(n, "row", "rows"))))
	}
	return out
}

func logItems(l *event.LogBlock, lines, limit int, page string) []any {
	var out []any
	if src := oneLine(l.Source); src != "" {
		out = append(out, subtle(plainText(src)))
	}
	txt := strings.TrimRight(clean(l.Text), "\n")
	if txt == "" {
		return append(out, subtle("(empty log)"))
	}
	total := chatfmt.CountLines(txt)
	tail, _ := chatfmt.LastLines(txt, lines)
	if len(tail) > limit { // keep the end
		tail = "…" + tail[len(tail)-limit:]
		for !utf8.ValidString(tail) {
			tail = "…" + tail[4:]
		}
	}
	out = append(out, text(tail, Element{"fontType": "Monospace", "size": "Small"}))
	if shownLines := chatfmt.CountLines(tail); shownLines < total || l.Truncated {
		note := fmt.Sprintf("…truncated: last %d of %d lines", min(shownLines, total), total)
		if page != "" {
			note += fmt.Sprintf(" — [the whole log is on the finding page](%s)", page)
		}
		out = append(out, subtle(note))
	}
	return out
}

func text(s string, extra Element) Element {
	e := Element{"type": "TextBlock", "text": s, "wrap": true}
	for k, v := range extra {
		e[k] = v
	}
	return e
}

func subtle(s string) Element {
	return text(s, Element{"isSubtle": true, "size": "Small"})
}

// shrinkTexts cuts every TextBlock text in the head to limit characters.
func shrinkTexts(items []any, limit int) []any {
	for _, it := range items {
		e, ok := it.(Element)
		if !ok {
			continue
		}
		if e["type"] == "TextBlock" {
			if s, ok := e["text"].(string); ok {
				e["text"] = truncateNote(s, limit)
			}
		}
		if sub, ok := e["items"].([]any); ok {
			shrinkTexts(sub, limit)
		}
	}
	return items
}

func cell(row []string, i int) string {
	if i < len(row) {
		return row[i]
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}
