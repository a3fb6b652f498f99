package stdout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/medichq/medic/event"
)

// ANSI styles. Only the basic SGR codes, which every terminal understands.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
)

// indent is the left margin of everything under the header line, so the
// header stands out when findings scroll by.
const indent = "  "

// Render writes f as readable text to w in a single Write, so findings
// rendered concurrently to the same writer do not interleave. With color it
// uses ANSI escape codes. The output depends only on f: enrichments, blocks
// and rows are rendered in their order, and no map is iterated.
//
// Text that came from the cluster (titles, log lines, label values) is
// stripped of control characters, so a log line holding escape codes cannot
// repaint or retitle the operator's terminal.
func Render(w io.Writer, f *event.Finding, color bool) error {
	if f == nil {
		return errors.New("render finding: nil finding")
	}
	r := renderer{color: color}
	r.finding(f)
	if _, err := w.Write(r.buf.Bytes()); err != nil {
		return fmt.Errorf("write finding %s: %w", f.ID, err)
	}
	return nil
}

type renderer struct {
	buf   bytes.Buffer
	color bool
}

// style wraps s in the given ANSI codes when color is on.
func (r *renderer) style(s string, codes ...string) string {
	if !r.color || len(codes) == 0 || s == "" {
		return s
	}
	return strings.Join(codes, "") + s + ansiReset
}

func (r *renderer) line(parts ...string) {
	for _, p := range parts {
		r.buf.WriteString(p)
	}
	r.buf.WriteByte('\n')
}

func (r *renderer) finding(f *event.Finding) {
	status := strings.ToUpper(string(f.Event.Status))
	if status == "" {
		status = "FIRING" // a finding without status is reported as it happens
	}
	statusColor := ansiRed
	if f.Event.Status == event.StatusResolved {
		statusColor = ansiGreen
	}
	sev := string(f.Severity)
	if sev == "" {
		sev = string(event.SeverityInfo)
	}
	r.line(
		r.style(status, ansiBold, statusColor), " ",
		r.style("["+clean(sev)+"]", severityColor(f.Severity)), " ",
		r.style(clean(f.Title), ansiBold),
	)

	var meta []string
	if s := subject(f.Event.Subject); s != "" {
		meta = append(meta, s)
	}
	if c := f.Event.Subject.Container; c != "" {
		meta = append(meta, "container "+clean(c))
	}
	if n := f.Event.Subject.Node; n != "" {
		meta = append(meta, "node "+clean(n))
	}
	meta = append(meta, "id "+clean(f.ID))
	if len(f.Playbooks) > 0 {
		pbs := make([]string, len(f.Playbooks))
		for i, p := range f.Playbooks {
			pbs[i] = clean(p)
		}
		meta = append(meta, "playbooks "+strings.Join(pbs, ", "))
	}
	r.line(indent, r.style(strings.Join(meta, " · "), ansiDim))

	if d := strings.TrimSpace(f.Description); d != "" {
		r.line()
		r.text(d)
	}
	for i := range f.Enrichments {
		r.enrichment(&f.Enrichments[i])
	}
	// A blank line ends the finding, so successive findings stay apart.
	r.line()
}

func severityColor(s event.Severity) string {
	switch s {
	case event.SeverityCritical, event.SeverityHigh:
		return ansiRed
	case event.SeverityWarning:
		return ansiYellow
	case event.SeverityNone:
		return ansiDim
	default:
		return ansiBlue
	}
}

// subject renders "Kind namespace/name", leaving out what is unknown.
func subject(s event.Subject) string {
	name := s.Name
	if s.Namespace != "" && s.Name != "" {
		name = s.Namespace + "/" + s.Name
	} else if s.Namespace != "" {
		name = s.Namespace
	}
	return clean(strings.TrimSpace(s.Kind + " " + name))
}

func (r *renderer) enrichment(e *event.Enrichment) {
	r.line()
	title := clean(e.Title)
	if title == "" {
		title = clean(e.Source)
	}
	if title != "" {
		r.line(indent, r.style("▸ "+title, ansiBold))
	}
	for i := range e.Blocks {
		if i > 0 {
			r.line()
		}
		r.block(&e.Blocks[i])
	}
}

func (r *renderer) block(b *event.Block) {
	switch b.Kind {
	case event.BlockMarkdown:
		r.text(b.Markdown)
	case event.BlockTable:
		if b.Table == nil {
			r.empty(b.Kind)
			return
		}
		r.table(b.Table)
	case event.BlockLog:
		if b.Log == nil {
			r.empty(b.Kind)
			return
		}
		r.log(b.Log)
	case event.BlockLinks:
		if len(b.Links) == 0 {
			r.empty(b.Kind)
			return
		}
		for _, l := range b.Links {
			label, url := clean(l.Label), clean(l.URL)
			if label == "" {
				r.line(indent, url)
				continue
			}
			r.line(indent, label, ": ", url)
		}
	case event.BlockImage:
		if b.Image == nil {
			r.empty(b.Kind)
			return
		}
		r.line(indent, r.style(fmt.Sprintf("[image %s, %d bytes]", clean(b.Image.Name), len(b.Image.PNG)), ansiDim))
	default:
		// A newer action may produce a kind this build does not know; say
		// so rather than drop evidence silently.
		r.line(indent, r.style(fmt.Sprintf("[unsupported block kind %q]", clean(string(b.Kind))), ansiDim))
	}
}

// empty marks a block whose payload is missing, so a broken action shows.
func (r *renderer) empty(k event.BlockKind) {
	r.line(indent, r.style(fmt.Sprintf("[empty %s block]", clean(string(k))), ansiDim))
}

// text writes multi-line text indented. Markdown is shown as written: it
// reads well enough as plain text.
func (r *renderer) text(s string) {
	for _, l := range splitLines(strings.TrimRight(s, "\n")) {
		if l == "" {
			r.line()
			continue
		}
		r.line(indent, clean(l))
	}
}

// table aligns cells in columns two spaces apart. A table without headers
// (a key-value table) is just its rows; one with headers gets a rule below
// them. Rows may be ragged; missing cells are blank.
func (r *renderer) table(t *event.TableBlock) {
	cols := len(t.Headers)
	for _, row := range t.Rows {
		cols = max(cols, len(row))
	}
	if cols == 0 {
		r.empty(event.BlockTable)
		return
	}
	cell := func(row []string, i int) string {
		if i < len(row) {
			// Newlines would break the alignment; a cell stays on one line.
			return clean(strings.Join(splitLines(row[i]), " "))
		}
		return ""
	}
	widths := make([]int, cols)
	measure := func(row []string) {
		for i := range cols {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell(row, i)))
		}
	}
	if len(t.Headers) > 0 {
		measure(t.Headers)
	}
	for _, row := range t.Rows {
		measure(row)
	}
	format := func(row []string) string {
		var b strings.Builder
		for i := range cols {
			c := cell(row, i)
			b.WriteString(c)
			if i < cols-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		return strings.TrimRight(b.String(), " ")
	}
	if len(t.Headers) > 0 {
		r.line(indent, r.style(format(t.Headers), ansiBold))
		rule := make([]string, cols)
		for i, w := range widths {
			rule[i] = strings.Repeat("─", w)
		}
		r.line(indent, r.style(strings.Join(rule, "  "), ansiDim))
	}
	if len(t.Rows) == 0 {
		r.line(indent, r.style("(no rows)", ansiDim))
	}
	for _, row := range t.Rows {
		r.line(indent, format(row))
	}
}

// log writes the source line, then each log line behind a gutter so it is
// clear where the log starts and ends.
func (r *renderer) log(l *event.LogBlock) {
	head := clean(l.Source)
	if l.Truncated {
		// Truncated means earlier lines were dropped, so the note goes
		// where they would have been.
		head = strings.TrimSpace(head + " (truncated)")
	}
	if head != "" {
		r.line(indent, r.style(head, ansiDim))
	}
	gutter := r.style("│ ", ansiDim)
	text := strings.TrimRight(l.Text, "\n")
	if text == "" {
		r.line(indent, gutter, r.style("(empty)", ansiDim))
		return
	}
	for _, ln := range splitLines(text) {
		r.line(indent, gutter, clean(ln))
	}
}

// splitLines splits on "\n", treating "\r\n" as one line break.
func splitLines(s string) []string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// clean drops control characters (escape codes, carriage returns, bells)
// other than tab, and keeps invalid UTF-8 visible as U+FFFD. Callers split
// lines first, so newlines never reach it in text meant to keep them.
func clean(s string) string {
	ok := true
	for _, c := range s {
		if c == utf8.RuneError || (unicode.IsControl(c) && c != '\t') {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '\t':
			b.WriteRune(c)
		case c == '\n' || c == '\r':
			b.WriteByte(' ')
		case unicode.IsControl(c):
			// dropped
		default:
			b.WriteRune(c) // RuneError from invalid bytes prints as U+FFFD
		}
	}
	return b.String()
}
