package repocheck

import (
	"fmt"
	"regexp"
	"strings"
)

// Snippet is one fenced code block of a markdown file.
type Snippet struct {
	// File is the markdown file's path relative to the repository root.
	File string
	// Line is the 1-based line of the opening fence.
	Line int
	// Info is the fence's info string ("yaml", "sh", or "").
	Info string
	// Text is the block's content, the fence's indentation removed (blocks
	// inside list items are indented).
	Text string
	// Marker is the `<!-- snippet: ... -->` comment on the last non-blank
	// line before the fence, without the comment syntax ("not-checked
	// (why)"), or "" when there is none.
	Marker string
}

func (s Snippet) String() string { return fmt.Sprintf("%s:%d", s.File, s.Line) }

var (
	fenceOpen = regexp.MustCompile("^( *)(```+|~~~+)\\s*([^`\\s]*)")
	marker    = regexp.MustCompile(`^\s*<!--\s*snippet:\s*(.*?)\s*-->\s*$`)
)

// Extract returns the fenced code blocks of a markdown document (CommonMark
// fences of backticks or tildes, possibly indented). An unclosed fence is an
// error, since everything after it would silently go unchecked.
func Extract(file string, md string) ([]Snippet, error) {
	lines := strings.Split(md, "\n")
	var out []Snippet
	for i := 0; i < len(lines); i++ {
		m := fenceOpen.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, fence := m[1], m[2]
		s := Snippet{File: file, Line: i + 1, Info: m[3]}
		for j := i - 1; j >= 0; j-- {
			if strings.TrimSpace(lines[j]) == "" {
				continue
			}
			if mm := marker.FindStringSubmatch(lines[j]); mm != nil {
				s.Marker = mm[1]
			}
			break
		}
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			t := strings.TrimLeft(lines[i], " ")
			if strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]+" ") == "" {
				closed = true
				break
			}
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		if !closed {
			return nil, fmt.Errorf("%s: the fence opened here is never closed", s)
		}
		s.Text = strings.Join(body, "\n") + "\n"
		out = append(out, s)
	}
	return out, nil
}

// NotChecked returns the reason of a `snippet: not-checked (reason)`
// marker, and whether the snippet has one.
func (s Snippet) NotChecked() (reason string, ok bool) {
	rest, ok := strings.CutPrefix(s.Marker, "not-checked")
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "(") && strings.HasSuffix(rest, ")") {
		rest = rest[1 : len(rest)-1]
	}
	return strings.TrimSpace(rest), true
}
