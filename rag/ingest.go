package rag

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// Ingester reads a tree of documents into a Store incrementally: files whose
// content hash (and embedding model) did not change are skipped, files that
// disappeared are removed.
type Ingester struct {
	Store Store
	// Embedder, when set, gives every chunk a vector.
	Embedder Embedder
	Chunking ChunkOptions
	// URLFor gives a source's published URL when the document names none.
	URLFor func(source string) string
	// Progress, when set, is told about each file.
	Progress Progress
	// Redactor, when set, cleans chunk text before it is sent to the
	// embedding model (the stored text is unchanged).
	Redactor *Redactor
}

// Progress receives ingestion progress.
type Progress interface {
	Start(root string, total int)
	// Step reports one file: action is added, updated, unchanged, deleted,
	// duplicate (same content under another root) or failed.
	Step(source, action string)
	Done(r IngestReport)
}

// IngestReport says what one ingestion did.
type IngestReport struct {
	Root      string `json:"root"`
	Files     int    `json:"files"`
	Added     int    `json:"added"`
	Updated   int    `json:"updated"`
	Unchanged int    `json:"unchanged"`
	Deleted   int    `json:"deleted"`
	Failed    int    `json:"failed"`
	// Duplicates are files skipped because another root already holds the
	// same content (a team's copy of the built-in runbooks).
	Duplicates int           `json:"duplicates,omitempty"`
	Chunks     int           `json:"chunks"` // chunks written
	Duration   time.Duration `json:"duration"`
}

func (r IngestReport) String() string {
	dup := ""
	if r.Duplicates > 0 {
		dup = fmt.Sprintf(", %d duplicate", r.Duplicates)
	}
	return fmt.Sprintf("%s: %d files (%d added, %d updated, %d unchanged, %d deleted, %d failed%s), %d chunks written in %s",
		r.Root, r.Files, r.Added, r.Updated, r.Unchanged, r.Deleted, r.Failed, dup, r.Chunks, r.Duration.Round(time.Millisecond))
}

const (
	ingestBatchFiles  = 32
	ingestBatchChunks = 512
	embedBatch        = 32
)

// Ingest makes the store's content for root equal to the supported files of
// fsys. It keeps going past a file it cannot read and reports those at the end.
func (in *Ingester) Ingest(ctx context.Context, root string, fsys fs.FS) (IngestReport, error) {
	start := time.Now()
	rep := IngestReport{Root: root}
	files, err := listFiles(fsys)
	if err != nil {
		return rep, fmt.Errorf("list %s: %w", root, err)
	}
	rep.Files = len(files)
	known, err := in.Store.Sources(ctx)
	if err != nil {
		return rep, fmt.Errorf("list ingested sources: %w", err)
	}
	have := map[string]SourceInfo{}
	elsewhere := map[string]bool{} // content hashes other roots hold
	for _, s := range known {
		if s.Root == root {
			have[s.Source] = s
		} else if s.Hash != "" {
			elsewhere[s.Hash] = true
		}
	}
	embedModel := ""
	if in.Embedder != nil {
		embedModel = in.Embedder.EmbeddingModel()
	}
	if in.Progress != nil {
		in.Progress.Start(root, len(files)+countMissing(have, files))
	}
	var (
		batch   []Chunk
		actions []string
		sources []string
		errs    []error
	)
	flush := func() error {
		if len(sources) == 0 {
			return nil
		}
		if err := in.embed(ctx, batch); err != nil {
			return err
		}
		if err := in.Store.Upsert(ctx, batch); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		rep.Chunks += len(batch)
		for i, s := range sources {
			if in.Progress != nil {
				in.Progress.Step(s, actions[i])
			}
		}
		batch, actions, sources = nil, nil, nil
		return nil
	}
	for _, name := range files {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		content, err := fs.ReadFile(fsys, name)
		if err != nil {
			rep.Failed++
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			if in.Progress != nil {
				in.Progress.Step(name, "failed")
			}
			continue
		}
		hash := HashContent(content)
		prev, existed := have[name]
		if existed && prev.Hash == hash && (embedModel == "" || prev.EmbeddingModel == embedModel) {
			rep.Unchanged++
			if in.Progress != nil {
				in.Progress.Step(name, "unchanged")
			}
			continue
		}
		if !existed && elsewhere[hash] {
			// The same file under another root (`kb ingest` of a copy of
			// the built-in runbooks): a second copy would fill search
			// results twice. A file this root already holds is kept.
			rep.Duplicates++
			if in.Progress != nil {
				in.Progress.Step(name, "duplicate")
			}
			continue
		}
		doc := ParseDocument(root, name, content)
		if doc.URL == "" && in.URLFor != nil {
			doc.URL = in.URLFor(name)
		}
		chunks := doc.Chunks(in.Chunking)
		if len(chunks) == 0 {
			// An empty file still replaces what was there.
			chunks = []Chunk{{ID: ChunkID(root, name, 0), Root: root, Source: name, Title: doc.Title, URL: doc.URL, Hash: hash}}
		}
		action := "added"
		if existed {
			action = "updated"
			rep.Updated++
		} else {
			rep.Added++
		}
		batch = append(batch, chunks...)
		actions = append(actions, action)
		sources = append(sources, name)
		if len(sources) >= ingestBatchFiles || len(batch) >= ingestBatchChunks {
			if err := flush(); err != nil {
				return rep, err
			}
		}
	}
	if err := flush(); err != nil {
		return rep, err
	}
	present := map[string]bool{}
	for _, f := range files {
		present[f] = true
	}
	var gone []string
	for s := range have {
		if !present[s] {
			gone = append(gone, s)
		}
	}
	sort.Strings(gone)
	for _, s := range gone {
		if err := in.Store.DeleteSource(ctx, root, s); err != nil {
			return rep, fmt.Errorf("delete %s: %w", s, err)
		}
		rep.Deleted++
		if in.Progress != nil {
			in.Progress.Step(s, "deleted")
		}
	}
	rep.Duration = time.Since(start)
	if in.Progress != nil {
		in.Progress.Done(rep)
	}
	return rep, errors.Join(errs...)
}

func (in *Ingester) embed(ctx context.Context, chunks []Chunk) error {
	if in.Embedder == nil || len(chunks) == 0 {
		return nil
	}
	model := in.Embedder.EmbeddingModel()
	for i := 0; i < len(chunks); i += embedBatch {
		part := chunks[i:min(i+embedBatch, len(chunks))]
		texts := make([]string, len(part))
		for j := range part {
			texts[j] = part[j].SearchText()
			if in.Redactor != nil {
				texts[j], _ = in.Redactor.Redact(texts[j])
			}
		}
		vecs, err := in.Embedder.Embed(ctx, texts)
		if err != nil {
			return fmt.Errorf("embed: %w", err)
		}
		if len(vecs) != len(part) {
			return fmt.Errorf("embed: %d vectors for %d texts", len(vecs), len(part))
		}
		for j := range part {
			part[j].Vector = vecs[j]
			part[j].EmbeddingModel = model
		}
	}
	return nil
}

// StaleEmbeddings reports whether the store holds vectors of another
// embedding model than model (or none where model wants some): the whole
// store must then be rebuilt, since one vector index cannot mix models.
func StaleEmbeddings(ctx context.Context, s Store, model string) (bool, error) {
	if model == "" {
		return false, nil
	}
	srcs, err := s.Sources(ctx)
	if err != nil {
		return false, err
	}
	for _, x := range srcs {
		if x.EmbeddingModel != model {
			return true, nil
		}
	}
	return false, nil
}

func countMissing(have map[string]SourceInfo, files []string) int {
	n := len(have)
	for _, f := range files {
		if _, ok := have[f]; ok {
			n--
		}
	}
	return n
}

// listFiles returns the supported files of fsys, sorted, skipping hidden
// folders (.git) and vendored dependencies.
func listFiles(fsys fs.FS) ([]string, error) {
	var out []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		base := path.Base(p)
		if d.IsDir() {
			if p != "." && (strings.HasPrefix(base, ".") || base == "node_modules" || base == "vendor") {
				return fs.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && !strings.HasPrefix(base, ".") && SupportedFile(p) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}
