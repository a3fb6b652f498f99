package rag

import (
	"fmt"
	"sort"
	"strings"

	"github.com/medichq/medic/event"
)

// EstimateTokens is a conservative token count for budgeting: about four
// bytes per token for English and logs, rounded up.
func EstimateTokens(s string) int { return (len(s) + 3) / 4 }

// The answer's sections, in order. The system prompt asks for them as
// markdown H2 headings; ParseSections finds them again.
var answerSections = []string{"What is happening", "Likely causes", "What to check", "How to fix"}

const findingSystemPrompt = `You are medic, an assistant for engineers on call for Kubernetes clusters.
Explain the alert below to the engineer, grounded in the evidence and the numbered runbook excerpts.
Answer in markdown with exactly these four sections, as level-2 headings, in this order:
## What is happening
## Likely causes
## What to check
## How to fix
Be brief and concrete: name the objects, commands and metrics involved. Cite runbook excerpts with their
numbers in square brackets, like [1], right after the sentences they support; cite only numbers given below.
If the evidence is not enough to tell, say so. Never suggest a command that deletes data without saying so.
Some values were replaced by [REDACTED] before you saw them; do not guess them.`

const questionSystemPrompt = `You are medic, an assistant for engineers on call for Kubernetes clusters.
Answer the question using the numbered excerpts from the team's runbooks. Cite them with their numbers in
square brackets, like [1], right after the sentences they support; cite only numbers given below. If the
excerpts do not answer the question, say so and answer from general knowledge, marked as such.
Some values were replaced by [REDACTED] before you saw them; do not guess them.`

// Citation is a numbered source given to the model.
type Citation struct {
	N       int    `json:"n"`
	Root    string `json:"root,omitempty"`
	Source  string `json:"source"`
	Title   string `json:"title"`
	Heading string `json:"heading,omitempty"`
	URL     string `json:"url,omitempty"`
	Direct  bool   `json:"direct,omitempty"`
}

// Label is how a citation is shown: "[1] Kube Pod Crash Looping — Diagnosis".
func (c Citation) Label() string {
	s := fmt.Sprintf("[%d] %s", c.N, c.Title)
	if c.Heading != "" {
		s += " — " + c.Heading
	}
	return s
}

// prompt is what goes to the model, before redaction.
type prompt struct {
	messages  []Message
	citations []Citation
	trimmed   bool
}

// budgetPart is one section of the user message with its share of the
// budget. Parts are filled in order; each first gets up to its share, then
// what is left goes to them in order.
type budgetPart struct {
	title string
	text  string
	share float64
	tail  bool // keep the end (logs), not the start
}

// buildFindingPrompt renders a finding and its runbook hits within budget
// tokens (system prompt included).
func buildFindingPrompt(f *event.Finding, hits []Hit, budget int) prompt {
	ev := &f.Event
	var head strings.Builder
	fmt.Fprintf(&head, "Title: %s\n", f.Title)
	if f.Description != "" && f.Description != f.Title {
		fmt.Fprintf(&head, "Description: %s\n", f.Description)
	}
	fmt.Fprintf(&head, "Severity: %s\nStatus: %s\n", f.Severity, ev.Status)
	if ev.Kind != "" {
		fmt.Fprintf(&head, "Kind: %s\n", ev.Kind)
	}
	if !ev.Subject.IsZero() {
		fmt.Fprintf(&head, "Subject: %s", ev.Subject.String())
		if ev.Subject.Container != "" {
			fmt.Fprintf(&head, " container %s", ev.Subject.Container)
		}
		if ev.Subject.Node != "" {
			fmt.Fprintf(&head, " on node %s", ev.Subject.Node)
		}
		head.WriteString("\n")
	}
	if len(ev.Labels) > 0 {
		head.WriteString("Labels:\n")
		for _, k := range sortedKeys(ev.Labels) {
			fmt.Fprintf(&head, "  %s=%s\n", k, ev.Labels[k])
		}
	}
	if len(ev.Annotations) > 0 {
		head.WriteString("Annotations:\n")
		for _, k := range sortedKeys(ev.Annotations) {
			fmt.Fprintf(&head, "  %s: %s\n", k, ev.Annotations[k])
		}
	}

	var logs, events, other strings.Builder
	for _, e := range f.Enrichments {
		if e.Source == "ask_ai" || e.Source == "runbook_enricher" {
			continue // our own output: not evidence
		}
		for _, b := range e.Blocks {
			switch b.Kind {
			case event.BlockLog:
				if b.Log == nil {
					continue
				}
				fmt.Fprintf(&logs, "--- %s (%s)\n%s\n", e.Title, b.Log.Source, strings.TrimRight(b.Log.Text, "\n"))
			case event.BlockTable:
				dst := &other
				if strings.Contains(strings.ToLower(e.Title), "event") {
					dst = &events
				}
				fmt.Fprintf(dst, "--- %s\n%s", e.Title, renderTable(b.Table))
			case event.BlockMarkdown:
				fmt.Fprintf(&other, "--- %s\n%s\n", e.Title, strings.TrimSpace(b.Markdown))
			case event.BlockLinks:
				// links are for humans
			}
		}
	}

	p := prompt{}
	sys := findingSystemPrompt
	budget -= EstimateTokens(sys) + 16
	parts := []budgetPart{
		{title: "Alert", text: head.String(), share: 0.25},
		{title: "Runbook excerpts", share: 0.35},
		{title: "Status and investigation", text: other.String(), share: 0.15},
		{title: "Kubernetes events", text: events.String(), share: 0.10},
		{title: "Logs (last lines)", text: logs.String(), share: 0.15, tail: true},
	}
	body, cites, trimmed := fillBudget(parts, hits, budget)
	p.trimmed = trimmed
	p.citations = cites
	p.messages = []Message{{Role: "system", Content: sys}, {Role: "user", Content: body}}
	return p
}

// buildQuestionPrompt renders a question and its hits within budget tokens.
func buildQuestionPrompt(question string, hits []Hit, budget int) prompt {
	sys := questionSystemPrompt
	budget -= EstimateTokens(sys) + 16
	parts := []budgetPart{
		{title: "Question", text: question + "\n", share: 0.3},
		{title: "Runbook excerpts", share: 0.7},
	}
	body, cites, trimmed := fillBudget(parts, hits, budget)
	return prompt{
		messages:  []Message{{Role: "system", Content: sys}, {Role: "user", Content: body}},
		citations: cites,
		trimmed:   trimmed,
	}
}

// fillBudget renders the parts in order; the part titled "Runbook excerpts"
// is filled with whole hits (numbered) while they fit.
func fillBudget(parts []budgetPart, hits []Hit, budget int) (string, []Citation, bool) {
	hits = MergeBySource(hits)
	budget = max(budget, 64)
	limitChars := func(tokens int) int { return tokens * 4 }
	// First pass: what each part wants, capped at its share.
	want := make([]int, len(parts))
	hitTexts := make([]string, len(hits))
	for i, h := range hits {
		hitTexts[i] = renderHit(i+1, h)
	}
	for i, p := range parts {
		if p.title == "Runbook excerpts" {
			for _, t := range hitTexts {
				want[i] += len(t)
			}
		} else {
			want[i] = len(p.text)
		}
	}
	alloc := make([]int, len(parts))
	// Section headings and cut marks take a little room too.
	room := max(limitChars(budget)-24*len(parts), 0)
	left := room
	for i, p := range parts {
		alloc[i] = min(want[i], int(float64(room)*p.share))
		left -= alloc[i]
	}
	// Second pass: the rest, in order.
	for i := range parts {
		if left <= 0 {
			break
		}
		more := min(want[i]-alloc[i], left)
		alloc[i] += more
		left -= more
	}
	trimmed := false
	var b strings.Builder
	var cites []Citation
	for i, p := range parts {
		if want[i] == 0 {
			continue
		}
		if p.title == "Runbook excerpts" {
			room := alloc[i]
			var sec strings.Builder
			for j, t := range hitTexts {
				if len(t) > room {
					// A long excerpt is cut rather than dropped when it is the first.
					if j == 0 && room > 200 {
						t = t[:room] + "…\n"
					} else {
						trimmed = true
						break
					}
				}
				sec.WriteString(t)
				room -= len(t)
				h := hits[j]
				cites = append(cites, Citation{N: j + 1, Root: h.Root, Source: h.Source, Title: h.Title, Heading: h.Heading, URL: h.URL, Direct: h.Direct})
			}
			if sec.Len() > 0 {
				b.WriteString("## " + p.title + "\n" + sec.String() + "\n")
			}
			continue
		}
		text := p.text
		if len(text) > alloc[i] {
			trimmed = true
			if p.tail {
				text = "…" + text[len(text)-alloc[i]:]
			} else {
				text = text[:alloc[i]] + "…\n"
			}
		}
		if strings.TrimSpace(text) != "" {
			b.WriteString("## " + p.title + "\n" + text + "\n")
		}
	}
	return strings.ToValidUTF8(b.String(), ""), cites, trimmed
}

// MergeBySource folds the hits of one source (the linked runbook's sections)
// into its first hit, so that a runbook is one numbered excerpt and one
// citation: the sections' texts follow each other under their headings.
func MergeBySource(hits []Hit) []Hit {
	at := map[string]int{}
	var out []Hit
	for _, h := range hits {
		k := sourceKey(h.Root, h.Source)
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, h)
			continue
		}
		m := &out[i]
		if h.Heading != "" && h.Heading != m.Heading {
			if m.Heading == "" {
				m.Heading = h.Heading
			} else {
				m.Heading += "; " + h.Heading
			}
			m.Text = strings.TrimSpace(m.Text) + "\n\n" + h.Heading + ":\n" + strings.TrimSpace(h.Text)
		} else {
			m.Text = strings.TrimSpace(m.Text) + "\n\n" + strings.TrimSpace(h.Text)
		}
	}
	return out
}

func renderHit(n int, h Hit) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%d] %s", n, h.Title)
	if h.Heading != "" {
		fmt.Fprintf(&b, " — %s", h.Heading)
	}
	fmt.Fprintf(&b, " (%s)\n%s\n\n", h.Source, strings.TrimSpace(h.Text))
	return b.String()
}

func renderTable(t *event.TableBlock) string {
	if t == nil {
		return ""
	}
	var b strings.Builder
	if len(t.Headers) > 0 {
		b.WriteString(strings.Join(t.Headers, " | ") + "\n")
	}
	for _, r := range t.Rows {
		if len(t.Headers) == 0 && len(r) == 2 {
			b.WriteString(r[0] + ": " + r[1] + "\n")
			continue
		}
		b.WriteString(strings.Join(r, " | ") + "\n")
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Section is one titled part of an answer.
type Section struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// ParseSections finds the four answer sections (as markdown headings, bold
// lines or "Title:" lines). It returns nil when the model did not follow the
// format, so callers show the text as it came.
func ParseSections(text string) []Section {
	var out []Section
	var cur *Section
	var body strings.Builder
	flush := func() {
		if cur != nil {
			cur.Text = strings.TrimSpace(body.String())
			out = append(out, *cur)
		}
		body.Reset()
	}
	for line := range strings.SplitSeq(text, "\n") {
		if t, rest := sectionTitle(line); t != "" {
			flush()
			cur = &Section{Title: t}
			if rest != "" {
				body.WriteString(rest + "\n")
			}
			continue
		}
		if cur != nil {
			body.WriteString(line + "\n")
		}
	}
	flush()
	if len(out) < 2 {
		return nil
	}
	return out
}

// sectionTitle recognises "## Title", "**Title**", "Title:" and
// "**Title:** text on the same line"; rest is that text.
func sectionTitle(line string) (title, rest string) {
	l := strings.TrimSpace(line)
	l = strings.TrimSpace(strings.TrimLeft(l, "#"))
	for _, s := range answerSections {
		for _, form := range []string{"**" + s + ":**", "**" + s + "**:", "**" + s + "?**", "**" + s + "**", s + ":", s + "?", s} {
			if len(l) >= len(form) && strings.EqualFold(l[:len(form)], form) {
				after := strings.TrimSpace(l[len(form):])
				if form == s && after != "" {
					continue // a sentence that starts with the words
				}
				return s, after
			}
		}
	}
	return "", ""
}
