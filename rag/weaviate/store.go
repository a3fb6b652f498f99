// Package weaviate keeps medic's knowledge base in a Weaviate server
// (github.com/weaviate/weaviate-go-client/v4, over REST). The collection is
// created when missing, with no vectorizer module: medic supplies the
// vectors from its own embedding model. Chunks are imported in batches and
// searched with Weaviate's hybrid search (BM25 and vectors, weighted by
// alpha), or BM25 alone when there is no embedding model. A knowledge base
// is a collection, or a tenant of a multi-tenant collection.
package weaviate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-openapi/strfmt"
	wv "github.com/weaviate/weaviate-go-client/v4/weaviate"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/auth"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/filters"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/graphql"
	"github.com/weaviate/weaviate/entities/models"

	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/embedded"
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
	// Timeout of each request (default 30s).
	Timeout time.Duration
}

// Store is a knowledge base in Weaviate.
type Store struct {
	c      *wv.Client
	class  string
	tenant string
	alpha  float64
}

var _ rag.Store = (*Store)(nil)

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
	cfg := wv.Config{Host: u.Host, Scheme: u.Scheme, Timeout: opts.Timeout, StartupTimeout: opts.Timeout}
	if opts.APIKey != "" {
		cfg.AuthConfig = auth.ApiKey{Value: opts.APIKey}
	}
	c, err := wv.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("weaviate %s: %w", opts.URL, err)
	}
	s := &Store{c: c, class: opts.Collection, tenant: opts.Tenant, alpha: opts.Alpha}
	if err := s.ensureSchema(ctx); err != nil {
		return nil, fmt.Errorf("weaviate %s: %w", opts.URL, err)
	}
	return s, nil
}

func boolp(b bool) *bool { return &b }

func (s *Store) ensureSchema(ctx context.Context) error {
	exists, err := s.c.Schema().ClassExistenceChecker().WithClassName(s.class).Do(ctx)
	if err != nil {
		return fmt.Errorf("check collection %s: %w", s.class, err)
	}
	if !exists {
		text := func(name string) *models.Property {
			return &models.Property{Name: name, DataType: []string{"text"}, Tokenization: "word", IndexSearchable: boolp(true), IndexFilterable: boolp(false)}
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
		class := &models.Class{
			Class:       s.class,
			Description: "medic knowledge base: runbook chunks",
			Vectorizer:  "none",
			Properties: []*models.Property{
				text("title"), text("names"), text("heading"), text("body"),
				key("root", false), key("source", false), key("key", false), key("urlkey", false),
				key("runbook_key", true),
				{Name: "first", DataType: []string{"boolean"}, IndexFilterable: boolp(true)},
				stored("url", "text"), stored("alerts", "text[]"), stored("runbook_for", "text[]"),
				stored("hash", "text"), stored("embedding_model", "text"), stored("seq", "int"),
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
	if s.tenant == "" {
		return nil
	}
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

// objectID turns a chunk ID (32 hex digits) into a UUID.
func objectID(chunkID string) strfmt.UUID {
	id := chunkID
	if len(id) < 32 {
		id = rag.ChunkID(id, "", 0)
	}
	return strfmt.UUID(id[0:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:32])
}

func chunkIDOf(u string) string { return strings.ReplaceAll(u, "-", "") }

// splitCamel spells alert names as words for BM25, which Weaviate's word
// tokenizer would otherwise keep as one token: KubePodCrashLooping → Kube
// Pod Crash Looping.
func splitCamel(names []string) string {
	var b strings.Builder
	for _, n := range names {
		rs := []rune(n)
		for i, r := range rs {
			if i > 0 && unicode.IsUpper(r) && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))) {
				b.WriteByte(' ')
			}
			b.WriteRune(r)
		}
		b.WriteString(" " + n + " ")
	}
	return strings.TrimSpace(b.String())
}

func (s *Store) where(path string, op filters.WhereOperator, value string) *filters.WhereBuilder {
	return filters.Where().WithPath([]string{path}).WithOperator(op).WithValueText(value)
}

// Upsert implements rag.Store.
func (s *Store) Upsert(ctx context.Context, chunks []rag.Chunk) error {
	if len(chunks) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, c := range chunks {
		k := sourceKey(c.Root, c.Source)
		if !seen[k] {
			seen[k] = true
			if err := s.deleteKey(ctx, k); err != nil {
				return err
			}
		}
	}
	const batchSize = 100
	for start := 0; start < len(chunks); start += batchSize {
		part := chunks[start:min(start+batchSize, len(chunks))]
		objs := make([]*models.Object, len(part))
		for i := range part {
			c := &part[i]
			id := c.ID
			if id == "" {
				id = rag.ChunkID(c.Root, c.Source, c.Seq)
			}
			props := map[string]any{
				"title": c.Title, "names": splitCamel(c.RunbookFor), "heading": c.Heading, "body": c.Text,
				"root": c.Root, "source": c.Source, "key": sourceKey(c.Root, c.Source),
				"url": c.URL, "urlkey": urlKey(c.URL),
				"alerts": nonNil(c.Alerts), "runbook_for": nonNil(c.RunbookFor), "runbook_key": lower(c.RunbookFor),
				"first": c.Seq == 0, "hash": c.Hash, "embedding_model": c.EmbeddingModel, "seq": c.Seq,
			}
			objs[i] = &models.Object{Class: s.class, ID: objectID(id), Properties: props, Tenant: s.tenant}
			if len(c.Vector) > 0 {
				objs[i].Vector = c.Vector
			}
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

func urlKey(u string) string {
	if u == "" {
		return ""
	}
	return rag.NormalizeURL(u)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
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
	d := s.c.Batch().ObjectsBatchDeleter().WithClassName(s.class).WithOutput("minimal").
		WithWhere(s.where("key", filters.Equal, key))
	if s.tenant != "" {
		d = d.WithTenant(s.tenant)
	}
	res, err := d.Do(ctx)
	if err != nil {
		return fmt.Errorf("weaviate delete: %w", err)
	}
	if res != nil && res.Results != nil && res.Results.Failed > 0 {
		return fmt.Errorf("weaviate delete: %d objects failed", res.Results.Failed)
	}
	return nil
}

// maxResults is Weaviate's default QUERY_MAXIMUM_RESULTS.
const maxResults = 10000

var fieldList = "title heading body root source url alerts runbook_for hash embedding_model seq"

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

// Sources implements rag.Store from the first chunk of every source.
func (s *Store) Sources(ctx context.Context) ([]rag.SourceInfo, error) {
	var out []rag.SourceInfo
	const page = 1000
	for offset := 0; offset < maxResults; offset += page {
		where := filters.Where().WithPath([]string{"first"}).WithOperator(filters.Equal).WithValueBoolean(true)
		resp, err := s.get().WithWhere(where).WithLimit(min(page, maxResults-offset)).WithOffset(offset).
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

// bm25Props mirror the embedded store's boosts; names carries the alert
// names split into words, which Weaviate's tokenizer does not do.
func bm25Props() []string { return []string{"title^2", "names", "heading", "body"} }

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
		return s.filtered(ctx, where, text, topK)
	}
	useVec := len(q.Vector) > 0 && alpha > 0
	// Weaviate ranks chunks; results are runbooks (each source once, as its
	// best chunk), so ask for enough chunks to fill topK sources. Unlike
	// the embedded store, a runbook's score is its best chunk's: evidence
	// spread over sections does not add up here.
	limit := max(topK*4, 20)
	var (
		hits []rag.Hit
		err  error
	)
	switch {
	case text == "" && !useVec:
		return nil, nil
	case text == "":
		nv := s.c.GraphQL().NearVectorArgBuilder().WithVector(q.Vector)
		resp, qerr := s.get().WithNearVector(nv).WithLimit(limit).WithFields(fields("distance")...).Do(ctx)
		hits, err = s.hits(resp, qerr, "distance")
	case useVec:
		h := s.c.GraphQL().HybridArgumentBuilder().WithQuery(text).WithVector(q.Vector).WithAlpha(float32(alpha)).WithProperties(bm25Props())
		resp, qerr := s.get().WithHybrid(h).WithLimit(limit).WithFields(fields("score")...).Do(ctx)
		hits, err = s.hits(resp, qerr, "score")
	default:
		b := s.c.GraphQL().Bm25ArgBuilder().WithQuery(text).WithProperties(bm25Props()...)
		resp, qerr := s.get().WithBM25(b).WithLimit(limit).WithFields(fields("score")...).Do(ctx)
		hits, err = s.hits(resp, qerr, "score")
	}
	if err != nil {
		return nil, err
	}
	return rag.BestPerSource(hits, topK), nil
}

// filtered returns every chunk passing where, ranked by BM25 on text when
// given (chunks it does not match follow, in source order).
func (s *Store) filtered(ctx context.Context, where *filters.WhereBuilder, text string, topK int) ([]rag.Hit, error) {
	resp, err := s.get().WithWhere(where).WithLimit(max(topK, 1)).WithFields(fields("id")...).Do(ctx)
	all, err := s.hits(resp, err, "")
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(all, func(a, b rag.Hit) int {
		if c := strings.Compare(a.Root+"\x00"+a.Source, b.Root+"\x00"+b.Source); c != 0 {
			return c
		}
		return a.Seq - b.Seq
	})
	if text == "" || len(all) == 0 {
		return all, nil
	}
	b := s.c.GraphQL().Bm25ArgBuilder().WithQuery(text).WithProperties(bm25Props()...)
	resp, err = s.get().WithBM25(b).WithWhere(where).WithLimit(len(all)).WithFields(fields("score")...).Do(ctx)
	ranked, err := s.hits(resp, err, "score")
	if err != nil {
		return nil, err
	}
	score := map[string]float64{}
	for _, h := range ranked {
		score[h.ID] = h.Score
	}
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
	return all, nil
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

func (s *Store) hits(resp *models.GraphQLResponse, err error, scoreField string) ([]rag.Hit, error) {
	objs, err := s.objects(resp, err)
	if err != nil {
		return nil, fmt.Errorf("weaviate search: %w", err)
	}
	out := make([]rag.Hit, 0, len(objs))
	for _, o := range objs {
		add, _ := o["_additional"].(map[string]any)
		h := rag.Hit{Chunk: rag.Chunk{
			ID:             chunkIDOf(str(add["id"])),
			Root:           str(o["root"]),
			Source:         str(o["source"]),
			Title:          str(o["title"]),
			Heading:        str(o["heading"]),
			Text:           str(o["body"]),
			URL:            str(o["url"]),
			Alerts:         strs(o["alerts"]),
			RunbookFor:     strs(o["runbook_for"]),
			Hash:           str(o["hash"]),
			EmbeddingModel: str(o["embedding_model"]),
			Seq:            int(num(o["seq"])),
		}}
		switch scoreField {
		case "score":
			h.Score = num(add["score"])
		case "distance":
			h.Score = 1 - num(add["distance"])
		}
		out = append(out, h)
	}
	return out, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
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
