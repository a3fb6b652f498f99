// Package embedded is medic's default knowledge-base store: it needs no
// server and keeps everything under one folder (<data_dir>/kb).
//
// The chunks are kept in a bleve v2 index (scorch), which stores them and
// answers the filtered look-ups (by source, runbook URL, alert name). The
// search itself ranks runbooks, not chunks, with rag/lexical: a fielded
// BM25 computed in process over every runbook (title, headings, alert
// names, body), with query-time synonyms. bleve's own BM25 is not used for
// ranking: as configured it counted idf twice, computed it per field, and
// its statistics changed with segment merges (see rag/lexical). The
// in-memory index is rebuilt from the stored chunks after every change.
//
// Vectors, when an embedding model is configured, live in a chromem-go
// persistent collection (exhaustive cosine search, which is exact and fast
// at knowledge-base sizes). A hybrid search fuses the two rankings at
// runbook level with alpha-weighted reciprocal-rank fusion:
// score = (1-α)/(k+rank_lexical) + α/(k+rank_vector), k = 60, where a
// runbook's vector rank is that of its best chunk.
package embedded

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/camelcase"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/token/porter"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"
	"github.com/philippgille/chromem-go"

	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/lexical"
)

// Options configure the store.
type Options struct {
	// Dir holds the index (created when missing).
	Dir string
	// Alpha weighs vectors against BM25 in hybrid searches (0..1; 0.5 when
	// zero and not set explicitly through AlphaSet).
	Alpha    float64
	AlphaSet bool
	// Synonyms are groups added to lexical.DefaultSynonyms
	// (knowledge_base.synonyms).
	Synonyms [][]string
}

// Store is the embedded knowledge base. It is safe for concurrent use. One
// process at a time may open a folder.
type Store struct {
	dir   string
	alpha float64
	idx   bleve.Index
	vdb   *chromem.DB
	vecs  *chromem.Collection

	syn *lexical.Synonyms

	mu      sync.Mutex // serialises writes; guards version
	version string

	lexMu sync.Mutex // guards lex
	lex   *lexIndex  // nil after a change: rebuilt by the next search
}

// lexIndex is the in-memory ranking index and where each chunk ID belongs.
type lexIndex struct {
	ix    *lexical.Index
	docOf map[string]string // chunk ID → runbook key
}

const (
	analyzerName = "medic_en"
	rrfK         = 60.0
	// maxChunks bounds the per-source and listing queries.
	maxChunks = 1_000_000
)

// Open opens or creates the store in opts.Dir.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("embedded store: no folder")
	}
	alpha := opts.Alpha
	if !opts.AlphaSet && alpha == 0 {
		alpha = 0.5
	}
	if alpha < 0 || alpha > 1 {
		return nil, fmt.Errorf("embedded store: alpha %v is outside 0..1", alpha)
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	syn, err := lexical.NewSynonyms(opts.Synonyms)
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	s := &Store{dir: opts.Dir, alpha: alpha, syn: syn}
	idxPath := filepath.Join(opts.Dir, "bleve")
	// A second process would wait forever for the index's lock; fail instead.
	runtimeCfg := map[string]any{"bolt_timeout": "3s"}
	idx, err := bleve.OpenUsing(idxPath, runtimeCfg)
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		var m *mapping.IndexMappingImpl
		if m, err = indexMapping(); err == nil {
			idx, err = bleve.NewUsing(idxPath, m, bleve.Config.DefaultIndexType, bleve.Config.DefaultKVStore, runtimeCfg)
		}
	}
	if err != nil {
		if strings.Contains(err.Error(), "timeout") {
			return nil, fmt.Errorf("embedded store %s is in use by another process (a running medic?): %w", opts.Dir, err)
		}
		return nil, fmt.Errorf("embedded store: open index %s: %w", idxPath, err)
	}
	s.idx = idx
	s.vdb, err = chromem.NewPersistentDB(filepath.Join(opts.Dir, "vectors"), false)
	if err != nil {
		_ = idx.Close()
		return nil, fmt.Errorf("embedded store: open vectors: %w", err)
	}
	s.vecs, err = s.vdb.GetOrCreateCollection("chunks", nil, noEmbed)
	if err != nil {
		_ = idx.Close()
		return nil, fmt.Errorf("embedded store: vectors: %w", err)
	}
	return s, nil
}

// noEmbed is the collection's embedding function: vectors always come with
// the chunks; the collection never embeds.
func noEmbed(context.Context, string) ([]float32, error) {
	return nil, errors.New("embedded store: vectors must be supplied")
}

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

// Close releases the index.
func (s *Store) Close() error { return s.idx.Close() }

func indexMapping() (*mapping.IndexMappingImpl, error) {
	m := bleve.NewIndexMapping()
	m.ScoringModel = index.BM25Scoring
	if err := m.AddCustomAnalyzer(analyzerName, map[string]any{
		"type":      custom.Name,
		"tokenizer": unicode.Name,
		"token_filters": []any{
			en.PossessiveName, camelcase.Name, lowercase.Name, en.StopName, porter.Name,
		},
	}); err != nil {
		return nil, err
	}
	m.DefaultAnalyzer = analyzerName
	text := func(store bool) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = analyzerName
		f.Store = store
		f.IncludeTermVectors = false
		f.IncludeInAll = false
		return f
	}
	kw := func(store, idx bool) *mapping.FieldMapping {
		f := bleve.NewKeywordFieldMapping()
		f.Analyzer = keyword.Name
		f.Store = store
		f.Index = idx
		f.IncludeTermVectors = false
		f.IncludeInAll = false
		f.DocValues = false
		return f
	}
	doc := bleve.NewDocumentStaticMapping()
	doc.AddFieldMappingsAt("title", text(true))
	doc.AddFieldMappingsAt("heading", text(true))
	doc.AddFieldMappingsAt("text", text(true))
	doc.AddFieldMappingsAt("root", kw(true, true))
	doc.AddFieldMappingsAt("source", kw(true, true))
	doc.AddFieldMappingsAt("key", kw(false, true))
	doc.AddFieldMappingsAt("first", kw(false, true))
	doc.AddFieldMappingsAt("url", kw(true, false))
	doc.AddFieldMappingsAt("urlkey", kw(false, true))
	doc.AddFieldMappingsAt("alerts", kw(true, false))
	doc.AddFieldMappingsAt("runbook_for", kw(true, false))
	doc.AddFieldMappingsAt("runbook_key", kw(false, true))
	doc.AddFieldMappingsAt("hash", kw(true, false))
	doc.AddFieldMappingsAt("embedding_model", kw(true, false))
	order := kw(true, true)
	order.DocValues = true // sorted on
	doc.AddFieldMappingsAt("order", order)
	seq := bleve.NewNumericFieldMapping()
	seq.Store = true
	seq.Index = false
	seq.IncludeInAll = false
	doc.AddFieldMappingsAt("seq", seq)
	m.DefaultMapping = doc
	m.IndexDynamic = false
	m.StoreDynamic = false
	m.DocValuesDynamic = false
	return m, nil
}

// indexed is the document bleve stores for a chunk.
type indexed struct {
	Title          string   `json:"title"`
	Heading        string   `json:"heading"`
	Text           string   `json:"text"`
	Root           string   `json:"root"`
	Source         string   `json:"source"`
	Key            string   `json:"key"`
	First          string   `json:"first,omitempty"`
	URL            string   `json:"url"`
	URLKey         string   `json:"urlkey"`
	Alerts         []string `json:"alerts"`
	RunbookFor     []string `json:"runbook_for"`
	RunbookKey     []string `json:"runbook_key"`
	Hash           string   `json:"hash"`
	EmbeddingModel string   `json:"embedding_model"`
	Order          string   `json:"order"`
	Seq            float64  `json:"seq"`
}

func sourceKey(root, source string) string { return root + "\x00" + source }

func toIndexed(c *rag.Chunk) indexed {
	d := indexed{
		Title:          c.Title,
		Heading:        c.Heading,
		Text:           c.Text,
		Root:           c.Root,
		Source:         c.Source,
		Key:            sourceKey(c.Root, c.Source),
		URL:            c.URL,
		Alerts:         c.Alerts,
		RunbookFor:     c.RunbookFor,
		Hash:           c.Hash,
		EmbeddingModel: c.EmbeddingModel,
		Order:          fmt.Sprintf("%s\x00%s\x00%08d", c.Root, c.Source, c.Seq),
		Seq:            float64(c.Seq),
	}
	if c.URL != "" {
		d.URLKey = rag.NormalizeURL(c.URL)
	}
	for _, a := range c.RunbookFor {
		d.RunbookKey = append(d.RunbookKey, strings.ToLower(a))
	}
	if c.Seq == 0 {
		d.First = "1"
	}
	return d
}

// Upsert implements rag.Store.
func (s *Store) Upsert(ctx context.Context, chunks []rag.Chunk) error {
	if len(chunks) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version = ""
	defer s.invalidate()
	keys := map[string][2]string{}
	for i := range chunks {
		c := &chunks[i]
		if c.ID == "" {
			c.ID = rag.ChunkID(c.Root, c.Source, c.Seq)
		}
		keys[sourceKey(c.Root, c.Source)] = [2]string{c.Root, c.Source}
	}
	b := s.idx.NewBatch()
	for k := range keys {
		ids, err := s.idsOf(ctx, k)
		if err != nil {
			return err
		}
		for _, id := range ids {
			b.Delete(id)
		}
	}
	for i := range chunks {
		if err := b.Index(chunks[i].ID, toIndexed(&chunks[i])); err != nil {
			return fmt.Errorf("index %s#%d: %w", chunks[i].Source, chunks[i].Seq, err)
		}
	}
	if err := s.idx.Batch(b); err != nil {
		return fmt.Errorf("index batch: %w", err)
	}
	// Vectors after the index: a crash in between leaves chunks without
	// vectors, which the next ingestion re-embeds (their model is recorded
	// only in the index, and a missing vector just drops out of the vector
	// ranking).
	for _, k := range keys {
		if err := s.vecs.Delete(ctx, map[string]string{"key": sourceKey(k[0], k[1])}, nil); err != nil {
			return fmt.Errorf("delete vectors: %w", err)
		}
	}
	var docs []chromem.Document
	for i := range chunks {
		c := &chunks[i]
		if len(c.Vector) == 0 {
			continue
		}
		docs = append(docs, chromem.Document{
			ID:        c.ID,
			Metadata:  map[string]string{"key": sourceKey(c.Root, c.Source), "model": c.EmbeddingModel},
			Embedding: c.Vector,
		})
	}
	if len(docs) > 0 {
		if err := s.vecs.AddDocuments(ctx, docs, 1); err != nil {
			return fmt.Errorf("store vectors: %w", err)
		}
	}
	return nil
}

// DeleteSource implements rag.Store.
func (s *Store) DeleteSource(ctx context.Context, root, source string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version = ""
	defer s.invalidate()
	k := sourceKey(root, source)
	ids, err := s.idsOf(ctx, k)
	if err != nil {
		return err
	}
	if err := s.vecs.Delete(ctx, map[string]string{"key": k}, nil); err != nil {
		return fmt.Errorf("delete vectors: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	b := s.idx.NewBatch()
	for _, id := range ids {
		b.Delete(id)
	}
	return s.idx.Batch(b)
}

func (s *Store) idsOf(ctx context.Context, key string) ([]string, error) {
	q := bleve.NewTermQuery(key)
	q.SetField("key")
	req := bleve.NewSearchRequestOptions(q, maxChunks, 0, false)
	req.Score = "none"
	res, err := s.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("find chunks: %w", err)
	}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.ID
	}
	return ids, nil
}

// DeleteAll implements rag.Store.
func (s *Store) DeleteAll(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version = ""
	defer s.invalidate()
	req := bleve.NewSearchRequestOptions(bleve.NewMatchAllQuery(), maxChunks, 0, false)
	req.Score = "none"
	res, err := s.idx.SearchInContext(ctx, req)
	if err != nil {
		return fmt.Errorf("list chunks: %w", err)
	}
	b := s.idx.NewBatch()
	for _, h := range res.Hits {
		b.Delete(h.ID)
	}
	if err := s.idx.Batch(b); err != nil {
		return err
	}
	if err := s.vdb.DeleteCollection("chunks"); err != nil {
		return fmt.Errorf("delete vectors: %w", err)
	}
	s.vecs, err = s.vdb.GetOrCreateCollection("chunks", nil, noEmbed)
	return err
}

// Sources implements rag.Store: the first chunk of every source carries its
// metadata.
func (s *Store) Sources(ctx context.Context) ([]rag.SourceInfo, error) {
	q := bleve.NewTermQuery("1")
	q.SetField("first")
	req := bleve.NewSearchRequestOptions(q, maxChunks, 0, false)
	req.Fields = []string{"root", "source", "hash", "embedding_model"}
	req.Score = "none"
	res, err := s.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	out := make([]rag.SourceInfo, 0, len(res.Hits))
	for _, h := range res.Hits {
		out = append(out, rag.SourceInfo{
			Root:           str(h.Fields["root"]),
			Source:         str(h.Fields["source"]),
			Hash:           str(h.Fields["hash"]),
			EmbeddingModel: str(h.Fields["embedding_model"]),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Root != out[j].Root {
			return out[i].Root < out[j].Root
		}
		return out[i].Source < out[j].Source
	})
	return out, nil
}

// Version implements rag.Store: a hash of every source's content hash and
// embedding model.
func (s *Store) Version(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.version != "" {
		return s.version, nil
	}
	srcs, err := s.Sources(ctx)
	if err != nil {
		return "", err
	}
	s.version = VersionOf(srcs)
	return s.version, nil
}

// VersionOf hashes a source listing into a knowledge-base version.
func VersionOf(srcs []rag.SourceInfo) string {
	h := sha256.New()
	for _, x := range srcs {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\n", x.Root, x.Source, x.Hash, x.EmbeddingModel)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// Count is the number of chunks stored.
func (s *Store) Count() (uint64, error) { return s.idx.DocCount() }

var storedFields = []string{"title", "heading", "text", "root", "source", "url", "alerts", "runbook_for", "hash", "embedding_model", "seq"}

// Search implements rag.Store.
func (s *Store) Search(ctx context.Context, q rag.Query) ([]rag.Hit, error) {
	topK := q.TopK
	if topK <= 0 {
		topK = 5
	}
	alpha := s.alpha
	if q.Alpha != nil {
		alpha = *q.Alpha
	}
	text := strings.TrimSpace(q.Text)
	var filters []query.Query
	if q.RunbookURL != "" {
		t := bleve.NewTermQuery(rag.NormalizeURL(q.RunbookURL))
		t.SetField("urlkey")
		filters = append(filters, t)
	}
	if q.Alert != "" {
		t := bleve.NewTermQuery(strings.ToLower(q.Alert))
		t.SetField("runbook_key")
		filters = append(filters, t)
	}
	useVec := len(q.Vector) > 0 && alpha > 0 && s.vecs.Count() > 0
	if len(filters) > 0 {
		return s.filtered(ctx, filters, text, topK)
	}
	if text == "" && !useVec {
		return nil, nil
	}
	li, err := s.lexical(ctx)
	if err != nil {
		return nil, err
	}
	n := topK
	if useVec {
		n = max(topK*3, 50)
	}
	var lex []lexical.Result // runbooks in BM25F order
	if text != "" && alpha < 1 {
		lex = li.ix.Search(s.syn.Query(text), n)
		if !useVec {
			out := make([]rag.Hit, len(lex))
			for i, r := range lex {
				out[i] = rag.Hit{Chunk: r.Chunk, Score: r.Score}
			}
			return out, nil
		}
	}
	// Chunks, not runbooks, have vectors: ask for enough of them that the
	// runbooks they belong to fill topK.
	vres, err := s.vecs.QueryEmbedding(ctx, q.Vector, min(max(n, topK*10), s.vecs.Count()), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("vector search: %w", err)
	}
	return fuse(li, lex, vres, alpha, topK), nil
}

func (s *Store) invalidate() {
	s.lexMu.Lock()
	s.lex = nil
	s.lexMu.Unlock()
}

// lexical returns the ranking index, building it from the stored chunks
// when a change made it stale.
func (s *Store) lexical(ctx context.Context) (*lexIndex, error) {
	s.lexMu.Lock()
	defer s.lexMu.Unlock()
	if s.lex != nil {
		return s.lex, nil
	}
	req := bleve.NewSearchRequestOptions(bleve.NewMatchAllQuery(), maxChunks, 0, false)
	req.Fields = storedFields
	req.Score = "none"
	res, err := s.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("load chunks for ranking: %w", err)
	}
	hits := toHits(res.Hits)
	chunks := make([]rag.Chunk, len(hits))
	li := &lexIndex{docOf: make(map[string]string, len(hits))}
	for i := range hits {
		chunks[i] = hits[i].Chunk
		li.docOf[hits[i].ID] = lexical.Key(hits[i].Root, hits[i].Source)
	}
	li.ix = lexical.New(chunks)
	s.lex = li
	return li, nil
}

// filtered returns every chunk passing the filters, ranked by text when
// given (chunks it does not match follow, in source order).
func (s *Store) filtered(ctx context.Context, filters []query.Query, text string, topK int) ([]rag.Hit, error) {
	must := bleve.NewConjunctionQuery(filters...)
	req := bleve.NewSearchRequestOptions(must, max(topK, 1), 0, false)
	req.Fields = storedFields
	req.SortBy([]string{"order"})
	res, err := s.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	all := toHits(res.Hits)
	for i := range all {
		all[i].Score = 0
	}
	if text == "" || len(all) == 0 {
		return all, nil
	}
	// Ranked in memory, with the same analysis and synonyms as searches.
	li, err := s.lexical(ctx)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]bool, len(all))
	for _, h := range all {
		ids[h.ID] = true
	}
	score := li.ix.ChunkScores(s.syn.Query(text), ids)
	for i := range all {
		all[i].Score = score[all[i].ID]
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Score > all[j].Score })
	return all, nil
}

// fuse merges the lexical and vector rankings of runbooks (alpha-weighted
// reciprocal rank fusion). A runbook's vector rank is that of its best
// chunk; its excerpt is the lexical best chunk, else that vector chunk.
func fuse(li *lexIndex, lex []lexical.Result, vres []chromem.Result, alpha float64, topK int) []rag.Hit {
	score := map[string]float64{}
	excerpt := map[string]rag.Chunk{}
	for i, r := range lex {
		score[r.Key] += (1 - alpha) / (rrfK + float64(i+1))
		excerpt[r.Key] = r.Chunk
	}
	rank := 0
	seenVec := map[string]bool{}
	for _, r := range vres {
		k, ok := li.docOf[r.ID]
		if !ok || seenVec[k] {
			continue
		}
		seenVec[k] = true
		rank++
		score[k] += alpha / (rrfK + float64(rank))
		if _, ok := excerpt[k]; !ok {
			for _, c := range li.ix.Chunks(k) {
				if c.ID == r.ID {
					excerpt[k] = c
				}
			}
		}
	}
	keys := make([]string, 0, len(score))
	for k := range score {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if score[keys[i]] != score[keys[j]] {
			return score[keys[i]] > score[keys[j]]
		}
		return keys[i] < keys[j]
	})
	res := make([]lexical.Result, len(keys))
	for i, k := range keys {
		res[i] = lexical.Result{Key: k, Score: score[k], Chunk: excerpt[k]}
	}
	// The vector side may bring back a second copy of a runbook.
	res = lexical.Dedupe(res, topK)
	out := make([]rag.Hit, len(res))
	for i, r := range res {
		out[i] = rag.Hit{Chunk: r.Chunk, Score: r.Score}
	}
	return out
}

func toHits(dm search.DocumentMatchCollection) []rag.Hit {
	out := make([]rag.Hit, 0, len(dm))
	for _, h := range dm {
		f := h.Fields
		c := rag.Chunk{
			ID:             h.ID,
			Root:           str(f["root"]),
			Source:         str(f["source"]),
			Title:          str(f["title"]),
			Heading:        str(f["heading"]),
			Text:           str(f["text"]),
			URL:            str(f["url"]),
			Alerts:         strs(f["alerts"]),
			RunbookFor:     strs(f["runbook_for"]),
			Hash:           str(f["hash"]),
			EmbeddingModel: str(f["embedding_model"]),
		}
		if n, ok := f["seq"].(float64); ok {
			c.Seq = int(n)
		}
		out = append(out, rag.Hit{Chunk: c, Score: h.Score})
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
