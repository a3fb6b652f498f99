package rag

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"path"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ChunkOptions size the chunks. Sections are split at headings; neighbouring
// small sections are packed together up to TargetChars; a section longer than
// MaxChars is cut at paragraph (then line) boundaries into windows that
// repeat about OverlapChars of the previous window.
type ChunkOptions struct {
	TargetChars  int
	MaxChars     int
	OverlapChars int
	// WholeFile makes one chunk per file (the evaluation's baseline).
	WholeFile bool
}

// DefaultChunkOptions suit runbooks: most sections fit one chunk, and a
// chunk stays well inside small embedding models' context.
func DefaultChunkOptions() ChunkOptions {
	return ChunkOptions{TargetChars: 900, MaxChars: 1600, OverlapChars: 200}
}

// Document is one parsed file before chunking.
type Document struct {
	Root, Source string
	Title        string
	// Name is the H1 when it differs from Title (runbooks put the alert
	// name there and a spelled-out title in the front matter).
	Name       string
	URL        string
	RunbookFor []string
	Hash       string
	sections   []section
}

type section struct {
	headings []string // path below the H1
	body     string
}

// SupportedFile reports whether ingestion reads the file (markdown, text,
// HTML).
func SupportedFile(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".md", ".markdown", ".mdx", ".txt", ".text", ".html", ".htm":
		return true
	}
	return false
}

// HashContent is the content hash recorded per source.
func HashContent(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ParseDocument reads a markdown, text or HTML file. source is its path
// relative to root, with forward slashes.
func ParseDocument(root, source string, content []byte) *Document {
	d := &Document{Root: root, Source: source, Hash: HashContent(content)}
	text := strings.ReplaceAll(string(content), "\r\n", "\n")
	stem := strings.TrimSuffix(path.Base(source), path.Ext(source))
	var fm frontMatter
	switch strings.ToLower(path.Ext(source)) {
	case ".html", ".htm":
		text = htmlToMarkdown(text)
	case ".txt", ".text":
		// plain text: paragraphs, no headings
	default:
		text, fm = splitFrontMatter(text)
	}
	h1, sections := splitSections(text)
	d.sections = sections
	d.Title = firstNonEmpty(fm.Title, h1, stem)
	if h1 != "" && h1 != d.Title {
		d.Name = h1
	}
	d.URL = firstNonEmpty(fm.RunbookURL, fm.URL)
	// The runbook is for the alert its file is named after and an H1 that
	// is one identifier with a capital (runbooks name their alert there:
	// Watchdog, etcdNoLeader), and for what the front matter lists.
	for _, n := range []string{stem, h1} {
		if identRE.MatchString(n) && strings.ToLower(n) != n && !containsFold(d.RunbookFor, n) {
			d.RunbookFor = append(d.RunbookFor, n)
		}
	}
	for _, n := range fm.Alerts {
		if n = strings.TrimSpace(n); n != "" && !containsFold(d.RunbookFor, n) {
			d.RunbookFor = append(d.RunbookFor, n)
		}
	}
	return d
}

type frontMatter struct {
	Title      string   `yaml:"title"`
	URL        string   `yaml:"url"`
	RunbookURL string   `yaml:"runbook_url"`
	Alerts     []string `yaml:"alerts"`
}

func splitFrontMatter(text string) (string, frontMatter) {
	var fm frontMatter
	if !strings.HasPrefix(text, "---\n") {
		return text, fm
	}
	end := strings.Index(text[4:], "\n---")
	if end < 0 {
		return text, fm
	}
	raw := text[4 : 4+end]
	rest := text[4+end+4:]
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[i+1:]
	} else {
		rest = ""
	}
	// A front matter that is not YAML is kept as text rather than lost.
	var loose map[string]any
	if err := yaml.Unmarshal([]byte(raw), &loose); err != nil {
		return text, fm
	}
	_ = yaml.Unmarshal([]byte(raw), &fm) // best effort: odd field types leave fields empty
	return rest, fm
}

var headingRE = regexp.MustCompile(`^(#{1,6})[ \t]+(.*?)[ \t#]*$`)

// splitSections cuts markdown at ATX headings outside fenced code. The first
// H1 is returned separately; sections carry the heading path below it.
func splitSections(text string) (h1 string, out []section) {
	var (
		path    []string // headings by level-1 index (levels 2..6 → 0..4; H1s after the first → 0)
		body    strings.Builder
		inFence string
	)
	flush := func() {
		b := strings.TrimSpace(body.String())
		body.Reset()
		if b == "" {
			return
		}
		out = append(out, section{headings: compact(path), body: b})
	}
	for line := range strings.SplitSeq(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if fence := fenceMarker(trimmed); fence != "" {
			switch {
			case inFence == "":
				inFence = fence
			case strings.HasPrefix(trimmed, inFence):
				inFence = ""
			}
		}
		if inFence == "" {
			if m := headingRE.FindStringSubmatch(trimmed); m != nil && !strings.HasPrefix(line, "    ") {
				level, title := len(m[1]), cleanInline(m[2])
				if level == 1 && h1 == "" && len(out) == 0 && strings.TrimSpace(body.String()) == "" {
					h1 = title
					continue
				}
				flush()
				idx := max(level-2, 0)
				if len(path) < idx+1 {
					path = append(path, make([]string, idx+1-len(path))...)
				}
				path = append(path[:idx], title)
				continue
			}
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	flush()
	return h1, out
}

func fenceMarker(trimmed string) string {
	for _, f := range []string{"```", "~~~"} {
		if strings.HasPrefix(trimmed, f) {
			return f
		}
	}
	return ""
}

func compact(p []string) []string {
	var out []string
	for _, s := range p {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

var inlineRE = regexp.MustCompile("[`*_]+")

func cleanInline(s string) string { return strings.TrimSpace(inlineRE.ReplaceAllString(s, "")) }

// Chunks cuts the document into chunks.
func (d *Document) Chunks(opts ChunkOptions) []Chunk {
	if opts.TargetChars <= 0 || opts.MaxChars <= 0 {
		opts = DefaultChunkOptions()
	}
	type piece struct {
		heading string
		text    string
	}
	var pieces []piece
	if opts.WholeFile {
		var b strings.Builder
		for _, s := range d.sections {
			if len(s.headings) > 0 {
				b.WriteString("## " + s.headings[len(s.headings)-1] + "\n")
			}
			b.WriteString(s.body + "\n\n")
		}
		pieces = append(pieces, piece{text: strings.TrimSpace(b.String())})
	} else {
		// Pack neighbouring small sections, split long ones.
		var cur piece
		var curHeads [][]string
		emit := func() {
			if cur.text != "" {
				cur.heading = joinHeadings(curHeads)
				pieces = append(pieces, cur)
			}
			cur, curHeads = piece{}, nil
		}
		for _, s := range d.sections {
			head := strings.Join(s.headings, " › ")
			if len(s.body) > opts.MaxChars {
				emit()
				for _, w := range windows(s.body, opts.TargetChars, opts.OverlapChars) {
					pieces = append(pieces, piece{heading: head, text: w})
				}
				continue
			}
			block := s.body
			if cur.text != "" {
				if len(cur.text)+len(s.body) > opts.TargetChars {
					emit()
				} else if head != "" {
					// Keep the packed section's own heading inside the text.
					block = "## " + lastOf(s.headings) + "\n" + s.body
				}
			}
			if cur.text == "" {
				cur.text = s.body
			} else {
				cur.text += "\n\n" + block
			}
			if len(s.headings) > 0 {
				curHeads = append(curHeads, s.headings)
			}
		}
		emit()
	}
	chunks := make([]Chunk, 0, len(pieces))
	for i, p := range pieces {
		c := Chunk{
			Root:       d.Root,
			Source:     d.Source,
			Seq:        i,
			Title:      d.Title,
			Heading:    p.heading,
			Text:       p.text,
			URL:        d.URL,
			RunbookFor: slices.Clone(d.RunbookFor),
			Hash:       d.Hash,
		}
		c.ID = ChunkID(d.Root, d.Source, i)
		c.Alerts = mentionedAlerts(c.RunbookFor, p.text)
		chunks = append(chunks, c)
	}
	return chunks
}

// joinHeadings names packed sections compactly: siblings share their
// parent ("Diagnosis › Slow disk, Other · Mitigation").
func joinHeadings(heads [][]string) string {
	var groups []string
	var parent string
	var leaves []string
	flush := func() {
		if len(leaves) == 0 {
			return
		}
		g := strings.Join(leaves, ", ")
		if parent != "" {
			g = parent + " › " + g
		}
		groups = append(groups, g)
		leaves = nil
	}
	for _, h := range heads {
		p := strings.Join(h[:len(h)-1], " › ")
		leaf := h[len(h)-1]
		if p != parent || len(leaves) == 0 {
			// A section followed by its own children reads as
			// "Section › a, b" rather than "Section · Section › a".
			if n := len(leaves); n > 0 && joinPath(parent, leaves[n-1]) == p {
				leaves = leaves[:n-1]
			}
			flush()
			parent = p
		}
		leaves = append(leaves, leaf)
	}
	flush()
	return strings.Join(groups, " · ")
}

func joinPath(parent, leaf string) string {
	if parent == "" {
		return leaf
	}
	return parent + " › " + leaf
}

func lastOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// windows cuts text at paragraph, then line, then byte boundaries into
// pieces of about target bytes, each starting with up to overlap bytes of
// the previous one's tail (whole lines).
func windows(text string, target, overlap int) []string {
	units := splitUnits(text, target)
	var out []string
	var cur []string
	size := 0
	for _, u := range units {
		if size > 0 && size+len(u) > target {
			out = append(out, strings.Join(cur, "\n"))
			// Carry the tail lines of the window just closed.
			var carry []string
			n := 0
			for i := len(cur) - 1; i >= 0 && n+len(cur[i]) <= overlap; i-- {
				carry = append([]string{cur[i]}, carry...)
				n += len(cur[i]) + 1
			}
			cur, size = carry, n
		}
		cur = append(cur, u)
		size += len(u) + 1
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, "\n"))
	}
	return out
}

// splitUnits returns lines, with a line longer than limit cut at spaces.
func splitUnits(text string, limit int) []string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		for len(line) > limit {
			cut := strings.LastIndexByte(line[:limit], ' ')
			if cut <= 0 {
				cut = limit
			}
			out = append(out, line[:cut])
			line = strings.TrimLeft(line[cut:], " ")
		}
		out = append(out, line)
	}
	return out
}

// ChunkID is stable for a chunk position.
func ChunkID(root, source string, seq int) string {
	h := sha256.New()
	h.Write([]byte(root))
	h.Write([]byte{0})
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte{byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)})
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// identRE is one identifier, as alert names are.
var identRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// IsAlertName reports whether a word mentioned in a runbook looks like an
// alert name: CamelCase with at least three capitals (KubePodCrashLooping,
// KubeAPIDown) or a lower-case prefix and two (etcdNoLeader). Two-word
// names (TargetDown) are only recognised as a document's own name.
func IsAlertName(s string) bool {
	if len(s) < 8 || len(s) > 100 || !identRE.MatchString(s) || strings.ContainsRune(s, '_') {
		return false
	}
	upper, lower := 0, 0
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z':
			upper++
		case r >= 'a' && r <= 'z':
			lower++
		}
	}
	if lower == 0 {
		return false
	}
	if s[0] >= 'a' && s[0] <= 'z' {
		return upper >= 2
	}
	return upper >= 3
}

var wordRE = regexp.MustCompile(`[A-Za-z][A-Za-z0-9]{7,}`)

func mentionedAlerts(own []string, text string) []string {
	out := slices.Clone(own)
	for _, w := range wordRE.FindAllString(text, -1) {
		if IsAlertName(w) && !containsFold(out, w) {
			out = append(out, w)
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// NormalizeURL reduces a runbook URL to what identifies the page: no
// scheme, "www.", query, fragment, trailing slash or .md/.html suffix; lower
// case. Two spellings of one runbook page compare equal.
func NormalizeURL(u string) string {
	u = strings.TrimSpace(u)
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	u = strings.ToLower(strings.TrimSuffix(u, "/"))
	u = strings.TrimPrefix(u, "www.")
	for _, ext := range []string{".md", ".html", ".htm"} {
		u = strings.TrimSuffix(u, ext)
	}
	return u
}

// htmlToMarkdown keeps an HTML page's headings and text.
func htmlToMarkdown(s string) string {
	var b bytes.Buffer
	extractHTML(&b, s)
	return b.String()
}
