package event

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

// TrimmedSource marks the enrichment TrimToFit adds to say what it trimmed.
const TrimmedSource = "trimmed"

// trimKeep is what TrimToFit keeps of a trimmed text at least: a third
// from its head and the rest from its tail, where a log's last lines are.
const trimKeep = 768

// trimSlack is how many bytes a cut removes beyond what is needed, so that
// the marker put in the text and the note's growing counts fit too.
const trimSlack = 192

// ErrCannotFit is returned, wrapped, by TrimToFit when even the finding
// with all its evidence trimmed is larger than the limit: what is left
// (labels, titles, the event's identity) is not evidence to cut.
var ErrCannotFit = errors.New("the finding does not fit even with its evidence trimmed")

// TrimTarget is what a finding is trimmed to fit, as its markers and its
// note name it.
type TrimTarget struct {
	// Limit ends each marker: "…trimmed N bytes to fit <Limit>…".
	Limit string
	// Receiver and Fix complete the note: "This finding was larger than
	// <Receiver> accepts: N bytes of evidence were trimmed from P parts to
	// fit <Limit>. <Fix>"
	Receiver, Fix string
}

// BusTarget is the event bus's max payload of maxPayload bytes.
func BusTarget(maxPayload int) TrimTarget {
	return TrimTarget{
		Limit:    fmt.Sprintf("the bus's max payload (%d bytes)", maxPayload),
		Receiver: "the event bus",
		Fix:      "Raise max_payload on the NATS server to keep findings whole.",
	}
}

// TrimToFit is TrimToFitFor the bus (BusTarget).
func (f *Finding) TrimToFit(limit, maxPayload int) (int, error) {
	return f.TrimToFitFor(limit, BusTarget(maxPayload))
}

// TrimToFitFor shrinks f until MarshalFinding encodes it in at most limit
// bytes; to names the limit in the markers and the note.
//
// A finding is what an on-call reads, so it is trimmed rather than
// dropped, the part with the most to give first, until it fits. A text (a
// log tail, markdown, a table cell, the description, an annotation) is cut
// in the middle, keeping its head and its tail around a visible marker
// "…trimmed N bytes to fit the bus's max payload (M bytes)…"; a table, a
// list of links or an image, which cannot be cut so, is replaced by such a
// marker. A note at the
// end of the finding says how much was trimmed and how to keep it whole.
// It returns the bytes removed, 0 when f already fit.
func (f *Finding) TrimToFitFor(limit int, to TrimTarget) (int, error) {
	if f.sizeBound() <= limit {
		return 0, nil // the common finding: no encoding to measure it
	}
	data, err := MarshalFinding(f)
	if err != nil {
		return 0, fmt.Errorf("encode finding %s: %w", f.ID, err)
	}
	if len(data) <= limit {
		return 0, nil
	}
	t := trimmer{to: to}
	t.collect(f)
	f.Add(Enrichment{Title: "Trimmed", Source: TrimmedSource, Blocks: []Block{MarkdownBlock("")}})
	note := &f.Enrichments[len(f.Enrichments)-1].Blocks[0]
	for {
		note.Markdown = t.note()
		if data, err = MarshalFinding(f); err != nil {
			return t.removed(), fmt.Errorf("encode finding %s: %w", f.ID, err)
		}
		if len(data) <= limit {
			return t.removed(), nil
		}
		if !t.cut(len(data) - limit + trimSlack) {
			return t.removed(), fmt.Errorf("%w: %d bytes encoded, limit %d", ErrCannotFit, len(data), limit)
		}
	}
}

// trimmer holds what TrimToFit may cut.
type trimmer struct {
	to     TrimTarget
	texts  []*trimText
	blocks []*trimBlock
}

// trimText is one text that can be cut in the middle.
type trimText struct {
	orig    string
	set     func(string)
	cut     int // bytes of orig removed so far
	onTrim  func()
	stopped bool // cutting more removes nothing
}

// trimBlock is a block that can only be replaced whole.
type trimBlock struct {
	b       *Block
	size    int
	dropped bool
}

func (t *trimmer) collect(f *Finding) {
	text := func(s *string, onTrim func()) {
		if len(*s) > trimKeep {
			t.texts = append(t.texts, &trimText{orig: *s, set: func(v string) { *s = v }, onTrim: onTrim})
		}
	}
	text(&f.Description, nil)
	text(&f.Event.Description, nil)
	if len(f.Event.Annotations) > 0 {
		// The map may be shared with the event the finding was made from.
		f.Event.Annotations = maps.Clone(f.Event.Annotations)
		for _, k := range slices.Sorted(maps.Keys(f.Event.Annotations)) {
			if v := f.Event.Annotations[k]; len(v) > trimKeep {
				t.texts = append(t.texts, &trimText{orig: v, set: func(v string) { f.Event.Annotations[k] = v }})
			}
		}
	}
	for i := range f.Enrichments {
		blocks := f.Enrichments[i].Blocks
		for j := range blocks {
			b := &blocks[j]
			switch {
			case b.Kind == BlockMarkdown:
				text(&b.Markdown, nil)
			case b.Kind == BlockLog && b.Log != nil:
				log := b.Log
				text(&log.Text, func() { log.Truncated = true })
			default:
				if b.Table != nil {
					for _, row := range b.Table.Rows {
						for c := range row {
							text(&row[c], nil)
						}
					}
				}
				if enc, err := gojson.Marshal(b); err == nil && len(enc) > trimKeep {
					t.blocks = append(t.blocks, &trimBlock{b: b, size: len(enc)})
				}
			}
		}
	}
}

// cut removes about need more bytes from the part with the most to give:
// a text is cut in the middle, a block replaced whole. It reports false
// when nothing is left to remove.
func (t *trimmer) cut(need int) bool {
	var best *trimText
	for _, x := range t.texts {
		if !x.stopped && (best == nil || x.left() > best.left()) {
			best = x
		}
	}
	var big *trimBlock
	for _, b := range t.blocks {
		if !b.dropped && (big == nil || b.size > big.size) {
			big = b
		}
	}
	switch {
	case best != nil && best.left() > 0 && (big == nil || best.left() >= big.size):
		before := best.cut
		best.apply(min(best.cut+need, len(best.orig)-trimKeep), t.to.Limit)
		if best.cut == before {
			best.stopped = true
		}
		return true
	case big != nil:
		big.dropped = true
		if enc, err := gojson.Marshal(big.b); err == nil {
			big.size = len(enc) // its cells may have been trimmed first
		}
		*big.b = MarkdownBlock(fmt.Sprintf("…%s of %d bytes trimmed to fit %s…", kindName(big.b.Kind), big.size, t.to.Limit))
		return true
	}
	return false
}

func (x *trimText) left() int {
	if x.stopped {
		return 0
	}
	return len(x.orig) - trimKeep - x.cut
}

// apply cuts n bytes out of the middle of the original text, on rune
// boundaries, keeping a third of what stays from the head.
func (x *trimText) apply(n int, limit string) {
	keep := len(x.orig) - n
	head := keep / 3
	tail := len(x.orig) - (keep - head)
	for head > 0 && !utf8.RuneStart(x.orig[head]) {
		head--
	}
	for tail < len(x.orig) && !utf8.RuneStart(x.orig[tail]) {
		tail++
	}
	if tail-head <= x.cut {
		return
	}
	x.cut = tail - head
	x.set(x.orig[:head] + fmt.Sprintf("\n…trimmed %d bytes to fit %s…\n", x.cut, limit) + x.orig[tail:])
	if x.onTrim != nil {
		x.onTrim()
	}
}

func (t *trimmer) removed() int {
	n := 0
	for _, x := range t.texts {
		n += x.cut
	}
	for _, b := range t.blocks {
		if b.dropped {
			n += b.size
		}
	}
	return n
}

func (t *trimmer) note() string {
	parts := 0
	for _, x := range t.texts {
		if x.cut > 0 {
			parts++
		}
	}
	for _, b := range t.blocks {
		if b.dropped {
			parts++
		}
	}
	return fmt.Sprintf("This finding was larger than %s accepts: %d bytes of evidence were trimmed from %d parts to fit %s. %s",
		t.to.Receiver, t.removed(), parts, t.to.Limit, t.to.Fix)
}

func kindName(k BlockKind) string {
	switch k {
	case BlockTable:
		return "a table"
	case BlockLinks:
		return "a list of links"
	case BlockImage:
		return "an image"
	}
	return "a block of kind " + string(k)
}

// sizeBound is more than MarshalFinding can make of f: every string at most
// six times its length (a byte escaped as \u00XX), bytes as base64, and a
// generous allowance for the keys and punctuation of each element. Walking
// f costs a fraction of encoding it, which TrimToFit then skips for every
// finding that cannot be too large.
func (f *Finding) sizeBound() int {
	const (
		perFinding = 1024 // the finding's and the event's keys, times, severity
		perElement = 48   // a map entry, a cell, a row, a link, a string in a list
		perBlock   = 192  // a block's kind and the keys of its one set field
	)
	n := len(f.ID) + len(f.Title) + len(f.Description) + len(f.PlaybookSet)
	e := &f.Event
	n += len(e.ID) + len(e.Kind) + len(e.Source) + len(e.Status) + len(e.Severity) + len(e.Title) + len(e.Description) +
		len(e.Subject.Kind) + len(e.Subject.Namespace) + len(e.Subject.Name) + len(e.Subject.Container) + len(e.Subject.Node) +
		len(e.Fingerprint) + len(e.GeneratorURL) + len(e.ExternalURL) + len(e.Raw)
	elems := len(e.Labels) + len(e.Annotations) + len(f.Playbooks) + len(f.PlaybookSources)
	for k, v := range e.Labels {
		n += len(k) + len(v)
	}
	for k, v := range e.Annotations {
		n += len(k) + len(v)
	}
	for _, s := range f.Playbooks {
		n += len(s)
	}
	for _, s := range f.PlaybookSources {
		n += len(s.Playbook) + len(s.Location) + len(s.Repo) + len(s.Commit)
	}
	if f.AskAI != nil {
		n += len(f.AskAI.Model)
		elems++
	}
	for _, p := range f.Proposed {
		t := &p.Target
		n += len(p.ID) + len(p.Action) + len(p.Params) + len(p.Summary) +
			len(t.Kind) + len(t.Namespace) + len(t.Name) + len(t.Container) + len(t.Node)
		elems += 10
	}
	extra := perFinding
	for i := range f.Enrichments {
		en := &f.Enrichments[i]
		n += len(en.Title) + len(en.Source)
		elems++
		for j := range en.Blocks {
			b := &en.Blocks[j]
			extra += perBlock
			n += len(b.Kind) + len(b.Markdown)
			if b.Log != nil {
				n += len(b.Log.Source) + len(b.Log.Text)
			}
			if b.Image != nil {
				n += len(b.Image.Name)
				extra += (len(b.Image.PNG) + 2) / 3 * 4 // base64, never escaped
			}
			for _, l := range b.Links {
				n += len(l.Label) + len(l.URL)
				elems++
			}
			if b.Table != nil {
				for _, h := range b.Table.Headers {
					n += len(h)
					elems++
				}
				for _, row := range b.Table.Rows {
					elems++
					for _, c := range row {
						n += len(c)
						elems++
					}
				}
			}
		}
	}
	return 6*n + perElement*elems + extra
}
