// Package rag is medic's knowledge base and AI: it chunks runbooks, keeps
// them in a Store (embedded on local disk, or Weaviate), retrieves the ones
// that match a finding, and asks an OpenAI-compatible model to explain the
// finding with numbered citations to them.
//
// This package holds the shapes and the logic that needs no server: chunking,
// ingestion, retrieval, redaction, prompts and the Answerer. The stores and
// the model client live in subpackages (rag/embedded, rag/weaviate,
// rag/openai, rag/kvcache) so that importing the shapes stays cheap.
package rag

import (
	"context"
	"errors"
)

// ErrNotConfigured is returned by every AI feature when no chat model is
// configured. Its message is what users see.
var ErrNotConfigured = errors.New("AI is not configured")

// Chunk is one retrievable piece of a document: a section under its
// headings, with the document's metadata.
type Chunk struct {
	// ID is stable for (Root, Source, Seq), so re-ingesting overwrites.
	ID string `json:"id"`
	// Root names what was ingested (a folder, a Git URL, "default").
	Root string `json:"root"`
	// Source is the file's path relative to Root, with forward slashes.
	Source string `json:"source"`
	// Seq orders the chunks of one source, from 0.
	Seq     int    `json:"seq"`
	Title   string `json:"title"`
	Heading string `json:"heading,omitempty"`
	Text    string `json:"text"`
	// URL is the runbook's published page, when known.
	URL string `json:"url,omitempty"`
	// Alerts are the alert names this chunk names (including the
	// document's own).
	Alerts []string `json:"alerts,omitempty"`
	// RunbookFor are the alerts the whole document is the runbook for: its
	// file name, an alert-like H1, a front-matter `alerts:` list.
	RunbookFor []string `json:"runbookFor,omitempty"`
	// Hash is the SHA-256 of the source file; unchanged files are skipped.
	Hash string `json:"hash"`
	// EmbeddingModel produced Vector ("" when the chunk has none).
	EmbeddingModel string    `json:"embeddingModel,omitempty"`
	Vector         []float32 `json:"-"`
}

// SearchText is what both the lexical index and the embedding model see
// besides the title: the heading path and the text.
func (c *Chunk) SearchText() string {
	if c.Heading == "" {
		return c.Title + "\n" + c.Text
	}
	return c.Title + "\n" + c.Heading + "\n" + c.Text
}

// SourceInfo describes one ingested file.
type SourceInfo struct {
	Root           string `json:"root"`
	Source         string `json:"source"`
	Hash           string `json:"hash"`
	EmbeddingModel string `json:"embeddingModel,omitempty"`
}

// Query asks a Store for chunks. Text is searched lexically (BM25); Vector,
// when set, is searched too and the two rankings are fused with Alpha
// (0 = lexical only, 1 = vectors only). The filters narrow the candidates;
// with filters and no Text every matching chunk comes back in source order.
type Query struct {
	Text   string
	Vector []float32
	TopK   int
	// Alpha overrides the store's configured weight when non-nil.
	Alpha *float64
	// RunbookURL keeps chunks whose document's URL equals it (normalised
	// with NormalizeURL).
	RunbookURL string
	// Alert keeps chunks of documents that are the runbook for this alert.
	Alert string
}

// Hit is a chunk with its score. Direct hits were linked by the alert's
// runbook_url or name rather than found by search.
type Hit struct {
	Chunk
	Score  float64 `json:"score"`
	Direct bool    `json:"direct,omitempty"`
}

// Store keeps chunks and searches them. Implementations are safe for
// concurrent use.
type Store interface {
	// Upsert stores chunks. For each (Root, Source) present, the chunks
	// given replace every chunk stored before, so a source's chunks must
	// come in one call.
	Upsert(ctx context.Context, chunks []Chunk) error
	// DeleteSource removes every chunk of one source.
	DeleteSource(ctx context.Context, root, source string) error
	Search(ctx context.Context, q Query) ([]Hit, error)
	// Sources lists the ingested files, for incremental ingestion.
	Sources(ctx context.Context) ([]SourceInfo, error)
	// Version changes whenever the content changes (answers are cached
	// per version).
	Version(ctx context.Context) (string, error)
	// DeleteAll empties the knowledge base, vector index included (a new
	// embedding model may have other dimensions).
	DeleteAll(ctx context.Context) error
	Close() error
}

// Embedder turns texts into vectors.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	// EmbeddingModel identifies the vectors' space.
	EmbeddingModel() string
}

// Message is one chat message.
type Message struct {
	Role    string `json:"role"` // system, user, assistant
	Content string `json:"content"`
}

// ChatRequest asks a chat model for one answer.
type ChatRequest struct {
	Messages []Message
	// Model overrides the client's configured chat model.
	Model     string
	MaxTokens int
}

// ChatResponse is a finished answer.
type ChatResponse struct {
	Content      string
	Model        string
	FinishReason string
	PromptTokens int
	OutputTokens int
}

// Chat talks to a chat model. Stream calls onDelta with each piece of text
// as it arrives and returns the whole answer at the end.
type Chat interface {
	Complete(ctx context.Context, req ChatRequest) (ChatResponse, error)
	Stream(ctx context.Context, req ChatRequest, onDelta func(string) error) (ChatResponse, error)
	// ChatModel is the configured default model.
	ChatModel() string
}

// Cache keeps answers by key (see Answerer) for a while.
type Cache interface {
	Get(ctx context.Context, key string) (Answer, bool, error)
	Put(ctx context.Context, key string, a Answer) error
}
