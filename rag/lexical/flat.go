package lexical

import (
	"math"
	"sort"
	"strings"

	"github.com/medichq/medic/rag"
)

// The ranking rules above, flattened into plain text for a search engine
// that scores words itself (Weaviate's BM25): the engine indexes analysed
// terms (this package's stems, CamelCase parts, no stop words) split on
// white space, so both stores see the same words, and weights become
// repetitions.
//
//   - A field's weight repeats its terms: a title term appears
//     fieldWeight×FlatScale times in the runbook's text. Repeating every
//     term FlatScale times doubles term frequencies, which FlatK1 (k1 ×
//     FlatScale) cancels in the saturation tf/(tf + k1·norm).
//   - The name clause (title and alert names, separately saturated) is a
//     second text, searched with a boost (nameWeight here; the engine may
//     need its own, see rag/weaviate).
//   - A query term's weight repeats it: Weaviate multiplies a term's idf by
//     the number of times the query holds it. A typed word counts
//     flatQueryScale times; a synonym's share is rounded, at least once.
//
// What does not carry over: BM25F's per-field length normalisation (the
// engine normalises the flattened text by its own average length) and the
// best chunk's share of the score (chunkWeight).
const (
	FlatScale      = 2
	FlatK1         = k1 * FlatScale
	FlatB          = b
	flatQueryScale = 5
)

// fieldRepeat is fieldWeight×FlatScale as whole numbers.
var fieldRepeat = func() [numFields]int {
	var out [numFields]int
	for f, w := range fieldWeight {
		out[f] = int(math.Round(w * FlatScale))
	}
	return out
}()

// FlatDocument returns a runbook's text and name text as analysed terms
// separated by spaces (chunks of one runbook).
func FlatDocument(chunks []rag.Chunk) (text, name string) {
	if len(chunks) == 0 {
		return "", ""
	}
	chunks = append([]rag.Chunk(nil), chunks...)
	sort.SliceStable(chunks, func(i, j int) bool { return chunks[i].Seq < chunks[j].Seq })
	fields := fieldTerms(chunks)
	var t, n strings.Builder
	for f, terms := range fields {
		for _, term := range terms {
			for range fieldRepeat[f] {
				t.WriteString(term)
				t.WriteByte(' ')
			}
			if f == fieldTitle || f == fieldAlerts {
				for range FlatScale {
					n.WriteString(term)
					n.WriteByte(' ')
				}
			}
		}
	}
	return strings.TrimSpace(t.String()), strings.TrimSpace(n.String())
}

// FlatQuery returns weighted query terms (see Synonyms.Query) as analysed
// terms separated by spaces, each repeated by its weight, in a fixed order.
func FlatQuery(q map[string]float64) string {
	terms := make([]string, 0, len(q))
	for t := range q {
		terms = append(terms, t)
	}
	sort.Strings(terms)
	var s strings.Builder
	for _, t := range terms {
		for range max(1, int(math.Round(q[t]*flatQueryScale))) {
			s.WriteString(t)
			s.WriteByte(' ')
		}
	}
	return strings.TrimSpace(s.String())
}
