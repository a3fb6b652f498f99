// Command evalrag measures how well medic's knowledge base finds the right
// runbook for an alert (`make eval-rag`).
//
// For every rule in alert-rules.json (kube-prometheus) whose runbook is in
// the default knowledge base, it builds the alert a real Prometheus would
// send (name, summary and description rendered with plausible label values,
// labels from the rule's expression; no file names) and asks where the right
// runbook ranks:
//
//   - linked: the way runbook_enricher and ask_ai retrieve, through the
//     alert's runbook_url annotation and its alertname (a direct link, not a
//     search), and through the alertname alone;
//   - search with name: a search over the query built from the finding
//     (alert name, summary, description), no link;
//   - name removed: a search over summary and description only.
//
// A second set, test/evalrag/testdata/symptoms.json, asks the way on-call
// engineers describe problems ("node ran out of disk"), with no alert names
// and no runbook titles; each question lists the runbooks that answer it
// (any counts). Its search latency percentiles are printed too.
//
// Each is measured on the chunked embedded store (BM25 alone, and hybrid
// when ai.embedding_model is configured) and, for comparison, on a
// whole-file index (one chunk per file, the same runbook ranking). It
// prints recall@1, recall@3 and MRR (rank within the first 10 sources,
// else 0).
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	amtemplate "github.com/prometheus/alertmanager/template"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/app"
	"github.com/medichq/medic/internal/fixtures"
	_ "github.com/medichq/medic/internal/plugins" // sink types, for config validation
	"github.com/medichq/medic/knowledge"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/embedded"
	"github.com/medichq/medic/triggers/alertmanager"
)

type rule struct {
	Alert       string `json:"alert"`
	Expr        string `json:"expr"`
	Severity    string `json:"severity"`
	Summary     string `json:"summary"`
	Description string `json:"description"`
	RunbookURL  string `json:"runbook_url"`
}

type metrics struct {
	n, at1, at3 int
	rr          float64
}

func (m *metrics) add(rank int) {
	m.n++
	if rank == 1 {
		m.at1++
	}
	if rank >= 1 && rank <= 3 {
		m.at3++
	}
	if rank >= 1 {
		m.rr += 1 / float64(rank)
	}
}

func (m metrics) row() string {
	if m.n == 0 {
		return "-\t-\t-\t-"
	}
	return fmt.Sprintf("%d\t%.2f\t%.2f\t%.3f", m.n, float64(m.at1)/float64(m.n), float64(m.at3)/float64(m.n), m.rr/float64(m.n))
}

func main() {
	rulesPath := flag.String("rules", "", "alert-rules.json (default: the module's internal/fixtures/testdata/alert-rules.json)")
	cfgPath := flag.String("config", os.Getenv("MEDIC_CONFIG"), "medic.yaml with ai.embedding_model for the hybrid rows")
	symptoms := flag.String("symptoms", "", "a symptom question set (default: the built-in testdata/symptoms.json)")
	verbose := flag.Bool("v", false, "list the alerts whose runbook is not first")
	flag.Parse()
	if err := run(*rulesPath, *cfgPath, *symptoms, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "evalrag:", err)
		os.Exit(1)
	}
}

func run(rulesPath, cfgPath, symptomsPath string, verbose bool) error {
	ctx := context.Background()
	if rulesPath == "" {
		rulesPath = fixtures.Path("alert-rules.json")
	}
	raw, err := os.ReadFile(rulesPath)
	if err != nil {
		return err
	}
	var rules []rule
	if err := json.Unmarshal(raw, &rules); err != nil {
		return fmt.Errorf("%s: %w", rulesPath, err)
	}
	cfg, err := config.Load(cfgPath, os.Environ())
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
	type index struct {
		name  string
		store *embedded.Store
		emb   rag.Embedder
	}
	open := func(name string, chunking rag.ChunkOptions, e rag.Embedder) (index, error) {
		s, err := embedded.Open(embedded.Options{Dir: filepath.Join(tmp, name)})
		if err != nil {
			return index{}, err
		}
		start := time.Now()
		in := &rag.Ingester{Store: s, Embedder: e, Chunking: chunking, URLFor: knowledge.RunbookURL}
		rep, err := in.Ingest(ctx, knowledge.Root, knowledge.Runbooks())
		if err != nil {
			return index{}, err
		}
		fmt.Fprintf(os.Stderr, "%-28s %d files, %d chunks, ingested in %s\n", name+":", rep.Files, rep.Chunks, time.Since(start).Round(time.Millisecond))
		return index{name: name, store: s, emb: e}, nil
	}
	chunked, err := open("chunked BM25", rag.DefaultChunkOptions(), nil)
	if err != nil {
		return err
	}
	whole, err := open("whole-file (1 chunk/file)", rag.ChunkOptions{WholeFile: true, TargetChars: 1, MaxChars: 1}, nil)
	if err != nil {
		return err
	}
	indexes := []index{chunked, whole}
	if emb != nil {
		hy, err := open("chunked hybrid ("+emb.EmbeddingModel()+")", rag.DefaultChunkOptions(), emb)
		if err != nil {
			return err
		}
		indexes = append(indexes, hy)
	}

	// The runbook each rule should find: its runbook_url's page, else the
	// file named after it.
	type item struct {
		r      rule
		target string
		ev     event.Event
	}
	var items []item
	skipped := 0
	for _, r := range rules {
		target := ""
		if r.RunbookURL != "" {
			hits, err := chunked.store.Search(ctx, rag.Query{RunbookURL: r.RunbookURL, TopK: 1})
			if err != nil {
				return err
			}
			if len(hits) > 0 {
				target = hits[0].Source
			}
		}
		if target == "" {
			hits, _ := chunked.store.Search(ctx, rag.Query{Alert: r.Alert, TopK: 100})
			for _, h := range hits {
				if strings.EqualFold(strings.TrimSuffix(filepath.Base(h.Source), ".md"), r.Alert) {
					target = h.Source
				}
			}
		}
		if target == "" {
			skipped++
			continue
		}
		items = append(items, item{r: r, target: target, ev: alertEvent(r)})
	}
	fmt.Fprintf(os.Stderr, "%d alert rules, %d with a runbook in the default knowledge base, %d without\n\n", len(rules), len(items), skipped)

	type result struct {
		mode, index string
		m           metrics
		misses      []string
	}
	var results []result
	rank := func(hits []rag.Hit, target string) int {
		for i, s := range rag.RankSources(hits) {
			if strings.HasSuffix(s, ":"+target) {
				return i + 1
			}
		}
		return 0
	}
	for _, ix := range indexes {
		r := &rag.Retriever{Store: ix.store, Embedder: ix.emb}
		modes := []struct {
			name string
			run  func(it item) ([]rag.Hit, error)
		}{
			{"linked (runbook_url, alertname)", func(it item) ([]rag.Hit, error) {
				f := event.NewFinding(it.ev, time.Time{})
				return r.ForFinding(ctx, f, 10, 1)
			}},
			{"linked by alertname only (no runbook_url)", func(it item) ([]rag.Hit, error) {
				ev := it.ev
				ev.Annotations = map[string]string{"summary": ev.Annotations["summary"], "description": ev.Annotations["description"]}
				return r.ForFinding(ctx, event.NewFinding(ev, time.Time{}), 10, 1)
			}},
			{"search with name", func(it item) ([]rag.Hit, error) {
				f := event.NewFinding(it.ev, time.Time{})
				return r.Search(ctx, rag.FindingQuery(f), 10, 1)
			}},
			{"name removed (summary, description)", func(it item) ([]rag.Hit, error) {
				return r.Search(ctx, it.ev.Annotations["summary"]+"\n"+it.ev.Annotations["description"], 10, 1)
			}},
		}
		for _, mode := range modes {
			res := result{mode: mode.name, index: ix.name}
			for _, it := range items {
				hits, err := mode.run(it)
				if err != nil {
					return fmt.Errorf("%s / %s / %s: %w", ix.name, mode.name, it.r.Alert, err)
				}
				k := rank(hits, it.target)
				res.m.add(k)
				if k != 1 {
					got := rag.RankSources(hits)
					res.misses = append(res.misses, fmt.Sprintf("%s: rank %d, first %v", it.r.Alert, k, got[:min(3, len(got))]))
				}
			}
			results = append(results, res)
		}
	}
	// The symptom set: questions as on-call engineers phrase them, no alert
	// names, each with the runbooks that answer it (any of them counts).
	syms, err := loadSymptoms(symptomsPath)
	if err != nil {
		return err
	}
	var latencies []time.Duration
	for _, ix := range indexes {
		r := &rag.Retriever{Store: ix.store, Embedder: ix.emb}
		res := result{mode: "symptom questions", index: ix.name}
		for _, sq := range syms {
			start := time.Now()
			hits, err := r.Search(ctx, sq.Question, 10, 1)
			if ix.name == chunked.name {
				latencies = append(latencies, time.Since(start))
			}
			if err != nil {
				return fmt.Errorf("%s / %q: %w", ix.name, sq.Question, err)
			}
			k := 0
			for _, t := range sq.Runbooks {
				if n := rank(hits, t); n > 0 && (k == 0 || n < k) {
					k = n
				}
			}
			res.m.add(k)
			if k != 1 {
				got := rag.RankSources(hits)
				res.misses = append(res.misses, fmt.Sprintf("%q: rank %d, want %v, first %v", sq.Question, k, sq.Runbooks, got[:min(3, len(got))]))
			}
		}
		results = append(results, res)
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "query\tindex\tn\trecall@1\trecall@3\tMRR")
	sort.SliceStable(results, func(i, j int) bool { return modeOrder(results[i].mode) < modeOrder(results[j].mode) })
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.mode, r.index, r.m.row())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Printf("\nsymptom search latency over %d queries (chunked BM25, lexical): %s\n", len(latencies), percentiles(latencies))
	if emb == nil {
		fmt.Println("\n(hybrid rows need ai.embedding_model: set MEDIC_AI_BASE_URL and MEDIC_AI_EMBEDDING_MODEL, or --config)")
	}
	if verbose {
		for _, r := range results {
			if len(r.misses) == 0 {
				continue
			}
			fmt.Printf("\n%s / %s, not first:\n", r.mode, r.index)
			for _, m := range r.misses {
				fmt.Println("  " + m)
			}
		}
	}
	return nil
}

// builtinSymptoms is the symptom set, embedded so that the program runs from
// any folder.
//
//go:embed testdata/symptoms.json
var builtinSymptoms []byte

type symptom struct {
	Question string   `json:"question"`
	Runbooks []string `json:"runbooks"`
}

// loadSymptoms reads the symptom set; every runbook it names must exist in
// the default knowledge base, so a renamed runbook fails loudly rather than
// counting as a miss.
func loadSymptoms(p string) ([]symptom, error) {
	raw := builtinSymptoms
	if p == "" {
		p = "testdata/symptoms.json"
	} else {
		var err error
		if raw, err = os.ReadFile(p); err != nil {
			return nil, fmt.Errorf("symptom set: %w", err)
		}
	}
	var out []symptom
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("symptom set %s: %w", p, err)
	}
	for _, s := range out {
		if len(s.Runbooks) == 0 {
			return nil, fmt.Errorf("symptom set %s: %q names no runbook", p, s.Question)
		}
		for _, rb := range s.Runbooks {
			if _, err := fs.Stat(knowledge.Runbooks(), rb); err != nil {
				return nil, fmt.Errorf("symptom set %s: %q: %w", p, s.Question, err)
			}
		}
	}
	return out, nil
}

// percentiles formats p50/p99/max of the durations.
func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "-"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return fmt.Sprintf("p50 %s, p99 %s, max %s", at(0.50), at(0.99), s[len(s)-1])
}

func modeOrder(m string) int {
	switch {
	case strings.HasPrefix(m, "symptom"):
		return 4
	case strings.HasPrefix(m, "linked by"):
		return 1
	case strings.HasPrefix(m, "linked"):
		return 0
	case strings.HasPrefix(m, "search"):
		return 2
	}
	return 3
}

// alertEvent is the event medic makes of the alert Prometheus would send
// for r, through the same conversion as the webhook.
func alertEvent(r rule) event.Event {
	labels := exprLabels(r.Expr)
	labels["alertname"] = r.Alert
	if r.Severity != "" {
		labels["severity"] = r.Severity
	}
	for _, l := range referencedLabels(r.Summary + " " + r.Description) {
		if _, ok := labels[l]; !ok {
			labels[l] = sampleValue(l)
		}
	}
	ann := map[string]string{
		"summary":     render(r.Summary, labels),
		"description": render(r.Description, labels),
	}
	if r.RunbookURL != "" {
		ann["runbook_url"] = r.RunbookURL
	}
	a := amtemplate.Alert{Status: "firing", Labels: labels, Annotations: ann, StartsAt: time.Unix(1700000000, 0).UTC()}
	return alertmanager.EventFromAlert(a, "", "eval", time.Unix(1700000000, 0).UTC())
}

var matcherRE = regexp.MustCompile(`([a-z_]+)="([^"]*)"`)

// exprLabels are the equality matchers of the rule's expression: labels the
// alert's series carry.
func exprLabels(expr string) map[string]string {
	out := map[string]string{}
	for _, m := range matcherRE.FindAllStringSubmatch(expr, -1) {
		if idx := strings.Index(expr, m[0]); idx > 0 && (expr[idx-1] == '~' || expr[idx-1] == '!') {
			continue
		}
		if m[2] != "" && !strings.ContainsAny(m[2], "|.*") {
			out[m[1]] = m[2]
		}
	}
	return out
}

var labelRefRE = regexp.MustCompile(`\$labels\.([a-z_]+)`)

func referencedLabels(s string) []string {
	var out []string
	for _, m := range labelRefRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

var samples = map[string]string{
	"condition": "MemoryPressure", "container": "app", "controller": "prometheus", "daemonset": "node-exporter",
	"deployment": "web", "device": "eth0", "eviction_signal": "memory.available", "handler": "/api/v1/query",
	"horizontalpodautoscaler": "web", "instance": "10.0.0.12:9100", "integration": "webhook", "job": "node-exporter",
	"job_name": "backup-28190", "mountpoint": "/var/lib/data", "name": "web", "namespace": "shop", "node": "worker-1",
	"persistentvolume": "pvc-3f1a", "persistentvolumeclaim": "data-db-0", "phase": "Failed", "pod": "web-5d9c7b-x2k4q",
	"poddisruptionbudget": "web", "reason": "CrashLoopBackOff", "resource": "pods", "service": "kubelet",
	"statefulset": "db", "url": "http://remote-storage:9201/write", "remote_name": "remote-storage",
	"alertmanager": "alertmanager-main", "mechanism": "static", "master": "10.0.0.2:6443",
}

func sampleValue(label string) string {
	if v, ok := samples[label]; ok {
		return v
	}
	return label + "-1"
}

var (
	withRE   = regexp.MustCompile(`(?s){{-?\s*with\s+\$labels\.[a-z_]+\s*-?}}.*?{{-?\s*end\s*-?}}`)
	actionRE = regexp.MustCompile(`{{-?(.*?)-?}}`)
)

// render fills a rule annotation as Prometheus would for one series.
func render(s string, labels map[string]string) string {
	s = withRE.ReplaceAllString(s, "") // {{ with $labels.cluster }} … {{ end }}: no cluster label
	return actionRE.ReplaceAllStringFunc(s, func(a string) string {
		inner := actionRE.FindStringSubmatch(a)[1]
		switch {
		case strings.Contains(inner, "query"):
			return "10"
		case strings.Contains(inner, "$labels."):
			m := labelRefRE.FindStringSubmatch(inner)
			return labels[m[1]]
		case strings.Contains(inner, "humanizePercentage"):
			return "92.5%"
		case strings.Contains(inner, "humanizeDuration"):
			return "12h 0m 0s"
		case strings.Contains(inner, "$value"):
			return "3"
		}
		return ""
	})
}
