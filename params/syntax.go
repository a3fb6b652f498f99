package params

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// TabMsg is how a tab in indentation is reported: yaml's own words ("found
// character that cannot start any token") do not say what to change.
const TabMsg = "tab character used for indentation; YAML needs spaces"

var syntaxLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// SyntaxErrors explains why data is not YAML, each problem at the line
// where it is: every line indented with a tab, then yaml's error unless a
// tab explains it. It returns nil for a document that parses.
//
// yaml.v3 names the line where the enclosing block began, not the line
// that broke it (a key indented one space too little is reported at the
// line of its parent). The first prefix of the document that fails the same
// way ends at the line that broke it, so that is the line reported.
func SyntaxErrors(data []byte) []*Error {
	var probe yaml.Node
	err := yaml.Unmarshal(data, &probe)
	if err == nil {
		return nil
	}
	line, msg := splitSyntaxError(err)
	errs := tabErrors(data)
	if l := breakingLine(data, msg); l > 0 {
		line = l
	}
	for _, e := range errs {
		if e.Line == line || strings.Contains(msg, "tab") {
			return errs // the tab is the cause; yaml's words add nothing
		}
	}
	if indentationMsgs[msg] {
		msg += " (is this line indented like the lines it belongs with?)"
	}
	return append(errs, &Error{Line: line, Column: 1, Msg: "invalid YAML: " + msg})
}

// indentationMsgs are yaml's words for a line indented wrongly.
var indentationMsgs = map[string]bool{
	"did not find expected key":                              true,
	"did not find expected '-' indicator":                    true,
	"mapping values are not allowed in this context":         true,
	"block sequence entries are not allowed in this context": true,
}

func splitSyntaxError(err error) (int, string) {
	s := err.Error()
	if m := syntaxLineRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, strings.TrimPrefix(s, "yaml: ")
}

// tabErrors reports each line whose indentation holds a tab.
func tabErrors(data []byte) []*Error {
	var errs []*Error
	for i, l := range bytes.Split(data, []byte("\n")) {
		indent := l[:len(l)-len(bytes.TrimLeft(l, " \t"))]
		if j := bytes.IndexByte(indent, '\t'); j >= 0 {
			errs = append(errs, &Error{Line: i + 1, Column: j + 1, Msg: TabMsg})
		}
	}
	return errs
}

// breakingLine returns the number of lines in the shortest prefix of data
// that fails to parse with msg, or 0 when none does (the error needs the
// whole document, e.g. an unclosed quote).
func breakingLine(data []byte, msg string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	var prefix []byte
	for i, l := range lines {
		prefix = append(prefix, l...)
		var n yaml.Node
		if err := yaml.Unmarshal(prefix, &n); err != nil {
			if _, m := splitSyntaxError(err); m == msg {
				return i + 1
			}
		}
	}
	return 0
}

// OnlyTabs reports whether every error is a tab in indentation.
func OnlyTabs(errs []*Error) bool {
	for _, e := range errs {
		if e.Msg != TabMsg {
			return false
		}
	}
	return len(errs) > 0
}

// UntabIndent returns data with the tabs in its indentation replaced by
// spaces, at the first tab width (8, 4, 2: widest first, as editors show
// tabs, so parameters stay nested under their parent) that makes it parse, so that a
// checker can go on to report the file's other problems after naming the
// tabs. ok is false when no width helps.
func UntabIndent(data []byte) (out []byte, ok bool) {
	for _, width := range []int{8, 4, 2} {
		var b bytes.Buffer
		for i, l := range bytes.Split(data, []byte("\n")) {
			if i > 0 {
				b.WriteByte('\n')
			}
			rest := bytes.TrimLeft(l, " \t")
			col := 0
			for _, c := range l[:len(l)-len(rest)] {
				if c == '\t' {
					col += width - col%width
				} else {
					col++
				}
			}
			b.Write(bytes.Repeat([]byte(" "), col))
			b.Write(rest)
		}
		var n yaml.Node
		if yaml.Unmarshal(b.Bytes(), &n) == nil {
			return b.Bytes(), true
		}
	}
	return nil, false
}
