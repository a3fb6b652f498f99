// Package promql holds prometheus_enricher: it runs a PromQL query, written
// as a template over the event, against the configured Prometheus and adds
// the result as a table and, for a range query, a PNG graph.
package promql

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// Params are the parameters of prometheus_enricher.
type Params struct {
	// Query is a PromQL template over the event, e.g.
	// rate(container_cpu_usage_seconds_total{pod="{{ .Labels.pod }}"}[5m]).
	Query string `yaml:"query"`
	// Title heads the enrichment; default "Prometheus: <query>".
	Title string `yaml:"title"`
	// Range turns the query into a range query over the last Range (ending
	// when the alert resolved, or now); 0 is an instant query. Durations
	// are written as in PromQL: 90m, 6h, 1d.
	Range model.Duration `yaml:"range"`
	// Step is the range query's resolution; 0 picks Range/120, at least 15s.
	Step model.Duration `yaml:"step"`
	// Graph draws a PNG of a range query's series.
	Graph bool `yaml:"graph"`
	// MaxSeries bounds the rows and lines shown.
	MaxSeries int `yaml:"max_series"`
}

// Validate checks the query template and bounds at load time.
func (p *Params) Validate() error {
	if strings.TrimSpace(p.Query) == "" {
		return errors.New("query is required")
	}
	if _, err := actions.ParseTemplate("query", p.Query); err != nil {
		return err
	}
	if p.Range > 0 && time.Duration(p.Range) < time.Minute {
		return fmt.Errorf("range must be at least 1m, got %s", p.Range)
	}
	if p.Range > 0 && p.Step > 0 && p.Range/p.Step > 11000 {
		return fmt.Errorf("range %s / step %s is more than the 11,000 points Prometheus returns", p.Range, p.Step)
	}
	if p.MaxSeries < 1 || p.MaxSeries > 100 {
		return fmt.Errorf("max_series must be between 1 and 100, got %d", p.MaxSeries)
	}
	return nil
}

// now is the clock; tests do not replace it (they assert on behaviour, not
// on times), it only keeps the anchor in one place.
var now = time.Now

// Deps is what prometheus_enricher uses of actions.Env: the Prometheus API,
// and the cluster name its query template may use.
type Deps = interface {
	PrometheusAPI() promv1.API
	Cluster() string
}

// Register adds package promql's action, prometheus_enricher.
func Register(r *actions.Registry) {
	actions.Add(r, "prometheus_enricher",
		"Run a PromQL query (a template over the event) against the configured Prometheus and add the result as a table, with a PNG graph for a range query.",
		func() *Params { return &Params{Graph: true, MaxSeries: 10} },
		func(p *Params) (actions.Runner[Deps], error) {
			q, err := actions.ParseTemplate("query", p.Query)
			if err != nil {
				return nil, err
			}
			params := *p
			return actions.RunFunc[Deps](func(ctx context.Context, deps Deps, f *event.Finding) error {
				title := params.Title
				if title == "" {
					title = "Prometheus"
				}
				err := enrich(ctx, deps, f, q, params, title)
				if err == nil || errors.Is(err, context.Canceled) {
					return err
				}
				f.Add(event.Enrichment{Title: title, Source: "prometheus_enricher",
					Blocks: []event.Block{event.MarkdownBlock("⚠ " + err.Error())}})
				return nil
			}), nil
		})
}

func enrich(ctx context.Context, deps Deps, f *event.Finding, q *actions.Template, p Params, title string) error {
	api := deps.PrometheusAPI()
	if api == nil {
		return errors.New("no Prometheus configured (prometheus.url in medic.yaml)")
	}
	query, err := q.Render(deps.Cluster(), f)
	if err != nil {
		return err
	}
	query = strings.TrimSpace(query)
	end := now()
	if e := f.Event.EndsAt; !e.IsZero() && e.Before(end) {
		end = e // a resolved alert: show the time up to its end
	}
	var (
		val      model.Value
		warnings promv1.Warnings
	)
	var r promv1.Range
	if p.Range > 0 {
		span, step := time.Duration(p.Range), time.Duration(p.Step)
		if step == 0 {
			step = max((span / 120).Truncate(time.Second), 15*time.Second)
		}
		r = promv1.Range{Start: end.Add(-span), End: end, Step: step}
		val, warnings, _, err = api.QueryRange(ctx, query, r)
	} else {
		val, warnings, _, err = api.Query(ctx, query, end)
	}
	if err != nil {
		return fmt.Errorf("query %s failed: %w", query, err)
	}
	if p.Title == "" {
		title = "Prometheus: " + query
	}
	blocks := ResultBlocks(val, p.MaxSeries)
	if m, ok := val.(model.Matrix); ok && p.Graph && len(m) > 0 {
		png, err := Graph(m, GraphOptions{Title: query, Start: r.Start, End: r.End, MaxSeries: p.MaxSeries})
		if err != nil {
			blocks = append(blocks, event.MarkdownBlock("⚠ graph: "+err.Error()))
		} else {
			blocks = append(blocks, event.Block{Kind: event.BlockImage, Image: &event.ImageBlock{Name: "graph.png", PNG: png}})
		}
	}
	if len(warnings) > 0 {
		blocks = append(blocks, event.MarkdownBlock("Prometheus warned: "+strings.Join(warnings, "; ")))
	}
	f.Add(event.Enrichment{Title: title, Source: "prometheus_enricher", Blocks: blocks})
	return nil
}

// ResultBlocks renders a query result as a table: one row per series with
// its value (instant) or its last, min and max (range).
func ResultBlocks(v model.Value, maxSeries int) []event.Block {
	var rows [][]string
	var headers []string
	omitted := 0
	switch v := v.(type) {
	case model.Vector:
		headers = []string{"series", "value"}
		vec := slices.Clone(v)
		slices.SortStableFunc(vec, func(a, b *model.Sample) int { return strings.Compare(a.Metric.String(), b.Metric.String()) })
		if len(vec) > maxSeries {
			omitted, vec = len(vec)-maxSeries, vec[:maxSeries]
		}
		for _, s := range vec {
			rows = append(rows, []string{seriesName(s.Metric), formatValue(float64(s.Value))})
		}
	case model.Matrix:
		headers = []string{"series", "last", "min", "max"}
		m := slices.Clone(v)
		slices.SortStableFunc(m, func(a, b *model.SampleStream) int { return strings.Compare(a.Metric.String(), b.Metric.String()) })
		if len(m) > maxSeries {
			omitted, m = len(m)-maxSeries, m[:maxSeries]
		}
		for _, s := range m {
			if len(s.Values) == 0 {
				rows = append(rows, []string{seriesName(s.Metric), "-", "-", "-"})
				continue
			}
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, p := range s.Values {
				lo, hi = math.Min(lo, float64(p.Value)), math.Max(hi, float64(p.Value))
			}
			rows = append(rows, []string{seriesName(s.Metric), formatValue(float64(s.Values[len(s.Values)-1].Value)), formatValue(lo), formatValue(hi)})
		}
	case *model.Scalar:
		headers = []string{"value"}
		rows = [][]string{{formatValue(float64(v.Value))}}
	case *model.String:
		headers = []string{"value"}
		rows = [][]string{{v.Value}}
	default:
		return []event.Block{event.MarkdownBlock("The query returned no data.")}
	}
	if len(rows) == 0 {
		return []event.Block{event.MarkdownBlock("The query returned no data.")}
	}
	if omitted > 0 {
		rows = append(rows, []string{fmt.Sprintf("… %d more series", omitted)})
	}
	return []event.Block{{Kind: event.BlockTable, Table: &event.TableBlock{Headers: headers, Rows: rows}}}
}

// seriesName is name{labels}, or {} for a series without labels.
func seriesName(m model.Metric) string {
	if len(m) == 0 {
		return "{}"
	}
	return m.String()
}

// formatValue prints a value with at most 4 significant digits after the
// point, without exponent for everyday magnitudes.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case math.Abs(v) >= 1e-3 && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', decimals(v), 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func decimals(v float64) int {
	a := math.Abs(v)
	switch {
	case a >= 100:
		return 1
	case a >= 1:
		return 3
	}
	return 4
}

// Config is how medic reaches Prometheus (the prometheus: block of
// medic.yaml).
type Config struct {
	URL             string
	BearerTokenFile string
	Timeout         time.Duration
}

// NewAPI returns the client prometheus_enricher uses. The bearer token is
// read from its file on every request, so a rotated service-account token
// is picked up without a restart.
func NewAPI(c Config) (promv1.API, error) {
	var rt http.RoundTripper = api.DefaultRoundTripper
	if c.BearerTokenFile != "" {
		if _, err := os.ReadFile(c.BearerTokenFile); err != nil {
			return nil, fmt.Errorf("prometheus.bearer_token_file: %w", err)
		}
		u, err := url.Parse(c.URL)
		if err != nil {
			return nil, fmt.Errorf("prometheus.url: %w", err)
		}
		rt = &bearerFile{path: c.BearerTokenFile, host: u.Host, next: rt}
	}
	client, err := api.NewClient(api.Config{Address: c.URL, Client: &http.Client{Transport: rt, Timeout: c.Timeout}})
	if err != nil {
		return nil, fmt.Errorf("prometheus.url: %w", err)
	}
	return promv1.NewAPI(client), nil
}

type bearerFile struct {
	path string
	// host is prometheus.url's: a redirect elsewhere goes without the
	// token (a transport adds it to every request, so http.Client's own
	// stripping of Authorization on redirects does not apply).
	host string
	next http.RoundTripper
}

func (b *bearerFile) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Host, b.host) {
		return b.next.RoundTrip(req)
	}
	tok, err := os.ReadFile(b.path)
	if err != nil {
		return nil, fmt.Errorf("read prometheus bearer token: %w", err)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	return b.next.RoundTrip(req)
}
