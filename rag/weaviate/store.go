// Package weaviate keeps medic's knowledge base in a Weaviate server
// (github.com/weaviate/weaviate-go-client/v4, over REST). The collection is
// created when missing, with no vectorizer module: medic supplies the
// vectors from its own embedding model. A knowledge base is a collection,
// or a tenant of a multi-tenant collection.
//
// Weaviate ranks runbooks, not chunks, by the rules of the embedded store
// (rag/lexical): one object per runbook holds its analysed terms, weighted
// by field (title, alert names, headings, body) through repetition, and its
// name text (title and alert names) searched with its own boost; queries
// are analysed and expanded with the same synonyms in medic, and sent as
// terms repeated by weight (see lexical.FlatDocument and FlatQuery). With
// an embedding model, the runbook's vector is the normalised mean of its
// chunks' vectors and the search is Weaviate's hybrid with alpha and ranked
// fusion: score = (1-α)/(60+rank_bm25) + α/(60+rank_vector), ranks from 0,
// the embedded store's fusion. The chunks ride along in the object (stored,
// not indexed); the excerpt of a hit is its best chunk for the query.
package weaviate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-openapi/strfmt"
	wv "github.com/weaviate/weaviate-go-client/v4/weaviate"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/auth"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/filters"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/graphql"
	"github.com/weaviate/weaviate/entities/models"

	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/embedded"
	"github.com/medichq/medic/rag/lexical"
)

// Options configure the store.
type Options struct {
	// URL of the Weaviate server, e.g. http://weaviate:8080.
	URL        string
	APIKey     string
	Collection string
	// Tenant, when set, makes the collection multi-tenant.
	Tenant string
	// Alpha is the hybrid weight (0 = BM25 only, 1 = vectors only).
	Alpha float64
	// Synonyms are groups added to lexical.DefaultSynonyms
	// (knowledge_base.synonyms); queries are expanded in medic.
	Synonyms [][]string
	// Timeout of each request (default 30s).
	Timeout time.Duration
}

// Store is a knowledge base in Weaviate.
type Store struct {
	c      *wv.Client
	class  string
	tenant string
	alpha  float64
	syn    *lexical.Synonyms
}

var _ rag.Store = (*Store)(nil)

// kindRunbook marks the objects of this layout (one per runbook). Objects
// without it are chunks written by older medic versions; they are deleted
// when the store opens and never match a search.
const kindRunbook = "runbook"

// Open connects, and creates the collection (and tenant) when missing.
func Open(ctx context.Context, opts Options) (*Store, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("weaviate: URL %q is not an http(s) URL", opts.URL)
	}
	if opts.Collection == "" {
		opts.Collection = "MedicRunbooks"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Alpha < 0 || opts.Alpha > 1 {
		return nil, fmt.Errorf("weaviate: alpha %v is outside 0..1", opts.Alpha)
	}
	syn, err := lexical.NewSynonyms(opts.Synonyms)
	if err != nil {
		return nil, fmt.Errorf("weaviate: %w", err)
	}
	cfg := wv.Config{Host: u.Host, Scheme: u.Scheme, Timeout: opts.Timeout, StartupTimeout: opts.Timeout}
	if opts.APIKey != "" {
		cfg.AuthConfig = auth.ApiKey{Value: opts.APIKey}
	}
	c, err := wv.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("weaviate %s: %w", opts.URL, err)
	}
	s := &Store{c: c, class: opts.Collection, tenant: opts.Tenant, alpha: opts.Alpha, syn: syn}
	if err := s.ensureSchema(ctx); err != nil {
		return nil, fmt.Errorf("weaviate %s: %w", opts.URL, err)
	}
	return s, nil
}

func boolp(b bool) *bool { return &b }

// properties of a runbook object. terms and name hold analysed terms
// (white-space tokenization: medic analyses, Weaviate only splits); chunks
// is the runbook's chunks as JSON, stored only.
func properties() []*models.Property {
	terms := func(name string) *models.Property {
		return &models.Property{Name: name, DataType: []string{"text"}, Tokenization: "whitespace", IndexSearchable: boolp(true), IndexFilterable: boolp(false)}
	}
	key := func(name string, array bool) *models.Property {
		dt := "text"
		if array {
			dt = "text[]"
		}
		return &models.Property{Name: name, DataType: []string{dt}, Tokenization: "field", IndexSearchable: boolp(false), IndexFilterable: boolp(true)}
	}
	stored := func(name, dt string) *models.Property {
		return &models.Property{Name: name, DataType: []string{dt}, IndexSearchable: boolp(false), IndexFilterable: boolp(false)}
	}
	return []*models.Property{
		terms("terms"), terms("name"),
		key("kind", false), key("root", false), key("source", false), key("key", false), key("urlkey", false),
		key("runbook_key", true),
		stored("title", "text"), stored("url", "text"), stored("hash", "text"), stored("embedding_model", "text"),
		stored("chunks", "text"),
	}
}

func (s *Store) ensureSchema(ctx context.Context) error {
	exists, err := s.c.Schema().ClassExistenceChecker().WithClassName(s.class).Do(ctx)
	if err != nil {
		return fmt.Errorf("check collection %s: %w", s.class, err)
	}
	if !exists {
		class := &models.Class{
			Class:       s.class,
			Description: "medic knowledge base: runbooks",
			Vectorizer:  "none",
			Properties:  properties(),
			InvertedIndexConfig: &models.InvertedIndexConfig{
				Bm25: &models.BM25Config{K1: lexical.FlatK1, B: lexical.FlatB},
			},
		}
		if s.tenant != "" {
			class.MultiTenancyConfig = &models.MultiTenancyConfig{Enabled: true}
		}
		if err := s.c.Schema().ClassCreator().WithClass(class).Do(ctx); err != nil {
			// Another replica may have created it meanwhile.
			if ok, _ := s.c.Schema().ClassExistenceChecker().WithClassName(s.class).Do(ctx); !ok {
				return fmt.Errorf("create collection %s: %w", s.class, err)
			}
		}
	}
	if s.tenant != "" {
		if err := s.ensureTenant(ctx); err != nil {
			return err
		}
	}
	if exists {
		return s.upgrade(ctx)
	}
	return nil
}

func (s *Store) ensureTenant(ctx context.Context) error {
	tenants, err := s.c.Schema().TenantsGetter().WithClassName(s.class).Do(ctx)
	if err != nil {
		return fmt.Errorf("list tenants of %s: %w", s.class, err)
	}
	for _, t := range tenants {
		if t.Name == s.tenant {
			return nil
		}
	}
	if err := s.c.Schema().TenantsCreator().WithClassName(s.class).WithTenants(models.Tenant{Name: s.tenant}).Do(ctx); err != nil {
		return fmt.Errorf("create tenant %s of %s: %w", s.tenant, s.class, err)
	}
	return nil
}

// upgrade brings a collection written by an older medic (one object per
// chunk) to this layout: the missing properties and BM25 parameters are
// set and the old chunk objects (they have the boolean "first") deleted,
// so every source counts as new and the next ingestion writes it again.
func (s *Store) upgrade(ctx context.Context) error {
	class, err := s.c.Schema().ClassGetter().WithClassName(s.class).Do(ctx)
	if err != nil {
		return fmt.Errorf("read collection %s: %w", s.class, err)
	}
	have := map[string]bool{}
	for _, p := range class.Properties {
		have[p.Name] = true
	}
	for _, p := range properties() {
		if have[p.Name] {
			continue
		}
		if err := s.c.Schema().PropertyCreator().WithClassName(s.class).WithProperty(p).Do(ctx); err != nil {
			return fmt.Errorf("add property %s to %s: %w", p.Name, s.class, err)
		}
	}
	if !have["first"] {
		return nil
	}
	if class.InvertedIndexConfig == nil {
		class.InvertedIndexConfig = &models.InvertedIndexConfig{}
	}
	if b := class.InvertedIndexConfig.Bm25; b == nil || b.K1 != lexical.FlatK1 || b.B != lexical.FlatB {
		if class, err = s.c.Schema().ClassGetter().WithClassName(s.class).Do(ctx); err != nil {
			return fmt.Errorf("read collection %s: %w", s.class, err)
		}
		if class.InvertedIndexConfig == nil {
			class.InvertedIndexConfig = &models.InvertedIndexConfig{}
		}
		class.InvertedIndexConfig.Bm25 = &models.BM25Config{K1: lexical.FlatK1, B: lexical.FlatB}
		if err := s.c.Schema().ClassUpdater().WithClass(class).Do(ctx); err != nil {
			return fmt.Errorf("set the BM25 parameters of %s: %w", s.class, err)
		}
	}
	for _, v := range []bool{true, false} {
		where := filters.Where().WithPath([]string{"first"}).WithOperator(filters.Equal).WithValueBoolean(v)
		if err := s.batchDelete(ctx, where); err != nil {
			return fmt.Errorf("delete the chunks of an older layout: %w", err)
		}
	}
	return nil
}

// DeleteAll implements rag.Store: the tenant, or the whole collection, is
// dropped and created again, so its vector index starts without dimensions.
func (s *Store) DeleteAll(ctx context.Context) error {
	if s.tenant != "" {
		if err := s.c.Schema().TenantsDeleter().WithClassName(s.class).WithTenants(s.tenant).Do(ctx); err != nil {
			return fmt.Errorf("weaviate: delete tenant %s: %w", s.tenant, err)
		}
	} else if err := s.c.Schema().ClassDeleter().WithClassName(s.class).Do(ctx); err != nil {
		return fmt.Errorf("weaviate: delete collection %s: %w", s.class, err)
	}
	return s.ensureSchema(ctx)
}

// Close implements rag.Store (the REST client holds nothing to release).
func (s *Store) Close() error { return nil }

func sourceKey(root, source string) string { return root + "\x00" + source }

// objectID is the runbook object's UUID, from its root and source.
func objectID(root, source string) strfmt.UUID {
	id := rag.ChunkID(root, source, -1) // chunk IDs count from 0
	return strfmt.UUID(id[0:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:32])
}

func (s *Store) where(path string, op filters.WhereOperator, value string) *filters.WhereBuilder {
	return filters.Where().WithPath([]string{path}).WithOperator(op).WithValueText(value)
}

// storedChunk is a chunk as kept in a runbook object (the runbook's
// metadata is the object's own).
type storedChunk struct {
	ID      string   `json:"id"`
	Seq     int      `json:"seq"`
	Heading string   `json:"heading,omitempty"`
	Text    string   `json:"text"`
	Alerts  []string `json:"alerts,omitempty"`
	For     []string `json:"for,omitempty"`
}

// Upsert implements rag.Store: one object per runbook, whose ID follows
// from its root and source, so the batch import replaces what was stored
// for it in place (a search during the import sees the old or the new
// runbook, never neither).
func (s *Store) Upsert(ctx context.Context, chunks []rag.Chunk) error {
	if len(chunks) == 0 {
		return nil
	}
	var order []string
	bySource := map[string][]rag.Chunk{}
	for _, c := range chunks {
		k := sourceKey(c.Root, c.Source)
		if _, ok := bySource[k]; !ok {
			order = append(order, k)
		}
		bySource[k] = append(bySource[k], c)
	}
	const batchSize = 50
	for start := 0; start < len(order); start += batchSize {
		part := order[start:min(start+batchSize, len(order))]
		objs := make([]*models.Object, len(part))
		for i, k := range part {
			o, err := s.object(bySource[k])
			if err != nil {
				return err
			}
			objs[i] = o
		}
		res, err := s.c.Batch().ObjectsBatcher().WithObjects(objs...).Do(ctx)
		if err != nil {
			return fmt.Errorf("weaviate batch import: %w", err)
		}
		for _, r := range res {
			if r.Result != nil && r.Result.Errors != nil && len(r.Result.Errors.Error) > 0 {
				return fmt.Errorf("weaviate batch import: object %s: %s", r.ID, r.Result.Errors.Error[0].Message)
			}
		}
	}
	return nil
}

// object is the runbook object for the chunks of one source.
func (s *Store) object(chunks []rag.Chunk) (*models.Object, error) {
	slices.SortStableFunc(chunks, func(a, b rag.Chunk) int { return a.Seq - b.Seq })
	first := chunks[0]
	stored := make([]storedChunk, len(chunks))
	var forAlerts []string
	for i, c := range chunks {
		id := c.ID
		if id == "" {
			id = rag.ChunkID(c.Root, c.Source, c.Seq)
		}
		stored[i] = storedChunk{ID: id, Seq: c.Seq, Heading: c.Heading, Text: c.Text, Alerts: c.Alerts, For: c.RunbookFor}
		for _, a := range c.RunbookFor {
			if !slices.Contains(forAlerts, a) {
				forAlerts = append(forAlerts, a)
			}
		}
	}
	raw, err := json.Marshal(stored)
	if err != nil {
		return nil, fmt.Errorf("weaviate: encode chunks of %s: %w", first.Source, err)
	}
	terms, name := lexical.FlatDocument(chunks)
	props := map[string]any{
		"kind": kindRunbook, "terms": terms, "name": name,
		"root": first.Root, "source": first.Source, "key": sourceKey(first.Root, first.Source),
		"title": first.Title, "url": first.URL, "urlkey": urlKey(first.URL),
		"runbook_key": lower(forAlerts), "hash": first.Hash, "embedding_model": first.EmbeddingModel,
		"chunks": string(raw),
	}
	o := &models.Object{Class: s.class, ID: objectID(first.Root, first.Source), Properties: props, Tenant: s.tenant}
	if v := meanVector(chunks); v != nil {
		o.Vector = v
	}
	return o, nil
}

// meanVector is the runbook's vector: the mean of its chunks' vectors,
// normalised (nil when no chunk has one). Chunks of one runbook share a
// model and so a dimension; a chunk that does not is left out.
func meanVector(chunks []rag.Chunk) []float32 {
	var sum []float64
	for _, c := range chunks {
		if len(c.Vector) == 0 || (sum != nil && len(c.Vector) != len(sum)) {
			continue
		}
		if sum == nil {
			sum = make([]float64, len(c.Vector))
		}
		for i, x := range c.Vector {
			sum[i] += float64(x)
		}
	}
	if sum == nil {
		return nil
	}
	var norm float64
	for _, x := range sum {
		norm += x * x
	}
	norm = math.Sqrt(norm)
	out := make([]float32, len(sum))
	for i, x := range sum {
		if norm > 0 {
			out[i] = float32(x / norm)
		}
	}
	return out
}

func urlKey(u string) string {
	if u == "" {
		return ""
	}
	return rag.NormalizeURL(u)
}

func lower(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = strings.ToLower(x)
	}
	return out
}

// DeleteSource implements rag.Store.
func (s *Store) DeleteSource(ctx context.Context, root, source string) error {
	return s.deleteKey(ctx, sourceKey(root, source))
}

func (s *Store) deleteKey(ctx context.Context, key string) error {
	if err := s.batchDelete(ctx, s.where("key", filters.Equal, key)); err != nil {
		return fmt.Errorf("weaviate delete: %w", err)
	}
	return nil
}

func (s *Store) batchDelete(ctx context.Context, where *filters.WhereBuilder) error {
	d := s.c.Batch().ObjectsBatchDeleter().WithClassName(s.class).WithOutput("minimal").WithWhere(where)
	if s.tenant != "" {
		d = d.WithTenant(s.tenant)
	}
	res, err := d.Do(ctx)
	if err != nil {
		return err
	}
	if res != nil && res.Results != nil && res.Results.Failed > 0 {
		return fmt.Errorf("%d objects failed", res.Results.Failed)
	}
	return nil
}

// maxResults is Weaviate's default QUERY_MAXIMUM_RESULTS.
const maxResults = 10000

var fieldList = "root source title url hash embedding_model chunks"

func (s *Store) get() *graphql.GetBuilder {
	g := s.c.GraphQL().Get().WithClassName(s.class)
	if s.tenant != "" {
		g = g.WithTenant(s.tenant)
	}
	return g
}

func fields(extra string) []graphql.Field {
	var out []graphql.Field
	for f := range strings.FieldsSeq(fieldList) {
		out = append(out, graphql.Field{Name: f})
	}
	return append(out, graphql.Field{Name: "_additional", Fields: []graphql.Field{{Name: "id"}, {Name: extra}}})
}

// runbooks keeps objects of this layout, with cond when not nil.
func (s *Store) runbooks(cond *filters.WhereBuilder) *filters.WhereBuilder {
	kind := s.where("kind", filters.Equal, kindRunbook)
	if cond == nil {
		return kind
	}
	return filters.Where().WithOperator(filters.And).WithOperands([]*filters.WhereBuilder{kind, cond})
}

// Sources implements rag.Store: one object per source.
func (s *Store) Sources(ctx context.Context) ([]rag.SourceInfo, error) {
	var out []rag.SourceInfo
	const page = 1000
	for offset := 0; offset < maxResults; offset += page {
		resp, err := s.get().WithWhere(s.runbooks(nil)).WithLimit(min(page, maxResults-offset)).WithOffset(offset).
			WithFields(graphql.Field{Name: "root"}, graphql.Field{Name: "source"}, graphql.Field{Name: "hash"}, graphql.Field{Name: "embedding_model"}).
			Do(ctx)
		objs, err := s.objects(resp, err)
		if err != nil {
			return nil, fmt.Errorf("weaviate list sources: %w", err)
		}
		for _, o := range objs {
			out = append(out, rag.SourceInfo{Root: str(o["root"]), Source: str(o["source"]), Hash: str(o["hash"]), EmbeddingModel: str(o["embedding_model"])})
		}
		if len(objs) < page {
			break
		}
	}
	slices.SortFunc(out, func(a, b rag.SourceInfo) int {
		if c := strings.Compare(a.Root, b.Root); c != 0 {
			return c
		}
		return strings.Compare(a.Source, b.Source)
	})
	return out, nil
}

// Version implements rag.Store. It is computed from the server each time,
// so a change made by another process (medic kb ingest) is seen at once.
func (s *Store) Version(ctx context.Context) (string, error) {
	srcs, err := s.Sources(ctx)
	if err != nil {
		return "", err
	}
	return embedded.VersionOf(srcs), nil
}

// nameBoost weighs the name text against the runbook's text: the name
// clause. The embedded store weighs it 0.75, but Weaviate computes idf per
// property, and in the short name text a term is rarer than in whole
// runbooks, so its idf and the clause come out larger; 0.4 is the middle of
// the plateau (0.3–0.5) where `make eval-rag` scores best on both sets
// (0.75: symptom recall@3 0.94; 0.4: 0.95, the alert-name set unchanged).
const nameBoost = 0.4

// bm25Props are the searched texts: the runbook's weighted terms and its
// name text with the name clause's boost.
func bm25Props() []string {
	return []string{"terms", "name^" + strconv.FormatFloat(nameBoost, 'f', -1, 64)}
}

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
	weights := s.syn.Query(strings.TrimSpace(q.Text))
	text := lexical.FlatQuery(weights)
	var conds []*filters.WhereBuilder
	if q.RunbookURL != "" {
		conds = append(conds, s.where("urlkey", filters.Equal, rag.NormalizeURL(q.RunbookURL)))
	}
	if q.Alert != "" {
		conds = append(conds, filters.Where().WithPath([]string{"runbook_key"}).WithOperator(filters.ContainsAny).WithValueText(strings.ToLower(q.Alert)))
	}
	if len(conds) > 0 {
		where := conds[0]
		if len(conds) > 1 {
			where = filters.Where().WithOperator(filters.And).WithOperands(conds)
		}
		return s.filtered(ctx, s.runbooks(where), weights, topK)
	}
	useVec := len(q.Vector) > 0 && alpha > 0
	// A few more than asked: copies of one runbook under two roots
	// collapse into one (lexical.Dedupe).
	limit := topK + 5
	var (
		objs []map[string]any
		err  error
	)
	g := s.get().WithWhere(s.runbooks(nil)).WithLimit(limit)
	switch {
	case text == "" && !useVec:
		return nil, nil
	case !useVec:
		b := s.c.GraphQL().Bm25ArgBuilder().WithQuery(text).WithProperties(bm25Props()...)
		objs, err = s.objects(g.WithBM25(b).WithFields(fields("score")...).Do(ctx))
	case text == "" || alpha >= 1:
		nv := s.c.GraphQL().NearVectorArgBuilder().WithVector(q.Vector)
		objs, err = s.objects(g.WithNearVector(nv).WithFields(fields("distance")...).Do(ctx))
	default:
		h := s.c.GraphQL().HybridArgumentBuilder().WithQuery(text).WithVector(q.Vector).WithAlpha(float32(alpha)).
			WithProperties(bm25Props()).WithFusionType(graphql.Ranked)
		objs, err = s.objects(g.WithHybrid(h).WithFields(fields("score")...).Do(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("weaviate search: %w", err)
	}
	docs, err := decode(objs)
	if err != nil {
		return nil, err
	}
	res := make([]lexical.Result, 0, len(docs))
	chunksOf := map[string][]rag.Chunk{}
	for _, d := range docs {
		k := lexical.Key(d.chunks[0].Root, d.chunks[0].Source)
		chunksOf[k] = d.chunks
		res = append(res, lexical.Result{Key: k, Score: d.score, Chunk: d.chunks[0]})
	}
	res = lexical.Dedupe(res, topK)
	// The excerpt: each runbook's best chunk for the query (see
	// lexical.BestChunk), among the chunks of the runbooks returned.
	var all []rag.Chunk
	for _, r := range res {
		all = append(all, chunksOf[r.Key]...)
	}
	ix := lexical.New(all)
	out := make([]rag.Hit, len(res))
	for i, r := range res {
		out[i] = rag.Hit{Chunk: ix.BestChunk(weights, r.Key), Score: r.Score}
	}
	return out, nil
}

// filtered returns the chunks of the runbooks passing where, ranked by
// their own BM25 for the query when it has terms (chunks it does not match
// follow, in source order), at most topK.
func (s *Store) filtered(ctx context.Context, where *filters.WhereBuilder, weights map[string]float64, topK int) ([]rag.Hit, error) {
	objs, err := s.objects(s.get().WithWhere(where).WithLimit(100).WithFields(fields("id")...).Do(ctx))
	if err != nil {
		return nil, fmt.Errorf("weaviate search: %w", err)
	}
	docs, err := decode(objs)
	if err != nil {
		return nil, err
	}
	var all []rag.Hit
	var chunks []rag.Chunk
	for _, d := range docs {
		for _, c := range d.chunks {
			all = append(all, rag.Hit{Chunk: c})
			chunks = append(chunks, c)
		}
	}
	slices.SortStableFunc(all, func(a, b rag.Hit) int {
		if c := strings.Compare(a.Root+"\x00"+a.Source, b.Root+"\x00"+b.Source); c != 0 {
			return c
		}
		return a.Seq - b.Seq
	})
	if len(weights) > 0 && len(all) > 0 {
		score := lexical.New(chunks).ChunkScores(weights, nil)
		for i := range all {
			all[i].Score = score[all[i].ID]
		}
		slices.SortStableFunc(all, func(a, b rag.Hit) int {
			switch {
			case a.Score > b.Score:
				return -1
			case a.Score < b.Score:
				return 1
			}
			return 0
		})
	}
	return all[:min(len(all), max(topK, 1))], nil
}

func (s *Store) objects(resp *models.GraphQLResponse, err error) ([]map[string]any, error) {
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, errors.New("empty response")
	}
	if len(resp.Errors) > 0 {
		msgs := make([]string, len(resp.Errors))
		for i, e := range resp.Errors {
			msgs[i] = e.Message
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	get, _ := resp.Data["Get"].(map[string]any)
	list, _ := get[s.class].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, o := range list {
		if m, ok := o.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// doc is a runbook object read back: its chunks and its search score.
type doc struct {
	chunks []rag.Chunk
	score  float64
}

func decode(objs []map[string]any) ([]doc, error) {
	out := make([]doc, 0, len(objs))
	for _, o := range objs {
		var stored []storedChunk
		if err := json.Unmarshal([]byte(str(o["chunks"])), &stored); err != nil || len(stored) == 0 {
			return nil, fmt.Errorf("weaviate: runbook %s: unreadable chunks (%v)", str(o["source"]), err)
		}
		d := doc{chunks: make([]rag.Chunk, len(stored))}
		for i, c := range stored {
			d.chunks[i] = rag.Chunk{
				ID: c.ID, Root: str(o["root"]), Source: str(o["source"]), Seq: c.Seq,
				Title: str(o["title"]), Heading: c.Heading, Text: c.Text, URL: str(o["url"]),
				Alerts: c.Alerts, RunbookFor: c.For, Hash: str(o["hash"]), EmbeddingModel: str(o["embedding_model"]),
			}
		}
		add, _ := o["_additional"].(map[string]any)
		if x, ok := add["distance"]; ok && x != nil {
			d.score = 1 - num(x)
		} else {
			d.score = num(add["score"])
		}
		out = append(out, d)
	}
	return out, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// num reads a GraphQL number, which Weaviate sends as a JSON number or,
// for scores, a string.
func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case json.Number:
		f, _ := x.Float64()
		return f
	case string:
		f, _ := strconv.ParseFloat(x, 64)
		return f
	}
	return 0
}
