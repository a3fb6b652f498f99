package slack

import (
	"regexp"
	"strings"

	"github.com/medichq/medic/sinks/chatfmt"
)

var (
	mdHeading = regexp.MustCompile(`^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
	mdBullet  = regexp.MustCompile(`^(\s*)[-*+]\s+`)
	mdBold    = regexp.MustCompile(`\*\*([^*\n]+)\*\*|__([^_\n]+)__`)
	mdLink    = regexp.MustCompile(`\[([^\]\n]+)\]\(([^)\s]+)\)`)
	mdStrike  = regexp.MustCompile(`~~([^~\n]+)~~`)
)

// mrkdwn turns the Markdown actions write into Slack's mrkdwn: **bold** and
// __bold__ become *bold*, # headings bold lines, list markers bullets,
// [label](url) a Slack link (http and https only), ~~x~~ ~x~. Code spans and
// fenced blocks are kept as they are, and everything is escaped, so text
// from the cluster cannot mention @channel or forge a link.
func mrkdwn(md string) string {
	md = clean(strings.ReplaceAll(md, "\r\n", "\n"))
	lines := strings.Split(strings.TrimRight(md, "\n"), "\n")
	inFence := false
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			lines[i] = "```" // Slack shows no language tag
			continue
		}
		if inFence {
			lines[i] = escape(line)
			continue
		}
		if m := mdHeading.FindStringSubmatch(line); m != nil {
			lines[i] = "*" + inline(strings.ReplaceAll(m[1], "*", "")) + "*"
			continue
		}
		if m := mdBullet.FindStringSubmatch(line); m != nil && !strings.HasPrefix(strings.TrimSpace(line), "**") {
			line = m[1] + "• " + line[len(m[0]):]
		}
		lines[i] = inline(line)
	}
	out := strings.Join(lines, "\n")
	if inFence {
		out += "\n```"
	}
	return out
}

// inline converts one line outside code spans.
func inline(line string) string {
	segs := strings.Split(line, "`")
	if len(segs)%2 == 0 { // an unpaired backtick: treat it as text
		segs = []string{line}
	}
	for i := range segs {
		if i%2 == 1 {
			segs[i] = escape(segs[i])
			continue
		}
		s := segs[i]
		// Links first: their labels and URLs must not be escaped twice.
		var b strings.Builder
		last := 0
		for _, m := range mdLink.FindAllStringSubmatchIndex(s, -1) {
			label, url := s[m[2]:m[3]], s[m[4]:m[5]]
			b.WriteString(styles(escape(s[last:m[0]])))
			if chatfmt.IsWebURL(url) {
				b.WriteString(link(url, label))
			} else {
				b.WriteString(styles(escape(s[m[0]:m[1]])))
			}
			last = m[1]
		}
		b.WriteString(styles(escape(s[last:])))
		segs[i] = b.String()
	}
	return strings.Join(segs, "`")
}

func styles(s string) string {
	s = mdBold.ReplaceAllStringFunc(s, func(m string) string {
		return "*" + strings.Trim(m, "*_") + "*"
	})
	return mdStrike.ReplaceAllString(s, "~$1~")
}

// link renders a Slack link; the label loses the characters that would end
// it early.
func link(url, label string) string {
	label = strings.NewReplacer("|", "¦", "\n", " ").Replace(oneLine(label))
	if label == "" {
		label = url
	}
	return "<" + escape(strings.ReplaceAll(url, "|", "%7C")) + "|" + escape(truncate(label, 200)) + ">"
}
