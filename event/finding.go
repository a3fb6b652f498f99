package event

import (
	"slices"
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

	// PlaybookSources says where each playbook in Playbooks was declared
	// (same order): the file and line, and for Git sources the repository
	// and commit, so a team can tell which change produced a notification.
	PlaybookSources []PlaybookSource `json:"playbookSources,omitempty"`

	// AskAI is set by ask_ai in button mode: chat sinks offer an "Ask AI"
	// button, which calls the answer function with these settings.
	AskAI *AskAI `json:"askAI,omitempty"`

	// Silenced is set by a silencer action (severity_silencer,
	// pod_status_silencer, …): the playbooks stop there and the finding
	// reaches no sink. It is kept so an operator can still see what was
	// silenced and why.
	Silenced *Silence `json:"silenced,omitempty"`

	// Proposed lists the remediations a playbook proposed instead of
	// running them: each waits for an approver to press its button.
	Proposed []ProposedAction `json:"proposed,omitempty"`
}

// Silence says who silenced a finding and why.
type Silence struct {
	// By names the silencer: the action, and the playbook it ran in
	// ("severity_silencer in playbook noise").
	By     string `json:"by"`
	Reason string `json:"reason"`
}

// ProposedAction is a remediation that runs only once a person approves it
// (actions/remediate, interact). It records what will run on what, so the
// approver approves exactly what they see.
type ProposedAction struct {
	// ID tells the finding's proposals apart (a short hash of the rest).
	ID string `json:"id"`
	// Action is the remediation action's name, Params its parameters as
	// YAML: what is run on approval.
	Action string `json:"action"`
	Params string `json:"params,omitempty"`
	// Target is the object it acts on, resolved when it was proposed.
	Target Subject `json:"target"`
	// Summary says in a line what pressing the button does.
	Summary string `json:"summary"`
}

// AskAI carries ask_ai's settings to the sinks' "Ask AI" button.
type AskAI struct {
	// Model and MaxTokens override the configured ones when set.
	Model     string `json:"model,omitempty"`
	MaxTokens int    `json:"maxTokens,omitempty"`
}

// PlaybookSource is where one playbook of a finding was declared.
type PlaybookSource struct {
	Playbook string `json:"playbook"`
	// Location is file:line ("team@1a2b3c4:alerts/crash.yaml:12" for Git).
	Location string `json:"location"`
	// Repo and Commit are set for playbooks from a Git repository.
	Repo   string `json:"repo,omitempty"`
	Commit string `json:"commit,omitempty"`
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

// RedactionSource is the Source of the enrichment that says what medic
// redacted from a finding. It comes last, and a sink that must cut a finding
// to fit keeps it: a reader who meets [REDACTED] learns from it what was
// removed, and a cut that dropped it would hide that the finding was
// redacted at all.
const RedactionSource = "redaction"

// WithoutRedaction returns a copy of the enrichments without the one saying
// what was redacted, for a renderer that places that one itself.
func (f *Finding) WithoutRedaction() []Enrichment {
	return slices.DeleteFunc(slices.Clone(f.Enrichments), func(e Enrichment) bool { return e.Source == RedactionSource })
}

// Redaction returns the enrichment saying what was redacted, nil when the
// finding has none.
func (f *Finding) Redaction() *Enrichment {
	for i := len(f.Enrichments) - 1; i >= 0; i-- {
		if f.Enrichments[i].Source == RedactionSource {
			return &f.Enrichments[i]
		}
	}
	return nil
}

// Enrichment is one piece of evidence: a title and the blocks that show it.
type Enrichment struct {
	Title  string  `json:"title"`
	Blocks []Block `json:"blocks"`
	// Source names the action that produced it.
	Source string `json:"source,omitempty"`
	// Collapsed marks detail an on-call reader rarely needs in the chat
	// message (the AI's tool-call transcript): chat sinks show its first
	// block, a summary, and keep the rest behind a toggle (Teams) or on the
	// finding page (Slack); the file sink and the page show it whole.
	Collapsed bool `json:"collapsed,omitempty"`
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
