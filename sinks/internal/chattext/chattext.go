// Package chattext renders a finding as text for the chat sinks that take
// Markdown, HTML or Google Chat's card HTML (mattermost, discord, telegram,
// google_chat, webex). What a finding says (the subject facts, the links,
// the evidence worth showing) comes from sinks/chatfmt, shared with Slack
// and Teams; this package only writes it in a dialect and keeps it within a
// chat's size limit, shortening evidence first and then leaving sections out
// with a visible "…truncated" note that points at medic's finding page.
package chattext

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks/chatfmt"
)

// Dialect is how one chat writes formatted text. Every function gets the
// text as it came from the cluster and escapes it itself, so nothing a pod
// logs can close a code block or inject a link.
type Dialect struct {
	// Text shows s as written.
	Text func(s string) string
	// Bold shows s in bold.
	Bold func(s string) string
	// Code shows s in a monospace span on one line.
	Code func(s string) string
	// Pre shows s as a preformatted block.
	Pre func(s string) string
	// Link links label to url (an http(s) URL).
	Link func(label, url string) string
	// Markdown renders an action's CommonMark (bold, code, links, headings,
	// lists) in this dialect, dropping links that are not web links.
	Markdown func(s string) string
	// Newline separates lines ("\n"; "<br>" in card HTML).
	Newline string
}

// Markdown is CommonMark as Mattermost, Discord and Webex render it.
var Markdown = Dialect{
	Text: func(s string) string { return mdSpecial.Replace(clean(s)) },
	Bold: func(s string) string { return "**" + mdSpecial.Replace(oneLine(s)) + "**" },
	Code: func(s string) string { return "`" + strings.ReplaceAll(oneLine(s), "`", "'") + "`" },
	Pre: func(s string) string {
		return "```\n" + strings.ReplaceAll(clean(s), "```", "`\u200b``") + "\n```"
	},
	Link: func(label, url string) string {
		label = strings.NewReplacer("[", "(", "]", ")").Replace(oneLine(label))
		return "[" + label + "](" + urlEscape(url) + ")"
	},
	Markdown: markdownLinks,
	Newline:  "\n",
}

// HTML is Telegram's HTML parse mode: only <, > and & are special, and
// <b>, <code>, <pre> and <a href> are the tags used.
var HTML = Dialect{
	Text: func(s string) string { return htmlEscape(clean(s)) },
	Bold: func(s string) string { return "<b>" + htmlEscape(oneLine(s)) + "</b>" },
	Code: func(s string) string { return "<code>" + htmlEscape(oneLine(s)) + "</code>" },
	Pre:  func(s string) string { return "<pre>" + htmlEscape(clean(s)) + "</pre>" },
	Link: func(label, url string) string {
		return `<a href="` + htmlEscape(url) + `">` + htmlEscape(oneLine(label)) + "</a>"
	},
	Markdown: func(s string) string { return markdownToHTML(s, "\n", "<code>", "</code>") },
	Newline:  "\n",
}

// CardHTML is the HTML subset of Google Chat's card text widgets: <b>,
// <a href>, <font color>, and <br> for a new line (a plain newline is not
// one there). Monospace is not among its tags, so code shows as written.
var CardHTML = Dialect{
	Text: func(s string) string { return brLines(htmlEscape(clean(s))) },
	Bold: func(s string) string { return "<b>" + htmlEscape(oneLine(s)) + "</b>" },
	Code: func(s string) string { return htmlEscape(oneLine(s)) },
	Pre: func(s string) string {
		return `<font color="#5f6368">` + brLines(htmlEscape(clean(s))) + "</font>"
	},
	Link:     HTML.Link,
	Markdown: func(s string) string { return brLines(markdownToHTML(s, "\n", "", "")) },
	Newline:  "<br>",
}

// Plain is text without markup, for fields a chat shows as written
// (fallbacks, footers, notification previews).
var Plain = Dialect{
	Text:     clean,
	Bold:     oneLine,
	Code:     oneLine,
	Pre:      clean,
	Link:     func(label, url string) string { return oneLine(label) + " " + url },
	Markdown: clean,
	Newline:  "\n",
}

// Options shape the text.
type Options struct {
	Cluster string
	// PageURL is medic's signed page for the finding ("" for none): the
	// truncation note links to it.
	PageURL string
	// InlineLogLines is how many last lines of a log are shown (default 15).
	InlineLogLines int
	// MaxTableRows bounds the rows of a table (default 20).
	MaxTableRows int
}

func (o *Options) defaults() {
	if o.InlineLogLines <= 0 {
		o.InlineLogLines = 15
	}
	if o.MaxTableRows <= 0 {
		o.MaxTableRows = 20
	}
}

// Section is one enrichment rendered in full and shortened (fewer log lines
// and rows, a shorter text), for when the full one does not fit.
type Section struct {
	Title string // as written, not escaped
	Full  string
	Short string
	// Pinned sections (what was redacted) are shown whatever else is cut.
	Pinned bool
}

// SplitPinned separates the pinned sections (what was redacted), which a
// renderer shows whatever it cuts, from the rest, keeping each in order.
func SplitPinned(sections []Section) (rest, pinned []Section) {
	rest = make([]Section, 0, len(sections))
	for _, s := range sections {
		if s.Pinned {
			pinned = append(pinned, s)
		} else {
			rest = append(rest, s)
		}
	}
	return rest, pinned
}

// Headline is "FIRING · critical" (RESOLVED once resolved).
func Headline(f *event.Finding) string {
	return chatfmt.Status(f) + " · " + oneLine(chatfmt.Severity(f))
}

// Title is the finding's title on one line, bounded to max runes.
func Title(f *event.Finding, max int) string {
	t := oneLine(f.Title)
	if t == "" {
		t = "(untitled finding)"
	}
	return Truncate(t, max)
}

// Facts are the finding's subject (chatfmt.Subject), how long it lasted once
// resolved, and the labels the subject does not show, values as written.
func Facts(f *event.Finding, cluster string) []chatfmt.Fact {
	facts := chatfmt.Subject(f, cluster)
	if chatfmt.Resolved(f) {
		if d, ok := chatfmt.ResolvedAfter(f); ok {
			facts = append(facts, chatfmt.Fact{Name: "Resolved after", Value: chatfmt.Duration(d)})
		}
	}
	return append(facts, chatfmt.ExtraLabels(&f.Event)...)
}

// Description is the finding's description in the dialect, at most max
// runes of it before markup, "" when it only repeats the title.
func Description(f *event.Finding, d Dialect, max int) string {
	desc := strings.TrimSpace(f.Description)
	if desc == "" || desc == strings.TrimSpace(f.Title) || max <= 0 {
		return ""
	}
	return d.Markdown(TruncateNote(desc, max))
}

// Links are the alert's links (graph, runbook, silence while firing) and
// the finding page, labelled for people.
func Links(f *event.Finding, pageURL string) []event.Link {
	var out []event.Link
	if pageURL != "" {
		out = append(out, event.Link{Label: "Finding page", URL: pageURL})
	}
	for _, l := range chatfmt.AlertLinks(&f.Event) {
		if l.Label == "Silence" && chatfmt.Resolved(f) {
			continue
		}
		out = append(out, l)
	}
	return out
}

// Footer is "finding <id> · playbooks a, b" in the dialect.
func Footer(f *event.Finding, d Dialect) string {
	meta := "finding " + f.ID
	if len(f.Playbooks) > 0 {
		meta += " · playbooks " + strings.Join(f.Playbooks, ", ")
	}
	return d.Text(Truncate(oneLine(meta), 400))
}

// Sections renders the enrichments worth showing, in order.
func Sections(f *event.Finding, d Dialect, o Options) []Section {
	o.defaults()
	shown := map[string]bool{}
	for _, l := range Links(f, o.PageURL) {
		shown[l.URL] = true
	}
	var out []Section
	for i := range f.Enrichments {
		e := &f.Enrichments[i]
		full := blocks(e, f, d, o, shown, false)
		if full == "" {
			continue
		}
		title := oneLine(e.Title)
		if title == "" {
			title = oneLine(e.Source)
		}
		out = append(out, Section{Title: Truncate(title, 200), Full: full, Short: blocks(e, f, d, o, shown, true), Pinned: e.Source == event.RedactionSource})
	}
	return out
}

func blocks(e *event.Enrichment, f *event.Finding, d Dialect, o Options, shown map[string]bool, short bool) string {
	textMax, logLines, rows := 3000, o.InlineLogLines, o.MaxTableRows
	if short {
		textMax, logLines, rows = 500, min(5, logLines), min(5, rows)
	}
	bs := e.Blocks
	if e.Collapsed && len(bs) > 1 {
		bs = bs[:1] // the summary; the rest is on the finding page
	}
	var parts []string
	for _, b := range bs {
		if p := block(b, f, d, textMax, logLines, rows, shown); p != "" {
			parts = append(parts, p)
		}
	}
	if e.Collapsed && len(e.Blocks) > 1 && len(parts) > 0 {
		parts = append(parts, d.Text("(details on the finding page)"))
	}
	return strings.Join(parts, d.Newline+d.Newline)
}

func block(b event.Block, f *event.Finding, d Dialect, textMax, logLines, rows int, shown map[string]bool) string {
	switch b.Kind {
	case event.BlockMarkdown:
		if s := strings.TrimSpace(b.Markdown); s != "" {
			return d.Markdown(TruncateNote(s, textMax))
		}
	case event.BlockTable:
		t := b.Table
		if t == nil || len(t.Rows) == 0 || chatfmt.RepeatsLabels(t, &f.Event) {
			return ""
		}
		var lines []string
		if chatfmt.IsKeyValue(t) {
			for i, r := range t.Rows {
				if i == rows {
					lines = append(lines, d.Text(fmt.Sprintf("…truncated: %d more rows", len(t.Rows)-i)))
					break
				}
				k, v := r[0], ""
				if len(r) > 1 {
					v = r[1]
				}
				lines = append(lines, d.Bold(Truncate(k, 100))+" "+d.Text(Truncate(oneLine(v), 300)))
			}
			return strings.Join(lines, d.Newline)
		}
		var rowsText []string
		if len(t.Headers) > 0 {
			rowsText = append(rowsText, strings.Join(t.Headers, " | "))
		}
		for i, r := range t.Rows {
			if i == rows {
				rowsText = append(rowsText, fmt.Sprintf("…truncated: %d more rows", len(t.Rows)-i))
				break
			}
			cells := make([]string, len(r))
			for j, c := range r {
				cells[j] = Truncate(oneLine(c), 120)
			}
			rowsText = append(rowsText, strings.Join(cells, " | "))
		}
		return d.Pre(strings.Join(rowsText, "\n"))
	case event.BlockLog:
		l := b.Log
		if l == nil || strings.TrimSpace(l.Text) == "" {
			return ""
		}
		text, dropped := chatfmt.LastLines(l.Text, logLines)
		head := d.Text(oneLine(l.Source))
		if dropped > 0 || l.Truncated {
			head += d.Text(fmt.Sprintf(" (last %d of %d lines)", chatfmt.CountLines(text), chatfmt.CountLines(l.Text)))
		}
		return strings.TrimSpace(head + d.Newline + d.Pre(TruncateStart(text, 2500)))
	case event.BlockLinks:
		var links []string
		for _, l := range chatfmt.RemainingLinks(b.Links, shown) {
			if chatfmt.IsWebURL(l.URL) {
				shown[l.URL] = true
				links = append(links, d.Link(Truncate(first(l.Label, l.URL), 100), l.URL))
			}
		}
		return strings.Join(links, " · ")
	case event.BlockImage:
		if b.Image != nil {
			return d.Text(fmt.Sprintf("(image %s, %s: on the finding page)", oneLine(b.Image.Name), chatfmt.Bytes(len(b.Image.PNG))))
		}
	}
	return ""
}

// Fit joins head, the sections (a bold title line, then the body) and tail
// into one text of at most max runes: a section that does not fit whole is
// shortened, and once even that does not fit, the rest is left out with a
// note that says how many sections went and links to the finding page.
// Pinned sections are never left out: they follow the note, in their order.
// head and tail must already fit; they are cut hard if not.
func Fit(d Dialect, head string, sections []Section, tail string, pageURL string, max int) string {
	sep := d.Newline + d.Newline
	const noteRoom = 300
	rest, pins := SplitPinned(sections)
	var pinned string
	for _, s := range pins {
		pinned += sep + d.Bold(s.Title) + d.Newline + s.Short
	}
	out := head
	budget := max - runes(tail) - runes(sep) - runes(pinned)
	for i, s := range rest {
		for _, body := range []string{s.Full, s.Short} {
			part := sep + d.Bold(s.Title) + d.Newline + body
			if runes(out)+runes(part) <= budget-noteRoom || (i == len(rest)-1 && runes(out)+runes(part) <= budget) {
				out += part
				goto next
			}
		}
		{
			n := len(rest) - i
			note := fmt.Sprintf("…truncated: %d more %s did not fit", n, plural(n, "section", "sections"))
			if pageURL != "" {
				out += sep + d.Text(note+" — ") + d.Link("see the finding page", pageURL)
			} else {
				out += sep + d.Text(note)
			}
			break
		}
	next:
	}
	out += pinned
	if tail != "" {
		out += sep + tail
	}
	if runes(out) > max {
		// Only a head or tail too long for the chat gets here (Message
		// and Body keep theirs within a part of max); the cut may break
		// markup, which the chat then refuses and medic retries.
		out = string([]rune(out)[:max-1]) + "…"
	}
	return out
}

// ThreadKey identifies the alert a finding is about, the same for its
// firing and resolved findings and different for two alerts: the source,
// the alert's fingerprint and when it started (event.NewID without the
// status). A finding without a fingerprint is its own thread.
func ThreadKey(f *event.Finding) string {
	ev := &f.Event
	if ev.Fingerprint == "" {
		return f.ID
	}
	h := fnv.New64a()
	for _, p := range []string{ev.Source, ev.Fingerprint, ev.StartsAt.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("alert-%016x", h.Sum64())
}

// Color is the severity's colour as 0xRRGGBB: green once resolved.
func Color(f *event.Finding) int {
	switch {
	case chatfmt.Resolved(f):
		return 0x2EB67D
	case f.Severity == event.SeverityCritical:
		return 0xE01E5A
	case f.Severity == event.SeverityHigh:
		return 0xF2711C
	case f.Severity == event.SeverityWarning:
		return 0xECB22E
	case f.Severity == event.SeverityInfo:
		return 0x36C5F0
	default:
		return 0x9E9E9E
	}
}

// HexColor is Color as "#rrggbb".
func HexColor(f *event.Finding) string { return fmt.Sprintf("#%06x", Color(f)) }

// Truncate bounds s to n runes, ending in "…" when cut.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// TruncateStart bounds s to n runes keeping its end (the last log lines).
func TruncateStart(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return "…" + string(r[len(r)-n+1:])
}

// TruncateNote bounds s to n runes with a note saying how much went.
func TruncateNote(s string, n int) string {
	c := utf8.RuneCountInString(s)
	if c <= n {
		return s
	}
	keep := max(n-40, 1)
	return string([]rune(s)[:keep]) + fmt.Sprintf("\n\n…truncated (%d more characters)", c-keep)
}

// Lines joins non-empty parts with the dialect's newline.
func Lines(d Dialect, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, d.Newline)
}

// OneLine folds white space and drops control characters.
func OneLine(s string) string { return oneLine(s) }

func runes(s string) int { return utf8.RuneCountInString(s) }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func first(vals ...string) string {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

var mdSpecial = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`, "`", "\\`", `#`, `\#`, `<`, `\<`, `>`, `\>`, `~`, `\~`, `|`, `\|`, `@`, "@\u200b")

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

func htmlEscape(s string) string { return htmlEscaper.Replace(s) }

func brLines(s string) string { return strings.ReplaceAll(s, "\n", "<br>") }

func urlEscape(u string) string {
	return strings.NewReplacer("(", "%28", ")", "%29", " ", "%20", "<", "%3C", ">", "%3E").Replace(u)
}

func clean(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\r\n", "\n"), "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func oneLine(s string) string { return strings.Join(strings.Fields(clean(s)), " ") }

var mdLinkRE = regexp.MustCompile(`\[([^\]\n]*)\]\(([^)\s]*)\)`)

// markdownLinks keeps an action's Markdown, dropping links that are not
// web links (javascript:, data:, …) and mentions (@here, @everyone).
func markdownLinks(s string) string {
	s = strings.ReplaceAll(clean(s), "@", "@\u200b")
	return mdLinkRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := mdLinkRE.FindStringSubmatch(m)
		if chatfmt.IsWebURL(sub[2]) {
			return m
		}
		return sub[1] + " (" + sub[2] + ")"
	})
}

var (
	mdFenceRE   = regexp.MustCompile("(?s)```[a-zA-Z0-9_-]*\n?(.*?)```")
	mdCodeRE    = regexp.MustCompile("`([^`\n]+)`")
	mdBoldRE    = regexp.MustCompile(`\*\*([^*\n]+)\*\*`)
	mdHeadingRE = regexp.MustCompile(`(?m)^#{1,6}\s+(.+)$`)
	// after escaping, a link's brackets and parentheses are unchanged
	mdHTMLLinkRE = regexp.MustCompile(`\[([^\]\n]*)\]\(([^)\s]*)\)`)
)

// markdownToHTML converts the Markdown actions write (fenced and inline
// code, bold, headings, links) to HTML tags, escaping everything else.
// Code spans are cut out first so that nothing inside them is converted.
func markdownToHTML(s, nl, codeOpen, codeClose string) string {
	s = htmlEscape(clean(s))
	var codes []string
	stash := func(html string) string {
		codes = append(codes, html)
		return fmt.Sprintf("\x00%d\x00", len(codes)-1)
	}
	s = mdFenceRE.ReplaceAllStringFunc(s, func(m string) string {
		body := mdFenceRE.FindStringSubmatch(m)[1]
		if codeOpen == "" {
			return stash(strings.TrimRight(body, "\n"))
		}
		return stash("<pre>" + strings.TrimRight(body, "\n") + "</pre>")
	})
	s = mdCodeRE.ReplaceAllStringFunc(s, func(m string) string {
		return stash(codeOpen + mdCodeRE.FindStringSubmatch(m)[1] + codeClose)
	})
	s = mdHeadingRE.ReplaceAllString(s, "<b>$1</b>")
	s = mdBoldRE.ReplaceAllString(s, "<b>$1</b>")
	s = mdHTMLLinkRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := mdHTMLLinkRE.FindStringSubmatch(m)
		u := strings.ReplaceAll(sub[2], "&amp;", "&")
		if !chatfmt.IsWebURL(u) {
			return sub[1] + " (" + sub[2] + ")"
		}
		return `<a href="` + sub[2] + `">` + sub[1] + "</a>"
	})
	for i, c := range codes {
		s = strings.Replace(s, fmt.Sprintf("\x00%d\x00", i), c, 1)
	}
	return strings.ReplaceAll(s, "\n", nl)
}

// LinkLine is the finding's links (Links) on one line within max runes,
// "" when none. The finding page comes first; a link that would not fit
// (a silence link carries every label of the alert) is left out: the
// finding page has it.
func LinkLine(f *event.Finding, d Dialect, pageURL string, max int) string {
	var out []string
	n := 0
	for _, l := range Links(f, pageURL) {
		link := d.Link(l.Label, l.URL)
		if n+runes(link)+3 > max {
			continue
		}
		out = append(out, link)
		n += runes(link) + 3
	}
	return strings.Join(out, " · ")
}

// FactLines are Facts as "Name: value" lines, at most maxFacts of them.
func FactLines(f *event.Finding, d Dialect, cluster string, maxFacts int) string {
	facts := Facts(f, cluster)
	if maxFacts <= 0 {
		return ""
	}
	var lines []string
	for i, fact := range facts {
		if i == maxFacts {
			lines = append(lines, d.Text(fmt.Sprintf("…truncated: %d more labels", len(facts)-i)))
			break
		}
		lines = append(lines, d.Bold(Truncate(fact.Name, 100)+":")+" "+d.Text(Truncate(oneLine(fact.Value), 300)))
	}
	return strings.Join(lines, d.Newline)
}

// Body is the description, the links and the evidence within max runes,
// for chats that show the title and the facts in fields of their own.
func Body(f *event.Finding, d Dialect, o Options, max int) string {
	head := Lines(d, Description(f, d, min(3000, max/4)), LinkLine(f, d, o.PageURL, max/4))
	return strings.TrimPrefix(Fit(d, head, Sections(f, d, o), "", o.PageURL, max), d.Newline+d.Newline)
}

// Message is the whole finding as one text within max runes: the headline
// and title, the facts, then Body, then the footer. A head too long for
// half of max (many long labels, a long description) is shortened before
// the evidence is, since markup cannot be cut in the middle; at worst the
// head is the headline, the title and the finding page link.
func Message(f *event.Finding, d Dialect, o Options, max int) string {
	var head string
	for _, lim := range []struct{ facts, desc, links int }{{30, 3000, max / 4}, {12, 800, max / 6}, {6, 200, max / 8}, {0, 0, 400}} {
		parts := []string{
			Lines(d, d.Text(Headline(f)), d.Bold(Title(f, 250))),
			FactLines(f, d, o.Cluster, lim.facts), Description(f, d, lim.desc), LinkLine(f, d, o.PageURL, lim.links),
		}
		var kept []string
		for _, p := range parts {
			if p != "" {
				kept = append(kept, p)
			}
		}
		head = strings.Join(kept, d.Newline+d.Newline)
		if runes(head) <= max/2 {
			break
		}
	}
	return Fit(d, head, Sections(f, d, o), Footer(f, d), o.PageURL, max)
}
