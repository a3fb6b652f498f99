// Command evalrag prints how well medic's knowledge base finds the right
// runbook (`make eval-rag`): the evaluation of package evalrag, for the
// embedded store (chunked BM25; a whole-file index, one chunk per file,
// for comparison; hybrid when ai.embedding_model is configured) and for a
// real Weaviate (BM25, on loopback in a private network namespace, built
// into the tools cache when missing). It prints recall@1, recall@3 and
// MRR per question set and store, and the symptom searches' latency.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/app"
	"github.com/medichq/medic/internal/plugins" // the plugins, and the validation of their configuration
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/embedded"
	"github.com/medichq/medic/test/evalrag"
)

// result is one store's report under a name.
type result struct {
	Index  string
	Report *evalrag.Report
}

func main() {
	rulesPath := flag.String("rules", "", "alert-rules.json (default: the module's internal/fixtures/testdata/alert-rules.json)")
	cfgPath := flag.String("config", os.Getenv("MEDIC_CONFIG"), "medic.yaml with ai.embedding_model for the hybrid rows")
	symptoms := flag.String("symptoms", "", "a symptom question set (default: the built-in testdata/symptoms.json)")
	verbose := flag.Bool("v", false, "list the questions whose runbook is not first")
	withWeaviate := flag.Bool("weaviate", true, "evaluate a real Weaviate too")
	child := flag.Bool("weaviate-child", false, "internal: evaluate Weaviate here and print JSON")
	flag.Parse()
	var err error
	if *child {
		err = weaviateChild(*rulesPath, *symptoms)
	} else {
		err = run(*rulesPath, *cfgPath, *symptoms, *verbose, *withWeaviate)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "evalrag:", err)
		os.Exit(1)
	}
}

func run(rulesPath, cfgPath, symptomsPath string, verbose, withWeaviate bool) error {
	ctx := context.Background()
	set, err := evalrag.Load(rulesPath, symptomsPath)
	if err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath, os.Environ(), plugins.Builtin().ValidateConfig)
	if err != nil {
		return err
	}
	client, err := app.ModelClient(cfg.AI)
	if err != nil {
		return err
	}
	var emb rag.Embedder
	if client != nil && cfg.AI.EmbeddingModel != "" {
		emb = client
	}
	tmp, err := os.MkdirTemp("", "medic-evalrag-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(os.Stderr, "%d alert rules with a runbook in the default knowledge base, %d without; %d symptom questions\n",
		set.Alerts(), set.Skipped, set.Symptoms())

	var results []result
	evalEmbedded := func(name string, chunking rag.ChunkOptions, e rag.Embedder) error {
		s, err := embedded.Open(embedded.Options{Dir: filepath.Join(tmp, fmt.Sprint(len(results)))})
		if err != nil {
			return err
		}
		defer s.Close()
		rep, err := ingestAndRun(ctx, name, s, e, chunking, set)
		if err != nil {
			return err
		}
		results = append(results, result{Index: name, Report: rep})
		return nil
	}
	if err := evalEmbedded("embedded BM25", rag.DefaultChunkOptions(), nil); err != nil {
		return err
	}
	if err := evalEmbedded("embedded whole-file (1 chunk/file)", rag.ChunkOptions{WholeFile: true, TargetChars: 1, MaxChars: 1}, nil); err != nil {
		return err
	}
	if emb != nil {
		if err := evalEmbedded("embedded hybrid ("+emb.EmbeddingModel()+")", rag.DefaultChunkOptions(), emb); err != nil {
			return err
		}
	}
	weaviateNote := ""
	if withWeaviate {
		wr, err := runWeaviate(rulesPath, symptomsPath)
		if err != nil {
			weaviateNote = "Weaviate not evaluated: " + err.Error()
		}
		results = append(results, wr...)
	}

	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "query\tindex\tn\trecall@1\trecall@3\tMRR")
	for _, mode := range evalrag.Modes {
		for _, r := range results {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", mode, r.Index, r.Report.Modes[mode].Row())
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Printf("\nsymptom search latency (%d queries each, through the retriever, lexical unless named hybrid):\n", set.Symptoms())
	for _, r := range results {
		p50, p99, mx := evalrag.Percentiles(r.Report.Latency)
		fmt.Printf("  %-40s p50 %s, p99 %s, max %s\n", r.Index, round(p50), round(p99), round(mx))
	}
	if weaviateNote != "" {
		fmt.Println("\n" + weaviateNote)
	}
	if emb == nil {
		fmt.Println("\n(embedded hybrid rows need ai.embedding_model: set MEDIC_AI_BASE_URL and MEDIC_AI_EMBEDDING_MODEL, or --config)")
	}
	if verbose {
		for _, mode := range evalrag.Modes {
			for _, r := range results {
				m := r.Report.Modes[mode]
				if len(m.Misses) == 0 {
					continue
				}
				fmt.Printf("\n%s / %s, not first:\n", mode, r.Index)
				for _, s := range m.Misses {
					fmt.Println("  " + s)
				}
			}
		}
	}
	return nil
}

func ingestAndRun(ctx context.Context, name string, s rag.Store, emb rag.Embedder, chunking rag.ChunkOptions, set *evalrag.Set) (*evalrag.Report, error) {
	start := time.Now()
	ing, err := evalrag.Ingest(ctx, s, emb, chunking)
	if err != nil {
		return nil, fmt.Errorf("%s: ingest: %w", name, err)
	}
	fmt.Fprintf(os.Stderr, "%-40s %d files, %d chunks, ingested in %s\n", name+":", ing.Files, ing.Chunks, time.Since(start).Round(time.Millisecond))
	rep, err := evalrag.Run(ctx, s, emb, set)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return rep, nil
}

func round(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
}

// printJSON writes the child's results for the parent.
func printJSON(rs []result) error {
	return json.NewEncoder(os.Stdout).Encode(rs)
}

// readJSON reads the child's results.
func readJSON(out []byte) ([]result, error) {
	var rs []result
	if err := json.Unmarshal(out, &rs); err != nil {
		return nil, fmt.Errorf("read the Weaviate results: %w (%s)", err, strings.TrimSpace(string(out)))
	}
	return rs, nil
}
