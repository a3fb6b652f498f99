package lexical

import (
	"math"
	"path"
	"sort"
	"strings"

	"github.com/medichq/medic/rag"
)

// Standard BM25 parameters.
const (
	k1 = 1.2
	b  = 0.75
)

// Fields of a runbook, each with its own length normalisation and weight in
// BM25F. The title and the alert names are short and say what the runbook
// is for, so a match there counts more than one in the body.
const (
	fieldTitle = iota
	fieldHeadings
	fieldAlerts
	fieldBody
	numFields
)

var fieldWeight = [numFields]float64{fieldTitle: 3, fieldHeadings: 1.5, fieldAlerts: 2, fieldBody: 1}

// chunkWeight scales the best chunk's own BM25 against the whole runbook's
// BM25F: the runbook's score decides what it is about (evidence spread over
// its sections adds up), the best section breaks ties towards runbooks with
// one section that answers the question. Chosen with `make eval-rag`.
var chunkWeight = 0.2

// nameWeight scales the name clause (see Search). The weights are
// variables only so that a tuning harness can sweep them; nothing sets them.
var nameWeight = 0.75

type doc struct {
	key    string
	chunks []rag.Chunk
	tf     [numFields]map[string]float64
	len    [numFields]float64
	ctf    []map[string]float64 // per chunk: heading + text
	clen   []float64
}

// Index ranks the runbooks of a fixed set of chunks. It is immutable and
// safe for concurrent use; build a new one when the chunks change.
type Index struct {
	docs   []*doc
	df     map[string]float64 // documents holding the term in any field
	avg    [numFields]float64
	cdf    map[string]float64 // chunks holding the term
	cavg   float64
	chunks float64
	// Postings, so that a search touches only the runbooks and chunks
	// holding a query term.
	post  map[string][]int      // term → indices of docs
	cpost map[string][]cposting // term → chunks
}

type cposting struct {
	doc, chunk int
	tf         float64
}

// Key identifies a runbook: its root and source.
func Key(root, source string) string { return root + "\x00" + source }

// New indexes chunks grouped by runbook (Root, Source), in Seq order.
func New(chunks []rag.Chunk) *Index {
	ix := &Index{df: map[string]float64{}, cdf: map[string]float64{}}
	byKey := map[string]*doc{}
	for _, c := range chunks {
		k := Key(c.Root, c.Source)
		d := byKey[k]
		if d == nil {
			d = &doc{key: k}
			byKey[k] = d
			ix.docs = append(ix.docs, d)
		}
		d.chunks = append(d.chunks, c)
	}
	sort.Slice(ix.docs, func(i, j int) bool { return ix.docs[i].key < ix.docs[j].key })
	for _, d := range ix.docs {
		sort.SliceStable(d.chunks, func(i, j int) bool { return d.chunks[i].Seq < d.chunks[j].Seq })
		for f, terms := range fieldTerms(d.chunks) {
			d.tf[f] = map[string]float64{}
			for _, t := range terms {
				d.tf[f][t]++
			}
			d.len[f] = float64(len(terms))
		}
		for _, c := range d.chunks {
			ctf := map[string]float64{}
			n := 0.0
			for _, t := range Analyze(c.Heading + "\n" + c.Text) {
				ctf[t]++
				n++
			}
			d.ctf = append(d.ctf, ctf)
			d.clen = append(d.clen, n)
			for t := range ctf {
				ix.cdf[t]++
			}
			ix.cavg += n
			ix.chunks++
		}
		seen := map[string]bool{}
		for f := range d.tf {
			ix.avg[f] += d.len[f]
			for t := range d.tf[f] {
				if !seen[t] {
					seen[t] = true
					ix.df[t]++
				}
			}
		}
	}
	if n := float64(len(ix.docs)); n > 0 {
		for f := range ix.avg {
			ix.avg[f] /= n
		}
	}
	if ix.chunks > 0 {
		ix.cavg /= ix.chunks
	}
	ix.post = map[string][]int{}
	ix.cpost = map[string][]cposting{}
	for di, d := range ix.docs {
		seen := map[string]bool{}
		for f := range d.tf {
			for t := range d.tf[f] {
				if !seen[t] {
					seen[t] = true
					ix.post[t] = append(ix.post[t], di)
				}
			}
		}
		for ci, ctf := range d.ctf {
			for t, x := range ctf {
				ix.cpost[t] = append(ix.cpost[t], cposting{doc: di, chunk: ci, tf: x})
			}
		}
	}
	return ix
}

// fieldTerms analyses a runbook's fields (its chunks in Seq order).
func fieldTerms(chunks []rag.Chunk) [numFields][]string {
	var out [numFields][]string
	add := func(f int, text string) { out[f] = append(out[f], Analyze(text)...) }
	first := chunks[0]
	add(fieldTitle, first.Title)
	// The file name is usually the alert's name (KubePodCrashLooping.md).
	add(fieldAlerts, strings.TrimSuffix(path.Base(first.Source), path.Ext(first.Source)))
	alerts := map[string]bool{}
	for _, c := range chunks {
		// Only the alerts this runbook is FOR: the names it merely
		// mentions ("see also KubeNodeNotReady") are in the body.
		for _, a := range c.RunbookFor {
			if !alerts[a] {
				alerts[a] = true
				add(fieldAlerts, a)
			}
		}
		add(fieldHeadings, c.Heading)
		add(fieldBody, c.Text)
	}
	return out
}

// Len is the number of runbooks indexed.
func (ix *Index) Len() int { return len(ix.docs) }

// idf is BM25's (Lucene's) idf, always positive.
func idf(n, df float64) float64 { return math.Log(1 + (n-df+0.5)/(df+0.5)) }

// Result is one runbook: its score and the chunk that matched best.
type Result struct {
	Key   string
	Score float64
	Chunk rag.Chunk
}

// Search ranks the runbooks for weighted query terms (see Query) and
// returns at most topK, best first; runbooks matching no term are left out.
// Equal scores are ordered by key, so the result depends only on the
// content.
func (ix *Index) Search(q map[string]float64, topK int) []Result {
	if len(ix.docs) == 0 || len(q) == 0 {
		return nil
	}
	n := float64(len(ix.docs))
	// Terms in a fixed order: float sums depend on it, and map order is
	// random.
	terms := make([]string, 0, len(q))
	for t := range q {
		terms = append(terms, t)
	}
	sort.Strings(terms)
	score := make([]float64, len(ix.docs))
	for _, t := range terms {
		w, df := q[t], ix.df[t]
		if df == 0 {
			continue
		}
		tidf := idf(n, df)
		for _, di := range ix.post[t] {
			d := ix.docs[di]
			// BM25F: field frequencies, each normalised by its field's
			// length, are weighted and summed before saturation.
			tf := 0.0
			for f := range d.tf {
				if x := d.tf[f][t]; x > 0 && ix.avg[f] > 0 {
					tf += fieldWeight[f] * x / (1 - b + b*d.len[f]/ix.avg[f])
				}
			}
			if tf > 0 {
				score[di] += w * tidf * tf * (k1 + 1) / (k1 + tf)
			}
			// A second, separately saturated clause on what the runbook
			// is named (title and alert names): in BM25F a title match
			// saturates like any other, so "scheduler" would weigh no more
			// in "Kube Scheduler Down" than in a body that mentions
			// scheduling once.
			nt := 0.0
			for _, f := range []int{fieldTitle, fieldAlerts} {
				if x := d.tf[f][t]; x > 0 && ix.avg[f] > 0 {
					nt += x / (1 - b + b*d.len[f]/ix.avg[f])
				}
			}
			if nt > 0 {
				score[di] += nameWeight * w * tidf * nt * (k1 + 1) / (k1 + nt)
			}
		}
	}
	// Each chunk's own BM25 (heading and text), for the excerpt and the
	// best-section share of the score.
	type ck struct{ doc, chunk int }
	cscore := map[ck]float64{}
	for _, t := range terms {
		if ix.cavg == 0 || ix.cdf[t] == 0 {
			continue
		}
		w, cidf := q[t], idf(ix.chunks, ix.cdf[t])
		for _, p := range ix.cpost[t] {
			if score[p.doc] == 0 {
				continue
			}
			cl := ix.docs[p.doc].clen[p.chunk]
			cscore[ck{p.doc, p.chunk}] += w * cidf * p.tf * (k1 + 1) / (p.tf + k1*(1-b+b*cl/ix.cavg))
		}
	}
	var out []Result
	for di, d := range ix.docs {
		if score[di] == 0 {
			continue
		}
		best, bestScore := 0, 0.0
		for ci := range d.chunks {
			if x := cscore[ck{di, ci}]; x > bestScore {
				best, bestScore = ci, x
			}
		}
		out = append(out, Result{Key: d.key, Score: score[di] + chunkWeight*bestScore, Chunk: d.chunks[best]})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].Key < out[j].Key
	})
	return Dedupe(out, topK)
}

// Dedupe keeps the first of runbooks with the same content hash or
// published URL (the built-ins and a team's copy of them, stored under two
// roots before ingestion skipped duplicates) and at most topK (0: all).
func Dedupe(res []Result, topK int) []Result {
	seen := map[string]bool{}
	out := res[:0]
	for _, r := range res {
		var ids []string
		if r.Chunk.Hash != "" {
			ids = append(ids, "hash:"+r.Chunk.Hash)
		}
		if r.Chunk.URL != "" {
			ids = append(ids, "url:"+rag.NormalizeURL(r.Chunk.URL))
		}
		dup := false
		for _, id := range ids {
			dup = dup || seen[id]
			seen[id] = true
		}
		if dup {
			continue
		}
		out = append(out, r)
		if topK > 0 && len(out) == topK {
			break
		}
	}
	return out
}

// ChunkScores scores the chunks whose IDs are in ids by their own BM25
// (heading and text) for q: how the chunks of a linked runbook are ordered.
// A nil ids scores every chunk.
func (ix *Index) ChunkScores(q map[string]float64, ids map[string]bool) map[string]float64 {
	out := map[string]float64{}
	terms := make([]string, 0, len(q))
	for t := range q {
		terms = append(terms, t)
	}
	sort.Strings(terms)
	for _, t := range terms {
		if ix.cavg == 0 || ix.cdf[t] == 0 {
			continue
		}
		w, cidf := q[t], idf(ix.chunks, ix.cdf[t])
		for _, p := range ix.cpost[t] {
			d := ix.docs[p.doc]
			id := d.chunks[p.chunk].ID
			if ids != nil && !ids[id] {
				continue
			}
			out[id] += w * cidf * p.tf * (k1 + 1) / (p.tf + k1*(1-b+b*d.clen[p.chunk]/ix.cavg))
		}
	}
	return out
}

// BestChunk is the excerpt of runbook key for q when the ranking was done
// elsewhere (Weaviate): the chunk with the best BM25 among the indexed
// chunks for the query's terms that are not in the runbook's name (its
// title and alert names say which runbook, not which section), else for
// all of them; the first chunk when none matches.
func (ix *Index) BestChunk(q map[string]float64, key string) rag.Chunk {
	chunks := ix.Chunks(key)
	if len(chunks) == 0 {
		return rag.Chunk{}
	}
	ids := make(map[string]bool, len(chunks))
	for _, c := range chunks {
		ids[c.ID] = true
	}
	fields := fieldTerms(chunks)
	named := map[string]bool{}
	for _, t := range append(fields[fieldTitle], fields[fieldAlerts]...) {
		named[t] = true
	}
	section := make(map[string]float64, len(q))
	for t, w := range q {
		if !named[t] {
			section[t] = w
		}
	}
	for _, qq := range []map[string]float64{section, q} {
		scores := ix.ChunkScores(qq, ids)
		best, bestScore := chunks[0], 0.0
		for _, c := range chunks {
			if x := scores[c.ID]; x > bestScore {
				best, bestScore = c, x
			}
		}
		if bestScore > 0 {
			return best
		}
	}
	return chunks[0]
}

// Chunks returns the chunks of one runbook in order (nil when unknown).
func (ix *Index) Chunks(key string) []rag.Chunk {
	i := sort.Search(len(ix.docs), func(i int) bool { return ix.docs[i].key >= key })
	if i < len(ix.docs) && ix.docs[i].key == key {
		return ix.docs[i].chunks
	}
	return nil
}
