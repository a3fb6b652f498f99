package event

import (
	"time"
)

// Finding is what medic reports about one event: the event itself plus the
// evidence the playbooks gathered, in the order they gathered it. Actions
// add Enrichments; sinks render them. Actions never format for a particular
// chat, so every sink can render every enrichment.
type Finding struct {
	// ID equals the event ID: one event yields one finding, whatever number of
	// playbooks contributed to it.
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Severity    Severity `json:"severity"`
	Event       Event    `json:"event"`
	// Playbooks lists the playbooks that ran, in order.
	Playbooks []string `json:"playbooks,omitempty"`
	// PlaybookSet identifies the playbook set the event was handled under
	// (a content hash, or repo@commit for Git sources).
	PlaybookSet string       `json:"playbookSet,omitempty"`
	Enrichments []Enrichment `json:"enrichments,omitempty"`
	CreatedAt   time.Time    `json:"createdAt"`
}

// NewFinding starts a finding from an event with the event's own title,
// description and severity; create_finding may replace them.
func NewFinding(ev Event, now time.Time) *Finding {
	return &Finding{
		ID:          ev.ID,
		Title:       ev.Title,
		Description: ev.Description,
		Severity:    ev.Severity,
		Event:       ev,
		CreatedAt:   now.UTC(),
	}
}

// Add appends an enrichment.
func (f *Finding) Add(e Enrichment) { f.Enrichments = append(f.Enrichments, e) }

// Enrichment is one piece of evidence: a title and the blocks that show it.
type Enrichment struct {
	Title  string  `json:"title"`
	Blocks []Block `json:"blocks"`
	// Source names the action that produced it.
	Source string `json:"source,omitempty"`
}

// BlockKind says which field of a Block is set.
type BlockKind string

// Block kinds every sink must be able to render.
const (
	BlockMarkdown BlockKind = "markdown"
	BlockTable    BlockKind = "table"
	BlockLog      BlockKind = "log"
	BlockLinks    BlockKind = "links"
	BlockImage    BlockKind = "image"
)

// Block is a tagged union: Kind says which one field is set.
type Block struct {
	Kind     BlockKind   `json:"kind"`
	Markdown string      `json:"markdown,omitempty"`
	Table    *TableBlock `json:"table,omitempty"`
	Log      *LogBlock   `json:"log,omitempty"`
	Links    []Link      `json:"links,omitempty"`
	Image    *ImageBlock `json:"image,omitempty"`
}

// TableBlock is a small table; a key-value table has two columns.
type TableBlock struct {
	Headers []string   `json:"headers,omitempty"`
	Rows    [][]string `json:"rows"`
}

// LogBlock is log text with where it came from.
type LogBlock struct {
	Source string `json:"source"` // e.g. "shop/cart-7d9 container app (previous)"
	Text   string `json:"text"`
	// Truncated says lines were dropped before Text, so sinks can say so.
	Truncated bool `json:"truncated,omitempty"`
}

// Link is a labelled URL.
type Link struct {
	Label string `json:"label"`
	URL   string `json:"url"`
}

// ImageBlock is a PNG image (a graph).
type ImageBlock struct {
	Name string `json:"name"`
	PNG  []byte `json:"png"`
}

// MarkdownBlock returns a markdown block.
func MarkdownBlock(text string) Block { return Block{Kind: BlockMarkdown, Markdown: text} }

// KeyValueBlock returns a two-column table from ordered pairs.
func KeyValueBlock(pairs [][2]string) Block {
	rows := make([][]string, 0, len(pairs))
	for _, p := range pairs {
		rows = append(rows, []string{p[0], p[1]})
	}
	return Block{Kind: BlockTable, Table: &TableBlock{Rows: rows}}
}

// LinksBlock returns a block of links.
func LinksBlock(links ...Link) Block { return Block{Kind: BlockLinks, Links: links} }

// LogTextBlock returns a log block.
func LogTextBlock(source, text string, truncated bool) Block {
	return Block{Kind: BlockLog, Log: &LogBlock{Source: source, Text: text, Truncated: truncated}}
}
