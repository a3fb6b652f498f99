package slack

import (
	"fmt"
	"regexp"
	"strings"

	goslack "github.com/slack-go/slack"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks/chatfmt"
)

// RenderEnrichments renders enrichments for a thread reply (an AI answer,
// more logs) within the limits of one message: what does not fit ends in a
// "…truncated" note. Logs are shown inline (their last lines) since
// nothing is uploaded. text is medic's own (it may hold a mention such as
// <@U123>) and is the fallback as it is.
func RenderEnrichments(text string, es []event.Enrichment, inlineLogLines int) Message {
	if inlineLogLines <= 0 {
		inlineLogLines = 15
	}
	r := &renderer{f: &event.Finding{}, o: RenderOptions{InlineLogLines: inlineLogLines}, shown: map[string]bool{}}
	var blocks []goslack.Block
	chars := 0
	for i := range es {
		bs := r.enrichment(&es[i])
		c := blocksChars(bs)
		if len(blocks)+len(bs) > MaxBlocks-1 || chars+c > MaxMessageChars {
			n := len(es) - i
			blocks = append(blocks, contextBlock(fmt.Sprintf("…truncated: %d more %s", n, plural(n, "section", "sections"))))
			break
		}
		blocks = append(blocks, bs...)
		chars += c
	}
	if len(blocks) == 0 {
		blocks = append(blocks, section(escape(truncate(oneLine(text), MaxSectionText))))
	}
	return Message{Text: truncate(oneLine(text), MaxFallbackText), Blocks: blocks}
}

// TextMessage is a one-section message of mrkdwn text (already escaped).
func TextMessage(text string) Message {
	return Message{Text: truncate(oneLine(stripMrkdwn(text)), MaxFallbackText), Blocks: []goslack.Block{section(text)}}
}

// Escape makes text safe to put in mrkdwn.
func Escape(s string) string { return escape(clean(s)) }

// Link renders a mrkdwn link.
func Link(url, label string) string { return link(url, label) }

func stripMrkdwn(s string) string {
	s = mrkdwnLink.ReplaceAllString(s, "$1")
	// Escaped brackets came from outside (an alert's title): in the plain
	// fallback they become ‹ ›, never a mention; medic's own tokens
	// (<@U123>, written unescaped) stay mentions.
	return strings.NewReplacer("*", "", "`", "", "&amp;", "&", "&lt;", "‹", "&gt;", "›").Replace(s)
}

// mrkdwnLink is <url|label> in mrkdwn; the fallback shows the label.
var mrkdwnLink = regexp.MustCompile(`<[^|<>]*\|([^<>]*)>`)

// GroupMember is one finding of a group summary.
type GroupMember struct {
	FindingID string `json:"findingId"`
	Title     string `json:"title"`
	Severity  string `json:"severity,omitempty"`
	Resolved  bool   `json:"resolved,omitempty"`
}

// maxGroupLines bounds the findings a summary lists.
const maxGroupLines = 15

// RenderGroupSummary renders the message that heads a group's thread.
func RenderGroupSummary(groupBy []string, values []string, members []GroupMember, interval string) Message {
	firing := 0
	for _, m := range members {
		if !m.Resolved {
			firing++
		}
	}
	var what []string
	for i, k := range groupBy {
		v := ""
		if i < len(values) {
			v = values[i]
		}
		if v == "" {
			v = "—"
		}
		what = append(what, k+"="+v)
	}
	emoji := "🔴"
	if firing == 0 {
		emoji = "✅"
	}
	header := fmt.Sprintf("%s %d %s · %d firing · %s", emoji, len(members), plural(len(members), "finding", "findings"), firing, strings.Join(what, ", "))
	var lines []string
	for i, m := range members {
		if i == maxGroupLines {
			lines = append(lines, fmt.Sprintf("…truncated: %d more in the thread", len(members)-i))
			break
		}
		st := "🔥"
		if m.Resolved {
			st = "✅"
		}
		sev := ""
		if m.Severity != "" {
			sev = " _" + escape(oneLine(m.Severity)) + "_"
		}
		lines = append(lines, st+" "+escape(truncate(oneLine(m.Title), 150))+sev)
	}
	blocks := []goslack.Block{
		goslack.NewHeaderBlock(plain(truncate(header, MaxHeaderText))),
	}
	if len(lines) > 0 {
		blocks = append(blocks, section(strings.Join(lines, "\n")))
	}
	blocks = append(blocks, contextBlock(fmt.Sprintf("Grouped by %s for %s · each finding is in the thread", escape(strings.Join(groupBy, ", ")), escape(interval))))
	return Message{Text: fallbackText(truncate(oneLine(header), MaxFallbackText)), Blocks: blocks}
}

// ResolvedReply is the thread reply when a finding's alert resolves.
func ResolvedReply(f *event.Finding, withTitle bool) Message {
	text := "✅ Resolved"
	if withTitle {
		text = "✅ " + escape(truncate(oneLine(f.Title), 200)) + " resolved"
	}
	if d, ok := chatfmt.ResolvedAfter(f); ok {
		text += " after " + chatfmt.Duration(d)
	}
	return TextMessage(text)
}

// LogsMessage shows the last lines of logs in full, split over as many
// sections as they need within one message (Show more logs).
func LogsMessage(title string, logs []event.Enrichment, lines int) Message {
	var blocks []goslack.Block
	chars := 0
	for i, e := range logs {
		for _, b := range e.Blocks {
			if b.Kind != event.BlockLog || b.Log == nil {
				continue
			}
			text := strings.TrimRight(clean(b.Log.Text), "\n")
			tail, dropped := chatfmt.LastLines(text, lines)
			head := "*" + escape(truncate(oneLine(e.Title), 200)) + "*"
			if src := oneLine(b.Log.Source); src != "" {
				head += " · _" + escape(src) + "_"
			}
			if dropped > 0 {
				head += fmt.Sprintf(" · last %d of %d lines", chatfmt.CountLines(tail), chatfmt.CountLines(text))
			}
			parts := splitText(head+"\n```\n"+escape(tail)+"\n```", MaxSectionText, 12)
			var bs []goslack.Block
			for _, p := range parts {
				bs = append(bs, section(p))
			}
			c := blocksChars(bs)
			if len(blocks)+len(bs) > MaxBlocks-1 || chars+c > MaxMessageChars {
				n := len(logs) - i
				blocks = append(blocks, contextBlock(fmt.Sprintf("…truncated: %d more %s", n, plural(n, "log", "logs"))))
				return Message{Text: fallbackText(truncate(oneLine(title), MaxFallbackText)), Blocks: blocks}
			}
			blocks = append(blocks, bs...)
			chars += c
		}
	}
	if len(blocks) == 0 {
		return TextMessage("No logs are stored with this finding.")
	}
	return Message{Text: fallbackText(truncate(oneLine(title), MaxFallbackText)), Blocks: blocks}
}
