package embedded_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/medichq/medic/rag"
)

// markerEmbedder gives each text the vector of the marker word it holds
// (each holds one at most): a deterministic stand-in for an embedding model, so that the
// vector ranking is known.
type markerEmbedder map[string][]float32

func (markerEmbedder) EmbeddingModel() string { return "markers" }

func (m markerEmbedder) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = []float32{0, 0, 0.01}
		for w, v := range m {
			if strings.Contains(t, w) {
				out[i] = v
			}
		}
	}
	return out, nil
}

// TestHybridFusion: the embedded store fuses the lexical and the vector
// ranking of runbooks with alpha-weighted reciprocal ranks,
// (1-α)/(60+rank_lexical) + α/(60+rank_vector), ranks from 1, a runbook
// absent from one ranking getting nothing from it.
func TestHybridFusion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	// Lexical ranking for "zebra": a (three times), b (once); c never says
	// it. Vector ranking for the query [1 0 0]: c, b, a.
	fsys := fstest.MapFS{
		"a.md": {Data: []byte("# Runbook A\n\nzebra zebra zebra, aardvark.\n")},
		"b.md": {Data: []byte("# Runbook B\n\nA zebra and a badger and many more words about other animals.\n")},
		"c.md": {Data: []byte("# Runbook C\n\nOnly the chameleon.\n")},
	}
	emb := markerEmbedder{
		"aardvark":  {0, 0, 1},
		"badger":    {0.8, 0.6, 0},
		"chameleon": {1, 0, 0},
	}
	in := &rag.Ingester{Store: s, Embedder: emb}
	if _, err := in.Ingest(ctx, "r", fsys); err != nil {
		t.Fatal(err)
	}
	rrf := func(alpha float64, lex, vec int) float64 {
		x := 0.0
		if lex > 0 {
			x += (1 - alpha) / (60 + float64(lex))
		}
		if vec > 0 {
			x += alpha / (60 + float64(vec))
		}
		return x
	}
	// rank in the lexical list, rank in the vector list (0: absent).
	ranks := map[string][2]int{"a.md": {1, 3}, "b.md": {2, 2}, "c.md": {0, 1}}
	for _, c := range []struct {
		alpha float64
		want  []string
	}{
		{0, []string{"a.md", "b.md"}}, // lexical only
		{0.5, []string{"a.md", "b.md", "c.md"}},
		{0.8, []string{"b.md", "a.md", "c.md"}}, // b is second in both
		{1, []string{"c.md", "b.md", "a.md"}},   // vectors only
	} {
		alpha := c.alpha
		hits, err := s.Search(ctx, rag.Query{Text: "zebra", Vector: []float32{1, 0, 0}, Alpha: &alpha, TopK: 5})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hits {
			got = append(got, h.Source)
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("alpha %v: %v, want %v", alpha, got, c.want)
			continue
		}
		if alpha == 0 {
			continue // BM25 scores, not fused
		}
		for _, h := range hits {
			r := ranks[h.Source]
			if want := rrf(alpha, r[0], r[1]); math.Abs(h.Score-want) > 1e-12 {
				t.Errorf("alpha %v: %s scores %v, want %v", alpha, h.Source, h.Score, want)
			}
		}
	}
}
