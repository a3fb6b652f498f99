package slack

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Slack's Block Kit limits (https://api.slack.com/reference/block-kit). A
// message that breaks one is rejected whole with invalid_blocks, so every
// text medic renders goes through these, and what does not fit is split or
// cut with a visible "…truncated" note.
const (
	MaxBlocks       = 50   // blocks in one message
	MaxSectionText  = 3000 // a section's text, a context element's text
	MaxHeaderText   = 150  // a header block's plain text
	MaxButtonText   = 75   // a button's label
	MaxButtonValue  = 2000 // a button's value
	MaxFields       = 10   // fields in one section
	MaxFieldText    = 2000 // one field's text
	MaxContextElems = 10   // elements of a context block
	MaxActionElems  = 25   // elements of an actions block
	// MaxMessageChars bounds the text of one message (Slack's msg_too_long
	// starts at about 40,000 characters): medic stays well below.
	MaxMessageChars = 30000
	// MaxFallbackText bounds the notification text of a message.
	MaxFallbackText = 300
)

// textLen measures text as Slack does at worst: in UTF-16 code units, so an
// emoji counts two.
func textLen(s string) int {
	n := 0
	for _, r := range s {
		n += max(utf16.RuneLen(r), 1)
	}
	return n
}

// cut returns the longest prefix of s that is at most n UTF-16 units long,
// cut at a rune boundary.
func cut(s string, n int) string {
	if textLen(s) <= n {
		return s
	}
	used := 0
	for i, r := range s {
		w := max(utf16.RuneLen(r), 1)
		if used+w > n {
			return s[:i]
		}
		used += w
	}
	return s
}

// truncate cuts s to n units, ending with "…" when it was cut.
func truncate(s string, n int) string {
	if textLen(s) <= n {
		return s
	}
	return cut(s, n-1) + "…"
}

// truncateNote cuts s to n units and says how much was left out.
func truncateNote(s string, n int) string {
	if textLen(s) <= n {
		return s
	}
	note := func(rest int) string { return fmt.Sprintf("\n…truncated (%d more characters)", rest) }
	keep := cut(s, n-textLen(note(len(s)))-len("\n```"))
	return closeFence(keep) + note(textLen(s)-textLen(keep))
}

// splitText splits s into at most maxParts pieces of at most n units, at
// line ends where it can, keeping code fences balanced in every piece; what
// does not fit in maxParts ends the last piece as a "…truncated" note.
func splitText(s string, n, maxParts int) []string {
	const fenceRoom = 8 // "\n```" closing a piece and "```\n" opening the next
	var parts []string
	rest := s
	reopen := false
	for rest != "" {
		if reopen {
			rest = "```\n" + rest
		}
		if textLen(rest) <= n {
			parts = append(parts, rest)
			break
		}
		if len(parts) == maxParts-1 {
			parts = append(parts, truncateNote(rest, n))
			break
		}
		piece := cut(rest, n-fenceRoom)
		if i := strings.LastIndexByte(piece, '\n'); i > len(piece)/2 {
			piece = piece[:i]
		}
		rest = strings.TrimPrefix(rest[len(piece):], "\n")
		reopen = strings.Count(piece, "```")%2 == 1
		if reopen {
			piece += "\n```"
		}
		parts = append(parts, piece)
	}
	return parts
}

// closeFence closes a code fence left open by a cut.
func closeFence(s string) string {
	if strings.Count(s, "```")%2 == 1 {
		return s + "\n```"
	}
	return s
}

// escape makes text from the cluster safe for mrkdwn: only &, < and > are
// special, and escaping < also keeps <!channel>-style mentions out.
func escape(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// clean drops control characters except tab and newline, and replaces
// invalid UTF-8, so nothing odd reaches Slack.
func clean(s string) string {
	ok := utf8.ValidString(s)
	if ok {
		for _, r := range s {
			if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
				ok = false
				break
			}
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// oneLine makes s fit on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(clean(s)), " ")
}
