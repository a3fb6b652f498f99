package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/app"
	"github.com/medichq/medic/rag"
)

func newKBCmd() *cobra.Command {
	kb := &cobra.Command{
		Use:   "kb",
		Short: "Manage and search the knowledge base (runbooks)",
		Long: `The knowledge base holds the runbooks that runbook_enricher links and ask_ai cites:
the 108 kube-prometheus runbooks shipped with medic (ingested into an empty knowledge
base), plus what you ingest. It lives in <data_dir>/kb (knowledge_base.store: embedded)
or in Weaviate (knowledge_base.store: weaviate).

  medic kb ingest ./runbooks
  medic kb ingest https://github.com/acme/runbooks#main
  medic kb search "etcd has no leader" --top-k 3 --json

The embedded store can be opened by one process at a time: stop medic serve before
running kb commands against the same data_dir.`,
	}
	kb.AddCommand(newKBIngestCmd(), newKBSearchCmd(), newKBStatusCmd())
	return kb
}

// openKB loads the configuration and opens the knowledge base, with the
// default runbooks ingested when it is empty.
func openKB(ctx context.Context, configFlag string, stderr io.Writer) (*app.Knowledge, config.Config, error) {
	cfg, _, err := loadConfig(configFlag)
	if err != nil {
		return nil, cfg, err
	}
	logger := newLogger(stderr, cfg.Log)
	k, err := app.OpenKnowledge(ctx, cfg, nil, logger)
	if err != nil {
		return nil, cfg, err
	}
	k.Actions = shipped().Actions // what the investigation's tools run
	if rebuilt, err := k.RebuildIfStale(ctx, quietProgress(stderr)); err != nil {
		_ = k.Close()
		return nil, cfg, fmt.Errorf("rebuild the knowledge base for %s: %w", cfg.AI.EmbeddingModel, err)
	} else if rebuilt {
		fmt.Fprintf(stderr, "re-embedded the knowledge base with %s\n", cfg.AI.EmbeddingModel)
	}
	rep, did, err := k.IngestDefaultIfEmpty(ctx, quietProgress(stderr))
	if err != nil {
		_ = k.Close()
		return nil, cfg, fmt.Errorf("ingest the default runbooks: %w", err)
	}
	if did {
		fmt.Fprintf(stderr, "the knowledge base was empty: ingested the default runbooks (%d files, %d chunks)\n", rep.Files, rep.Chunks)
	}
	return k, cfg, nil
}

// progressFor draws a bar on a terminal and prints plain lines otherwise.
func progressFor(w io.Writer) rag.Progress {
	return &rag.TerminalProgress{W: w, Bar: isTerminal(w)}
}

// quietProgress draws a bar on a terminal and prints nothing otherwise (for
// the automatic ingestion of the default runbooks).
func quietProgress(w io.Writer) rag.Progress {
	if isTerminal(w) {
		return &rag.TerminalProgress{W: w, Bar: true}
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func newKBIngestCmd() *cobra.Command {
	var configFlag string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ingest PATH|GIT_URL …",
		Short: "Ingest folders or Git repositories of markdown, text and HTML runbooks",
		Long: `Ingest folders or Git repositories (https://…, git@host:repo, URL#branch) into the
knowledge base. Markdown, text and HTML files are chunked by headings; unchanged files
are skipped by content hash, files that disappeared since the last ingestion of the same
folder or URL are removed, and a file whose content another folder or URL already holds
(a copy of the built-in runbooks) is skipped as a duplicate. With ai.embedding_model set,
every chunk is embedded too.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			stderr := cmd.ErrOrStderr()
			k, _, err := openKB(ctx, configFlag, stderr)
			if err != nil {
				return err
			}
			defer k.Close()
			var reports []rag.IngestReport
			var errs []error
			for _, src := range args {
				p := progressFor(stderr)
				if asJSON {
					p = nil
				}
				rep, err := k.IngestSource(ctx, src, p)
				reports = append(reports, rep)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", src, err))
				}
			}
			if !asJSON {
				return errors.Join(errs...)
			}
			if err := writeJSON(cmd.OutOrStdout(), reports); err != nil {
				return err
			}
			if len(errs) > 0 { // the reports are the JSON; the failures go to stderr only
				fmt.Fprintln(stderr, "medic:", errors.Join(errs...))
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFlag, "config", "c", "", "configuration file (default: $MEDIC_CONFIG, else ./medic.yaml if present)")
	addJSONFlag(cmd, &asJSON, "print the reports as JSON instead of progress")
	return cmd
}

// SearchHit is one line of `medic kb search --json`.
type SearchHit struct {
	Source  string  `json:"source"`
	Title   string  `json:"title"`
	Heading string  `json:"heading"`
	Score   float64 `json:"score"`
	Text    string  `json:"text"`
	URL     string  `json:"url,omitempty"`
	Root    string  `json:"root,omitempty"`
}

func newKBSearchCmd() *cobra.Command {
	var (
		configFlag string
		topK       int
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   `search "query"`,
		Short: "Search the knowledge base (BM25, hybrid with an embedding model)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if topK < 1 {
				return errors.New("--top-k must be at least 1")
			}
			ctx := cmd.Context()
			k, _, err := openKB(ctx, configFlag, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer k.Close()
			// One hit per source (its best chunk): a runbook split into
			// chunks is one answer to the reader, not several.
			hits, err := k.Retriever.Search(ctx, args[0], topK, 1)
			if err != nil {
				return err
			}
			out := make([]SearchHit, len(hits))
			for i, h := range hits {
				out[i] = SearchHit{Source: h.Source, Title: h.Title, Heading: h.Heading, Score: h.Score, Text: h.Text, URL: h.URL, Root: h.Root}
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, out)
			}
			if len(out) == 0 {
				fmt.Fprintln(w, "no match")
				return nil
			}
			for i, h := range out {
				fmt.Fprintf(w, "%d. %s — %s  (%s, score %.3f)\n", i+1, h.Title, h.Heading, h.Source, h.Score)
				if h.URL != "" {
					fmt.Fprintf(w, "   %s\n", h.URL)
				}
				fmt.Fprintf(w, "   %s\n\n", oneLine(h.Text, 200))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFlag, "config", "c", "", "configuration file (default: $MEDIC_CONFIG, else ./medic.yaml if present)")
	cmd.Flags().IntVar(&topK, "top-k", 5, "number of hits")
	addJSONFlag(cmd, &asJSON, "print a JSON array of hits (source, title, heading, score, text)")
	return cmd
}

// kbStatus is `medic kb status --json`.
type kbStatus struct {
	Store          string         `json:"store"`
	Where          string         `json:"where"`
	Version        string         `json:"version"`
	Files          int            `json:"files"`
	EmbeddingModel string         `json:"embedding_model,omitempty"`
	ChatModel      string         `json:"chat_model,omitempty"`
	Roots          []kbStatusRoot `json:"roots"`
}

type kbStatusRoot struct {
	Root  string `json:"root"`
	Files int    `json:"files"`
}

func newKBStatusCmd() *cobra.Command {
	var configFlag string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the knowledge base: store, sources, version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			k, cfg, err := openKB(ctx, configFlag, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer k.Close()
			srcs, err := k.Store.Sources(ctx)
			if err != nil {
				return err
			}
			version, err := k.Store.Version(ctx)
			if err != nil {
				return err
			}
			roots := map[string]int{}
			var order []string
			for _, s := range srcs {
				if roots[s.Root] == 0 {
					order = append(order, s.Root)
				}
				roots[s.Root]++
			}
			w := cmd.OutOrStdout()
			where := cfg.KBDir()
			if cfg.KnowledgeBase.Store == "weaviate" {
				where = cfg.KnowledgeBase.Weaviate.URL + " collection " + cfg.KnowledgeBase.Weaviate.Collection
			}
			if asJSON {
				st := kbStatus{Store: cfg.KnowledgeBase.Store, Where: where, Version: version, Files: len(srcs),
					EmbeddingModel: cfg.AI.EmbeddingModel, ChatModel: cfg.AI.ChatModel, Roots: []kbStatusRoot{}}
				for _, r := range order {
					st.Roots = append(st.Roots, kbStatusRoot{Root: r, Files: roots[r]})
				}
				return writeJSON(w, st)
			}
			fmt.Fprintf(w, "store:     %s (%s)\nversion:   %s\nfiles:     %d\n", cfg.KnowledgeBase.Store, where, version, len(srcs))
			fmt.Fprintf(w, "embedding: %s\nchat:      %s\n", orNone(cfg.AI.EmbeddingModel), orNone(cfg.AI.ChatModel))
			for _, r := range order {
				fmt.Fprintf(w, "  %4d  %s\n", roots[r], r)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFlag, "config", "c", "", "configuration file (default: $MEDIC_CONFIG, else ./medic.yaml if present)")
	addJSONFlag(cmd, &asJSON, "print the store, version and sources as JSON")
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}
