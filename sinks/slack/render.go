package slack

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	goslack "github.com/slack-go/slack"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks/chatfmt"
)

// Action IDs of medic's buttons. Their value is the finding ID and nothing
// else: an opaque reference the interaction handler looks up, never a token
// or anything secret.
const (
	ActionAskAI     = "medic_ask_ai"
	ActionSilence1h = "medic_silence_1h"
	ActionSilence4h = "medic_silence_4h"
	ActionMoreLogs  = "medic_more_logs"
	// ActionApprovePrefix + a proposal's ID is the Approve button of a
	// proposed remediation (event.ProposedAction); its value is the
	// finding ID, like the others.
	ActionApprovePrefix = "medic_approve."
	// ActionsBlockID is the block_id of the buttons' actions block.
	ActionsBlockID = "medic_actions"
)

// Button names accepted by the sink's buttons parameter.
const (
	ButtonAskAI    = "ask_ai"
	ButtonSilence  = "silence"
	ButtonMoreLogs = "more_logs"
)

// Message is one Slack message: the notification text and the blocks.
type Message struct {
	Text   string          `json:"text"`
	Blocks []goslack.Block `json:"blocks"`
}

// Upload is a file posted in the finding's thread (files upload v2).
type Upload struct {
	Name    string `json:"name"`
	Title   string `json:"title"`
	Content []byte `json:"-"`
}

// Rendered is what one finding becomes in Slack: the message, the
// messages that continue it in its thread when it is too long for one, and
// the files attached in the thread (whole logs, graphs).
type Rendered struct {
	Main    Message   `json:"main"`
	Thread  []Message `json:"thread,omitempty"`
	Uploads []Upload  `json:"uploads,omitempty"`
}

// RenderOptions shape a rendering.
type RenderOptions struct {
	// Cluster is medic's cluster_name.
	Cluster string
	// Buttons lists the buttons to offer (ask_ai, silence, more_logs).
	Buttons []string
	// PageURL links to medic's page for the finding ("" for none).
	PageURL string
	// InlineLogLines is how many last lines of a log are shown inline.
	InlineLogLines int
	// Uploads attaches whole logs and graphs as files in the thread.
	Uploads bool
	// MaxThreadMessages bounds the messages that continue a long finding.
	MaxThreadMessages int
}

// DefaultRenderOptions are the options the sink's defaults amount to.
func DefaultRenderOptions() RenderOptions {
	return RenderOptions{
		Buttons:           []string{ButtonAskAI, ButtonSilence, ButtonMoreLogs},
		InlineLogLines:    15,
		Uploads:           true,
		MaxThreadMessages: 4,
	}
}

// Render turns a finding into Slack messages within Slack's limits. It
// depends only on f and o: the same finding renders to the same blocks.
func Render(f *event.Finding, o RenderOptions) Rendered {
	if o.InlineLogLines <= 0 {
		o.InlineLogLines = 15
	}
	r := &renderer{f: f, o: o, shown: map[string]bool{}}
	return r.render()
}

type renderer struct {
	f       *event.Finding
	o       RenderOptions
	shown   map[string]bool // URLs already linked
	uploads []Upload
}

// chunk is the blocks of one enrichment, kept together when paging.
type chunk struct {
	blocks []goslack.Block
	chars  int
}

func (r *renderer) render() Rendered {
	f := r.f
	head := r.head()
	var chunks []chunk
	var pinned []goslack.Block // what was redacted: in the main message whatever moves to the thread
	for i := range f.Enrichments {
		e := &f.Enrichments[i]
		if bs := r.enrichment(e); len(bs) > 0 {
			if e.Source == event.RedactionSource && len(bs) <= 3 {
				pinned = append(pinned, bs...)
				continue
			}
			chunks = append(chunks, chunk{blocks: bs, chars: blocksChars(bs)})
		}
	}
	actions := r.actions()
	text := truncate(fmt.Sprintf("%s %s: %s", statusEmoji(f), chatfmt.Status(f), oneLine(f.Title)), MaxFallbackText)

	// The main message: head, as many enrichments as fit, a note when the
	// rest continues in the thread, the buttons.
	reserve := 1 + len(pinned) // the note
	if actions != nil {
		reserve++
	}
	main := append([]goslack.Block(nil), head...)
	chars := blocksChars(main) + blocksChars(optional(actions)) + blocksChars(pinned)
	i := 0
	for ; i < len(chunks); i++ {
		c := chunks[i]
		if len(main)+len(c.blocks)+reserve > MaxBlocks || chars+c.chars > MaxMessageChars {
			break
		}
		main = append(main, c.blocks...)
		chars += c.chars
	}
	out := Rendered{}
	rest := chunks[i:]
	// An enrichment too big for a message of its own is cut to fit one.
	for j := range rest {
		if len(rest[j].blocks) > MaxBlocks-2 {
			rest[j].blocks = append(rest[j].blocks[:MaxBlocks-3:MaxBlocks-3],
				contextBlock("…truncated: this section is too long for Slack"))
		}
	}
	var thread []Message
	for len(rest) > 0 && len(thread) < r.o.MaxThreadMessages {
		msg := []goslack.Block{contextBlock(fmt.Sprintf("_%s continued (%d)_", escape(truncate(oneLine(f.Title), 200)), len(thread)+1))}
		c := blocksChars(msg)
		n := 0
		for ; n < len(rest); n++ {
			if len(msg)+len(rest[n].blocks)+1 > MaxBlocks || c+rest[n].chars > MaxMessageChars {
				break
			}
			msg = append(msg, rest[n].blocks...)
			c += rest[n].chars
		}
		rest = rest[n:]
		thread = append(thread, Message{Text: fallbackText(text), Blocks: msg})
	}
	if len(rest) > 0 {
		note := contextBlock(fmt.Sprintf("…truncated: %d more %s not shown in Slack%s", len(rest), plural(len(rest), "section", "sections"), r.pageHint()))
		if len(thread) > 0 {
			thread[len(thread)-1].Blocks = append(thread[len(thread)-1].Blocks, note)
		} else {
			main = append(main, note)
		}
	}
	main = append(main, pinned...)
	if len(thread) > 0 {
		n := len(chunks) - i
		main = append(main, contextBlock(fmt.Sprintf("…truncated: %d more %s continue in the thread", n, plural(n, "section", "sections"))))
	}
	if actions != nil {
		main = append(main, actions)
	}
	out.Main = Message{Text: fallbackText(text), Blocks: main}
	out.Thread = thread
	out.Uploads = r.uploads
	return out
}

func (r *renderer) pageHint() string {
	if r.o.PageURL != "" {
		return " (" + link(r.o.PageURL, "the whole finding in medic") + ")"
	}
	return ""
}

// head is the header, the subject, the description, the labels and links.
func (r *renderer) head() []goslack.Block {
	f := r.f
	var blocks []goslack.Block
	title := oneLine(f.Title)
	if title == "" {
		title = "(untitled finding)"
	}
	header := fmt.Sprintf("%s %s · %s · %s", statusEmoji(f), chatfmt.Status(f), oneLine(chatfmt.Severity(f)), title)
	blocks = append(blocks, goslack.NewHeaderBlock(plain(truncate(header, MaxHeaderText))))

	var fields []*goslack.TextBlockObject
	for _, fact := range chatfmt.Subject(f, r.o.Cluster) {
		if len(fields) == MaxFields {
			break
		}
		fields = append(fields, mrk(truncate("*"+escape(fact.Name)+"*\n"+escape(oneLine(fact.Value)), MaxFieldText)))
	}
	if chatfmt.Resolved(f) {
		if d, ok := chatfmt.ResolvedAfter(f); ok && len(fields) < MaxFields {
			fields = append(fields, mrk("*Resolved after*\n"+chatfmt.Duration(d)))
		}
	}
	if len(fields) > 0 {
		blocks = append(blocks, &goslack.SectionBlock{Type: goslack.MBTSection, Fields: fields})
	}

	if d := strings.TrimSpace(f.Description); d != "" && d != strings.TrimSpace(f.Title) {
		for _, part := range splitText(mrkdwn(d), MaxSectionText, 2) {
			blocks = append(blocks, section(part))
		}
	}

	labels := chatfmt.ExtraLabels(&f.Event)
	const maxLabelSections = 2
	for i := 0; i < len(labels) && i < maxLabelSections*MaxFields; i += MaxFields {
		var lf []*goslack.TextBlockObject
		for _, l := range labels[i:min(i+MaxFields, len(labels))] {
			lf = append(lf, mrk(truncate("*"+escape(oneLine(l.Name))+":* "+escape(oneLine(l.Value)), MaxFieldText)))
		}
		blocks = append(blocks, &goslack.SectionBlock{Type: goslack.MBTSection, Fields: lf})
	}
	if n := len(labels) - maxLabelSections*MaxFields; n > 0 {
		blocks = append(blocks, contextBlock(fmt.Sprintf("…truncated: %d more %s", n, plural(n, "label", "labels"))))
	}

	var links []string
	for _, l := range chatfmt.AlertLinks(&f.Event) {
		r.shown[l.URL] = true
		links = append(links, linkEmoji(l.Label)+" "+link(l.URL, l.Label))
	}
	if r.o.PageURL != "" {
		links = append(links, "🔎 "+link(r.o.PageURL, "Open in medic"))
	}
	meta := "finding `" + escape(oneLine(f.ID)) + "`"
	if len(f.Playbooks) > 0 {
		meta += " · playbooks " + escape(truncate(oneLine(strings.Join(f.Playbooks, ", ")), 300))
	}
	if len(links) > 0 {
		blocks = append(blocks, contextBlock(truncate(strings.Join(links, "  ·  "), MaxSectionText)))
	}
	blocks = append(blocks, contextBlock(meta))
	return blocks
}

func linkEmoji(label string) string {
	switch label {
	case "Graph":
		return "📈"
	case "Runbook":
		return "📖"
	case "Silence":
		return "🔕"
	}
	return "🔗"
}

// actions is the buttons block, or nil when no button applies.
func (r *renderer) actions() goslack.Block {
	f := r.f
	var els []goslack.BlockElement
	for _, b := range r.o.Buttons {
		switch b {
		case ButtonAskAI:
			btn := goslack.NewButtonBlockElement(ActionAskAI, f.ID, plain("🤖 Ask AI"))
			btn.Style = goslack.StylePrimary
			els = append(els, btn)
		case ButtonSilence:
			if chatfmt.Silenceable(f) {
				els = append(els,
					goslack.NewButtonBlockElement(ActionSilence1h, f.ID, plain("🔕 Silence 1h")),
					goslack.NewButtonBlockElement(ActionSilence4h, f.ID, plain("🔕 Silence 4h")))
			}
		case ButtonMoreLogs:
			if chatfmt.HasLogs(f) {
				els = append(els, goslack.NewButtonBlockElement(ActionMoreLogs, f.ID, plain("📜 Show more logs")))
			}
		}
	}
	// Proposed remediations: always offered (the playbook asked for them),
	// each behind Slack's confirmation dialog; at most five.
	for _, p := range f.Proposed[:min(len(f.Proposed), 5)] {
		btn := goslack.NewButtonBlockElement(ActionApprovePrefix+p.ID, f.ID, plain(truncate("✅ Approve: "+oneLine(p.Summary), 75)))
		btn.Style = goslack.StyleDanger
		btn.Confirm = goslack.NewConfirmationBlockObject(plain("Run this remediation?"),
			plain(truncate(oneLine(p.Summary), 300)), plain("Run it"), plain("Cancel"))
		els = append(els, btn)
	}
	if len(els) == 0 {
		return nil
	}
	return goslack.NewActionBlock(ActionsBlockID, els...)
}

// enrichment renders one enrichment: its title leads its first section.
func (r *renderer) enrichment(e *event.Enrichment) []goslack.Block {
	title := oneLine(e.Title)
	if title == "" {
		title = oneLine(e.Source)
	}
	er := &enrichmentRenderer{r: r, e: e}
	if title != "" {
		er.title = "*" + escape(truncate(title, 200)) + "*"
	}
	if e.Collapsed && len(e.Blocks) > 1 && e.Blocks[0].Kind == event.BlockMarkdown {
		// Slack has no collapsible section: the summary, and the rest on
		// the finding page.
		line := er.title + ": " + mrkdwn(oneLine(e.Blocks[0].Markdown))
		if er.title == "" {
			line = mrkdwn(oneLine(e.Blocks[0].Markdown))
		}
		return []goslack.Block{contextBlock(truncate(line, MaxSectionText-200) + r.pageHint())}
	}
	for i := range e.Blocks {
		er.block(&e.Blocks[i])
	}
	if er.title != "" && len(e.Blocks) > 0 {
		return nil // everything it had is shown elsewhere (labels, links)
	}
	er.flushTitle()
	return er.out
}

type enrichmentRenderer struct {
	r     *renderer
	e     *event.Enrichment
	title string // not yet shown
	out   []goslack.Block
}

// text adds text as sections (at most maxParts), led by the title.
func (er *enrichmentRenderer) text(s string, maxParts int) {
	if er.title != "" {
		s = er.title + "\n" + s
		er.title = ""
	}
	for _, part := range splitText(s, MaxSectionText, maxParts) {
		er.out = append(er.out, section(part))
	}
}

func (er *enrichmentRenderer) context(s string) {
	er.flushTitle()
	er.out = append(er.out, contextBlock(s))
}

func (er *enrichmentRenderer) flushTitle() {
	if er.title != "" {
		er.out = append(er.out, section(er.title))
		er.title = ""
	}
}

const maxPartsPerBlock = 3

func (er *enrichmentRenderer) block(b *event.Block) {
	switch b.Kind {
	case event.BlockMarkdown:
		if strings.TrimSpace(b.Markdown) == "" {
			return
		}
		er.text(mrkdwn(b.Markdown), maxPartsPerBlock)
	case event.BlockTable:
		if b.Table == nil {
			er.context("[empty table block]")
			return
		}
		if chatfmt.RepeatsLabels(b.Table, &er.r.f.Event) {
			return // the header shows them
		}
		if chatfmt.IsKeyValue(b.Table) {
			er.keyValue(b.Table)
			return
		}
		er.table(b.Table)
	case event.BlockLog:
		if b.Log == nil {
			er.context("[empty log block]")
			return
		}
		er.log(b.Log)
	case event.BlockLinks:
		links := chatfmt.RemainingLinks(b.Links, er.r.shown)
		if len(b.Links) == 0 {
			er.context("[empty links block]")
			return
		}
		var parts []string
		for _, l := range links {
			if !chatfmt.IsWebURL(l.URL) {
				parts = append(parts, escape(oneLine(l.Label))+": "+escape(oneLine(l.URL)))
				continue
			}
			er.r.shown[l.URL] = true
			label := l.Label
			if label == "" {
				label = l.URL
			}
			parts = append(parts, link(l.URL, label))
		}
		if len(parts) > 0 {
			er.text(strings.Join(parts, "  ·  "), 1)
		}
	case event.BlockImage:
		if b.Image == nil {
			er.context("[empty image block]")
			return
		}
		name := fileName(b.Image.Name, er.e.Title, ".png")
		if er.r.o.Uploads && len(b.Image.PNG) > 0 {
			er.r.uploads = append(er.r.uploads, Upload{Name: name, Title: oneLine(firstNonEmpty(er.e.Title, name)), Content: b.Image.PNG})
			er.context(fmt.Sprintf("📈 _%s (%s) is attached in the thread_", escape(name), chatfmt.Bytes(len(b.Image.PNG))))
		} else {
			er.context(fmt.Sprintf("📈 _image %s (%s) not shown in Slack_", escape(name), chatfmt.Bytes(len(b.Image.PNG))))
		}
	default:
		er.context(fmt.Sprintf("[unsupported block kind %q]", escape(oneLine(string(b.Kind)))))
	}
}

// keyValue renders a two-column table as section fields, ten a section.
func (er *enrichmentRenderer) keyValue(t *event.TableBlock) {
	const maxSections = 3
	rows := t.Rows
	if len(rows) == 0 {
		er.text("_(no rows)_", 1)
		return
	}
	for i := 0; i < len(rows) && i < maxSections*MaxFields; i += MaxFields {
		var fields []*goslack.TextBlockObject
		for _, row := range rows[i:min(i+MaxFields, len(rows))] {
			k, v := cell(row, 0), cell(row, 1)
			fields = append(fields, mrk(truncateNote("*"+escape(oneLine(k))+"*\n"+escape(clean(v)), MaxFieldText)))
		}
		s := &goslack.SectionBlock{Type: goslack.MBTSection, Fields: fields}
		if er.title != "" {
			s.Text = mrk(er.title)
			er.title = ""
		}
		er.out = append(er.out, s)
	}
	if n := len(rows) - maxSections*MaxFields; n > 0 {
		er.context(fmt.Sprintf("…truncated: %d more %s", n, plural(n, "row", "rows")))
	}
}

// table renders a table with headers as aligned text in a code block.
func (er *enrichmentRenderer) table(t *event.TableBlock) {
	cols := len(t.Headers)
	for _, row := range t.Rows {
		cols = max(cols, len(row))
	}
	if cols == 0 {
		er.text("_(empty table)_", 1)
		return
	}
	widths := make([]int, cols)
	const maxCell = 60
	cellText := func(row []string, i int) string { return truncate(oneLine(cell(row, i)), maxCell) }
	measure := func(row []string) {
		for i := range cols {
			widths[i] = max(widths[i], utf8.RuneCountInString(cellText(row, i)))
		}
	}
	measure(t.Headers)
	for _, row := range t.Rows {
		measure(row)
	}
	format := func(row []string) string {
		var b strings.Builder
		for i := range cols {
			c := cellText(row, i)
			b.WriteString(c)
			if i < cols-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		return escape(strings.TrimRight(b.String(), " "))
	}
	var lines []string
	if len(t.Headers) > 0 {
		lines = append(lines, format(t.Headers))
		rule := make([]string, cols)
		for i, w := range widths {
			rule[i] = strings.Repeat("─", w)
		}
		lines = append(lines, strings.Join(rule, "  "))
	}
	for _, row := range t.Rows {
		lines = append(lines, format(row))
	}
	if len(t.Rows) == 0 {
		lines = append(lines, "(no rows)")
	}
	er.text("```\n"+strings.Join(lines, "\n")+"\n```", maxPartsPerBlock)
}

// log shows the last lines inline and attaches the whole log as a file.
func (er *enrichmentRenderer) log(l *event.LogBlock) {
	o := er.r.o
	text := strings.TrimRight(clean(l.Text), "\n")
	total := chatfmt.CountLines(text)
	src := truncate(oneLine(l.Source), 300)
	if text == "" {
		er.text(fmt.Sprintf("_%s: (empty log)_", escape(firstNonEmpty(src, "log"))), 1)
		return
	}
	tail, _ := chatfmt.LastLines(text, o.InlineLogLines)
	// Keep the end of the log: drop whole lines from the start until the
	// code block fits one section beside the title and source.
	room := max(MaxSectionText-textLen(er.title)-textLen(escape(src))-40, 200)
	tailLines := strings.Split(tail, "\n")
	for len(tailLines) > 1 && textLen(escape(strings.Join(tailLines, "\n"))) > room {
		tailLines = tailLines[1:]
	}
	shown := escape(strings.Join(tailLines, "\n"))
	if textLen(shown) > room { // one huge line: keep its end
		runes := []rune(shown)
		shown = "…" + string(runes[max(0, len(runes)-room/2):]) // /2: UTF-16 units vs runes
	}
	head := ""
	if src != "" {
		head = "_" + escape(src) + "_\n"
	}
	er.text(head+"```\n"+shown+"\n```", 1)

	var notes []string
	if len(tailLines) < total {
		notes = append(notes, fmt.Sprintf("last %d of %d lines", len(tailLines), total))
	}
	if l.Truncated {
		notes = append(notes, "earlier lines were dropped before medic read the log")
	}
	if len(tailLines) < total || l.Truncated {
		if o.Uploads {
			name := fileName(src, er.e.Title, ".log")
			er.r.uploads = append(er.r.uploads, Upload{Name: name, Title: oneLine(firstNonEmpty(src, er.e.Title, name)), Content: []byte(text + "\n")})
			notes = append(notes, fmt.Sprintf("the whole log (%s) is attached in the thread", chatfmt.Bytes(len(text)+1)))
		}
		er.context("…truncated: " + strings.Join(notes, " · "))
	}
}

func cell(row []string, i int) string {
	if i < len(row) {
		return row[i]
	}
	return ""
}

var fileNameRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fileName makes a safe file name from the first non-empty candidate.
func fileName(name, fallback, ext string) string {
	base := firstNonEmpty(name, fallback, "attachment")
	base = strings.Trim(fileNameRE.ReplaceAllString(base, "-"), "-.")
	base = truncate(strings.TrimSuffix(base, ext), 80)
	base = strings.TrimSuffix(base, "…")
	if base == "" {
		base = "attachment"
	}
	return base + ext
}

func statusEmoji(f *event.Finding) string {
	if chatfmt.Resolved(f) {
		return "✅"
	}
	switch f.Severity {
	case event.SeverityCritical:
		return "🔴"
	case event.SeverityHigh:
		return "🟠"
	case event.SeverityWarning:
		return "🟡"
	case event.SeverityNone:
		return "⚪"
	default:
		return "🔵"
	}
}

func plain(s string) *goslack.TextBlockObject {
	return &goslack.TextBlockObject{Type: goslack.PlainTextType, Text: s}
}

func mrk(s string) *goslack.TextBlockObject {
	return &goslack.TextBlockObject{Type: goslack.MarkdownType, Text: s}
}

func section(s string) *goslack.SectionBlock {
	return &goslack.SectionBlock{Type: goslack.MBTSection, Text: mrk(truncateNote(s, MaxSectionText))}
}

func contextBlock(s string) *goslack.ContextBlock {
	return goslack.NewContextBlock("", mrk(truncate(s, MaxSectionText)))
}

func optional(b goslack.Block) []goslack.Block {
	if b == nil {
		return nil
	}
	return []goslack.Block{b}
}

// blocksChars counts the text of blocks, for the per-message budget.
func blocksChars(bs []goslack.Block) int {
	n := 0
	add := func(t *goslack.TextBlockObject) {
		if t != nil {
			n += textLen(t.Text)
		}
	}
	for _, b := range bs {
		switch b := b.(type) {
		case *goslack.SectionBlock:
			add(b.Text)
			for _, f := range b.Fields {
				add(f)
			}
		case *goslack.HeaderBlock:
			add(b.Text)
		case *goslack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if t, ok := e.(*goslack.TextBlockObject); ok {
					add(t)
				}
			}
		}
	}
	return n
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
