package rag

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/medichq/medic/event"
)

// Retriever finds the runbooks for a finding or a question: a direct link
// first (the alert's runbook_url, then its name), then hybrid search.
type Retriever struct {
	Store Store
	// Embedder, when set, makes searches hybrid (the query is embedded).
	Embedder Embedder
	// Redactor cleans query text before it is sent to the embedding model.
	Redactor *Redactor
	// Logger receives warnings (an embedding model that fails makes the
	// search lexical only); nil discards them.
	Logger *slog.Logger
}

// Search runs a lexical (and, with an embedder, vector) search and returns
// at most topK runbooks, each once, as its best-matching chunk. perSource is
// kept for callers' sake but a source never comes back twice: both stores
// rank runbooks, and the results are deduplicated here once more.
func (r *Retriever) Search(ctx context.Context, text string, topK, perSource int) ([]Hit, error) {
	if r == nil || r.Store == nil {
		return nil, nil
	}
	if topK <= 0 {
		topK = 5
	}
	perSource = 1
	q := Query{Text: text, TopK: topK}
	if r.Embedder != nil && strings.TrimSpace(text) != "" {
		clean, _ := r.Redactor.Redact(text)
		vecs, err := r.Embedder.Embed(ctx, []string{clean})
		switch {
		case err != nil:
			// Lexical search still answers.
			r.logger().Warn("could not embed the query; searching lexically only", "err", err)
		case len(vecs) == 1:
			q.Vector = vecs[0]
		}
	}
	hits, err := r.Store.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	return limitPerSource(hits, topK, perSource, ""), nil
}

// ForFinding returns the runbook hits for a finding: the chunks of the
// runbook its runbook_url or alert name links to (Direct), then search hits
// from other runbooks, up to topK sources with perSource chunks each.
func (r *Retriever) ForFinding(ctx context.Context, f *event.Finding, topK, perSource int) ([]Hit, error) {
	if r == nil || r.Store == nil || f == nil {
		return nil, nil
	}
	if topK <= 0 {
		topK = 3
	}
	if perSource <= 0 {
		perSource = 1
	}
	text := FindingQuery(f)
	direct, err := r.Direct(ctx, &f.Event, text)
	if err != nil {
		return nil, err
	}
	hits := limitPerSource(direct, 1, perSource, "")
	if len(hits) > 0 && topK == 1 {
		return hits, nil
	}
	found, err := r.Search(ctx, text, topK+1, perSource)
	if err != nil {
		if len(hits) > 0 {
			r.logger().Warn("knowledge-base search failed; keeping the linked runbook only", "err", err)
			return hits, nil
		}
		return nil, err
	}
	skip := ""
	if len(hits) > 0 {
		skip = sourceKey(hits[0].Root, hits[0].Source)
	}
	hits = append(hits, limitPerSource(found, topK-len(distinctSources(hits)), perSource, skip)...)
	return hits, nil
}

func (r *Retriever) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Direct returns the chunks of the runbook the event links to, ordered by
// relevance to text: by its runbook_url annotation when the knowledge base
// has that page, else by its alert name. Nil when neither matches.
func (r *Retriever) Direct(ctx context.Context, ev *event.Event, text string) ([]Hit, error) {
	for _, k := range []string{"runbook_url", "runbook"} {
		u := ev.Annotations[k]
		if !strings.Contains(u, "://") {
			continue
		}
		hits, err := r.Store.Search(ctx, Query{Text: text, RunbookURL: NormalizeURL(u), TopK: 100})
		if err != nil {
			return nil, fmt.Errorf("look up runbook %s: %w", u, err)
		}
		if len(hits) > 0 {
			return markDirect(bestSource(hits, "")), nil
		}
	}
	name := ev.Labels["alertname"]
	if name == "" {
		return nil, nil
	}
	hits, err := r.Store.Search(ctx, Query{Text: text, Alert: name, TopK: 100})
	if err != nil {
		return nil, fmt.Errorf("look up runbook for %s: %w", name, err)
	}
	return markDirect(bestSource(hits, name)), nil
}

// bestSource keeps the chunks of one source: the one named after the alert
// when there is one (a runbook whose H1 merely repeats another alert's name
// loses to the file named after it), else the best-scoring one.
func bestSource(hits []Hit, alert string) []Hit {
	if len(hits) == 0 {
		return nil
	}
	pick := sourceKey(hits[0].Root, hits[0].Source)
	if alert != "" {
		for _, h := range hits {
			stem := strings.TrimSuffix(path.Base(h.Source), path.Ext(h.Source))
			if strings.EqualFold(stem, alert) {
				pick = sourceKey(h.Root, h.Source)
				break
			}
		}
	}
	var out []Hit
	for _, h := range hits {
		if sourceKey(h.Root, h.Source) == pick {
			out = append(out, h)
		}
	}
	return out
}

func markDirect(hits []Hit) []Hit {
	for i := range hits {
		hits[i].Direct = true
	}
	return hits
}

func sourceKey(root, source string) string { return root + "\x00" + source }

func distinctSources(hits []Hit) map[string]bool {
	m := map[string]bool{}
	for _, h := range hits {
		m[sourceKey(h.Root, h.Source)] = true
	}
	return m
}

// limitPerSource keeps hits in order, at most perSource per source (0: any)
// and at most maxSources sources, skipping the source skip.
func limitPerSource(hits []Hit, maxSources, perSource int, skip string) []Hit {
	if maxSources <= 0 {
		return nil
	}
	count := map[string]int{}
	var out []Hit
	for _, h := range hits {
		k := sourceKey(h.Root, h.Source)
		if k == skip {
			continue
		}
		if _, seen := count[k]; !seen && len(count) >= maxSources {
			continue
		}
		if perSource > 0 && count[k] >= perSource {
			continue
		}
		count[k]++
		out = append(out, h)
	}
	return out
}

// BestPerSource keeps the first (best) hit of each source, at most topK
// sources: how a store that ranks chunks returns runbooks.
func BestPerSource(hits []Hit, topK int) []Hit { return limitPerSource(hits, topK, 1, "") }

// RankSources returns the distinct sources of hits in rank order.
func RankSources(hits []Hit) []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range hits {
		k := h.Source
		if h.Root != "" {
			k = h.Root + ":" + h.Source
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

var errorLineRE = regexp.MustCompile(`(?i)\b(error|err|fail(ed|ure|ing)?|fatal|panic|exception|refused|denied|forbidden|timed? ?out|timeout|oom|killed|cannot|can't|unable|invalid|not found|no such|back-?off|crash|unhealthy|exceeded)\b`)

var reasonKeyRE = regexp.MustCompile(`(?i)^(reason|message|status|state|last state|exit code|error)s?$`)

const (
	// queryLogLines: the last error lines say what broke; earlier ones are
	// mostly its echoes (retries, stack frames) and drown the signal.
	queryLogLines = 2
	queryLineMax  = 240
	queryMaxChars = 1500
)

// FindingQuery is the search text for a finding, built from its strongest
// signals rather than all of its text: the alert name, the event kind in
// words (pod_oom_killed → "pod oom killed") and the subject's Kind (Pod,
// Node, StatefulSet), the titles and the summary, the reasons of its
// enrichments (CrashLoopBackOff, BackOff and their messages), the last error
// lines of its logs, and only then the first sentence of each description
// (descriptions repeat the summary with label values and numbers).
// Timestamps and IDs are left out, so a re-fired alert gives the same query.
func FindingQuery(f *event.Finding) string {
	var parts []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s == "" {
			return
		}
		for _, p := range parts {
			if p == s {
				return
			}
		}
		parts = append(parts, s)
	}
	ev := &f.Event
	add(ev.Labels["alertname"])
	switch ev.Kind {
	case "", event.KindPrometheusAlert, event.KindManual, event.KindSchedule:
	default:
		add(strings.ReplaceAll(string(ev.Kind), "_", " "))
	}
	add(ev.Subject.Kind)
	add(f.Title)
	add(ev.Title)
	add(ev.Annotations["summary"])
	for _, l := range reasonLines(f) {
		add(l)
	}
	for _, l := range errorLines(f, queryLogLines) {
		add(l)
	}
	add(firstSentence(f.Description))
	add(firstSentence(ev.Description))
	for _, k := range []string{"description", "message"} {
		add(firstSentence(ev.Annotations[k]))
	}
	q := strings.Join(parts, "\n")
	if len(q) > queryMaxChars {
		q = clip(q, queryMaxChars)
	}
	return q
}

// firstSentence is the first sentence (or line) of s, clipped.
func firstSentence(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	return clip(s, queryLineMax)
}

// reasonLines are table rows and markdown lines that carry a reason or a
// message (a pod's waiting reason, an event's message).
func reasonLines(f *event.Finding) []string {
	var out []string
	for _, e := range f.Enrichments {
		for _, b := range e.Blocks {
			switch b.Kind {
			case event.BlockTable:
				if b.Table == nil {
					continue
				}
				cols := map[int]bool{}
				for i, h := range b.Table.Headers {
					if reasonKeyRE.MatchString(strings.TrimSpace(h)) {
						cols[i] = true
					}
				}
				for _, row := range b.Table.Rows {
					if len(b.Table.Headers) == 0 && len(row) == 2 && reasonKeyRE.MatchString(strings.TrimSpace(row[0])) {
						out = append(out, clip(row[1], queryLineMax))
						continue
					}
					for i, cell := range row {
						if cols[i] && strings.TrimSpace(cell) != "" {
							out = append(out, clip(cell, queryLineMax))
						}
					}
				}
			case event.BlockMarkdown:
				for line := range strings.SplitSeq(b.Markdown, "\n") {
					l := strings.TrimSpace(strings.Trim(line, "-*• "))
					k, _, ok := strings.Cut(l, ":")
					if ok && reasonKeyRE.MatchString(strings.Trim(k, "*_ ")) {
						out = append(out, clip(l, queryLineMax))
					}
				}
			}
		}
	}
	return out
}

// errorLines are the last n error-looking lines of the finding's logs.
func errorLines(f *event.Finding, n int) []string {
	var out []string
	for _, e := range f.Enrichments {
		for _, b := range e.Blocks {
			if b.Kind != event.BlockLog || b.Log == nil {
				continue
			}
			lines := strings.Split(strings.TrimRight(b.Log.Text, "\n"), "\n")
			var picked []string
			for i := len(lines) - 1; i >= 0 && len(picked) < n; i-- {
				if errorLineRE.MatchString(lines[i]) {
					picked = append(picked, clip(strings.TrimSpace(lines[i]), queryLineMax))
				}
			}
			for i := len(picked) - 1; i >= 0; i-- {
				out = append(out, picked[i])
			}
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// SortHits orders hits by score, then source and position, for stores that
// merge several result lists.
func SortHits(hits []Hit) {
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		if hits[i].Root != hits[j].Root {
			return hits[i].Root < hits[j].Root
		}
		if hits[i].Source != hits[j].Source {
			return hits[i].Source < hits[j].Source
		}
		return hits[i].Seq < hits[j].Seq
	})
}
