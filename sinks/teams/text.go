package teams

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/medichq/medic/sinks/chatfmt"
)

// Adaptive Card TextBlocks render a small Markdown subset (bold, italic,
// lists, links). Text from the cluster is shown as written, except that
// links other than http(s) lose their link syntax, control characters go,
// and plainText neutralises Markdown where none is meant.

var mdLinkRE = regexp.MustCompile(`\[([^\]\n]*)\]\(([^)\s]*)\)`)

// markdown keeps an action's Markdown, dropping links that are not web
// links (javascript:, data:, …).
func markdown(s string) string {
	s = clean(strings.ReplaceAll(s, "\r\n", "\n"))
	return mdLinkRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := mdLinkRE.FindStringSubmatch(m)
		if chatfmt.IsWebURL(sub[2]) {
			return m
		}
		return sub[1] + " (" + sub[2] + ")"
	})
}

var mdSpecial = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`, "`", "\\`", `#`, `\#`)

// plainText escapes Markdown so the text shows as it is.
func plainText(s string) string { return mdSpecial.Replace(s) }

func mdLink(label, url string) string {
	label = strings.NewReplacer("[", "(", "]", ")").Replace(oneLine(label))
	url = strings.NewReplacer("(", "%28", ")", "%29", " ", "%20").Replace(url)
	return "[" + label + "](" + url + ")"
}

func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func oneLine(s string) string { return strings.Join(strings.Fields(clean(s)), " ") }

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func truncateNote(s string, n int) string {
	c := utf8.RuneCountInString(s)
	if c <= n {
		return s
	}
	r := []rune(s)
	keep := n - 40
	return string(r[:keep]) + fmt.Sprintf("\n\n…truncated (%d more characters)", c-keep)
}
