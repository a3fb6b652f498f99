package promql

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/stdout"
)

// fixedNow anchors queries so the graph and the golden file do not depend
// on when the test runs.
var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	now = func() time.Time { return fixedNow }
	os.Exit(m.Run())
}

// fakeProm answers /api/v1/query and /api/v1/query_range like Prometheus,
// and records the requests.
type fakeProm struct {
	mu       sync.Mutex
	requests []*http.Request
	forms    []map[string]string
	answer   func(path string, form map[string]string) (int, string)
}

func (p *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form := map[string]string{}
	for k := range r.Form {
		form[k] = r.Form.Get(k)
	}
	p.mu.Lock()
	p.requests = append(p.requests, r)
	p.forms = append(p.forms, form)
	p.mu.Unlock()
	code, body := p.answer(r.URL.Path, form)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprint(w, body)
}

func startProm(t *testing.T, answer func(path string, form map[string]string) (int, string)) (*fakeProm, *httptest.Server) {
	p := &fakeProm{answer: answer}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv
}

// registered is this package's action, as internal/plugins.Builtin adds it.
var registered = func() *actions.Registry {
	r := actions.NewRegistry()
	Register(r)
	return r
}()

func build(t *testing.T, params string) actions.Action {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(params), &doc); err != nil {
		t.Fatal(err)
	}
	a, err := registered.Build("prometheus_enricher", doc.Content[0])
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return a
}

func crashAlert() *event.Event {
	return &event.Event{
		ID: "a1", Kind: event.KindPrometheusAlert, Status: event.StatusFiring, Severity: event.SeverityWarning,
		Title:  "Pod shop/cart-7d9f8-x2x4k is crash looping",
		Labels: map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9f8-x2x4k", "container": "app"},
	}
}

func run(t *testing.T, env *actions.Env, ev *event.Event, params string) *event.Finding {
	t.Helper()
	f := event.NewFinding(*ev, fixedNow)
	if err := build(t, params).Run(context.Background(), env, f); err != nil {
		t.Fatalf("prometheus_enricher returned an error instead of a note: %v", err)
	}
	if len(f.Enrichments) != 1 {
		t.Fatalf("want one enrichment, got %+v", f.Enrichments)
	}
	return f
}

func apiFor(t *testing.T, url, tokenFile string) *actions.Env {
	t.Helper()
	api, err := NewAPI(Config{URL: url, BearerTokenFile: tokenFile, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &actions.Env{Prometheus: api}
}

func TestParamsValidation(t *testing.T) {
	for _, tt := range []struct{ params, wantErr string }{
		{"query: up", ""},
		{"query: 'rate(x{pod=\"{{ .Labels.pod }}\"}[5m])'\nrange: 1h\nstep: 1m\nmax_series: 5", ""},
		{"title: x", "query is required"},
		{"query: '{{ .Labels.pod'", "template query"},
		{"query: up\nrange: 30s", "range must be at least 1m"},
		{"query: up\nrange: 30d\nstep: 1s", "11,000 points"},
		{"query: up\nrange: 1d", ""},
		{"query: up\nmax_series: 0", "max_series must be between 1 and 100"},
		{"query: up\nrange: soon", "not a valid duration"},
		{"query: up\ngraphs: true", `unknown parameter "graphs" (did you mean "graph"?)`},
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tt.params), &doc); err != nil {
			t.Fatal(err)
		}
		_, err := registered.Build("prometheus_enricher", doc.Content[0])
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: unexpected error %v", tt.params, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q: error %v, want %q", tt.params, err, tt.wantErr)
		}
	}
}

const vectorAnswer = `{"status":"success","data":{"resultType":"vector","result":[
 {"metric":{"container":"app","namespace":"shop","pod":"cart-7d9f8-x2x4k"},"value":[1740830400,"0.4821"]},
 {"metric":{"container":"envoy","namespace":"shop","pod":"cart-7d9f8-x2x4k"},"value":[1740830400,"0.0153"]}]}}`

// An instant query: the template is rendered over the alert's labels, sent
// with the bearer token from its file, and the vector becomes a table.
func TestInstantQuery(t *testing.T) {
	prom, srv := startProm(t, func(path string, form map[string]string) (int, string) {
		if path != "/api/v1/query" {
			return 404, `{"status":"error","errorType":"not_found","error":"wrong path"}`
		}
		return 200, vectorAnswer
	})
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := run(t, apiFor(t, srv.URL, token), crashAlert(),
		`query: 'sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{namespace="{{ .Labels.namespace }}", pod="{{ .Labels.pod }}"}[5m]))'
title: CPU (cores)`)
	if len(prom.forms) != 1 {
		t.Fatalf("%d requests", len(prom.forms))
	}
	wantQuery := `sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{namespace="shop", pod="cart-7d9f8-x2x4k"}[5m]))`
	if prom.forms[0]["query"] != wantQuery {
		t.Errorf("query sent = %q, want %q", prom.forms[0]["query"], wantQuery)
	}
	if got := prom.requests[0].Header.Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization = %q", got)
	}
	if ts, _ := strconv.ParseFloat(prom.forms[0]["time"], 64); int64(ts) != fixedNow.Unix() {
		t.Errorf("evaluated at %s, want now", prom.forms[0]["time"])
	}
	var buf bytes.Buffer
	if err := stdout.Render(&buf, f, false); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "instant", buf.Bytes())
}

// A range query ends when a resolved alert ended, and returns a table of
// last/min/max and a PNG graph.
func TestRangeQueryGraph(t *testing.T) {
	prom, srv := startProm(t, func(path string, form map[string]string) (int, string) {
		if path != "/api/v1/query_range" {
			return 404, `{"status":"error","errorType":"not_found","error":"wrong path"}`
		}
		return 200, matrixAnswer(form)
	})
	ev := crashAlert()
	ev.Status = event.StatusResolved
	ev.EndsAt = fixedNow.Add(-10 * time.Minute)
	f := run(t, apiFor(t, srv.URL, ""), ev, `query: 'container_memory_working_set_bytes{namespace="{{ .Labels.namespace }}", pod="{{ .Labels.pod }}"}'
range: 1h
title: Memory`)
	form := prom.forms[0]
	start, _ := strconv.ParseFloat(form["start"], 64)
	end, _ := strconv.ParseFloat(form["end"], 64)
	if int64(end) != ev.EndsAt.Unix() || end-start != 3600 || form["step"] != "30" {
		t.Errorf("range sent: start %s end %s step %s; want the hour before the alert ended, step 30s", form["start"], form["end"], form["step"])
	}
	e := f.Enrichments[0]
	if e.Title != "Memory" || len(e.Blocks) != 2 || e.Blocks[0].Kind != event.BlockTable || e.Blocks[1].Kind != event.BlockImage {
		t.Fatalf("enrichment: %+v", e)
	}
	rows := e.Blocks[0].Table.Rows
	if len(rows) != 2 || rows[0][0] != `{container="app", namespace="shop", pod="cart-7d9f8-x2x4k"}` {
		t.Errorf("rows: %v", rows)
	}
	img, err := png.Decode(bytes.NewReader(e.Blocks[1].Image.PNG))
	if err != nil {
		t.Fatalf("graph is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 800 || b.Dy() != 320 {
		t.Errorf("graph is %v", b)
	}
	// Both series are drawn in their palette colors.
	for i := range 2 {
		found := false
		for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y && !found; y++ {
			for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				c := palette[i]
				if uint8(r>>8) == c.R && uint8(g>>8) == c.G && uint8(b>>8) == c.B {
					found = true
					break
				}
			}
		}
		if !found {
			t.Errorf("series %d is not drawn", i)
		}
	}
	if testkit.Updating() {
		// Not compared (PNG bytes may change with the Go version); kept
		// so that reviewers can look at the graph.
		if err := os.WriteFile(filepath.Join("testdata", "memory_graph.png"), e.Blocks[1].Image.PNG, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// matrixAnswer is two series over the asked range: a container leaking
// memory until it is OOM-killed and restarts, and a flat sidecar.
func matrixAnswer(form map[string]string) string {
	start, _ := strconv.ParseFloat(form["start"], 64)
	end, _ := strconv.ParseFloat(form["end"], 64)
	step, _ := strconv.ParseFloat(form["step"], 64)
	var app, envoy []string
	for ts := start; ts <= end; ts += step {
		i := (ts - start) / step
		leak := 40e6 + math.Mod(i, 40)*2.5e6 // restarts every 40 steps
		stamp := strconv.FormatFloat(ts, 'f', -1, 64)
		app = append(app, fmt.Sprintf(`[%s,"%v"]`, stamp, leak))
		if i < 100 || i > 105 { // a scrape gap
			envoy = append(envoy, fmt.Sprintf(`[%s,"%v"]`, stamp, 21e6))
		}
	}
	return `{"status":"success","data":{"resultType":"matrix","result":[
	{"metric":{"container":"envoy","namespace":"shop","pod":"cart-7d9f8-x2x4k"},"values":[` + strings.Join(envoy, ",") + `]},
	{"metric":{"container":"app","namespace":"shop","pod":"cart-7d9f8-x2x4k"},"values":[` + strings.Join(app, ",") + `]}]}}`
}

// Without a Prometheus, with a query Prometheus rejects, and with no
// data, the action adds a note; it never fails the playbook.
func TestNotes(t *testing.T) {
	f := run(t, &actions.Env{}, crashAlert(), "query: up")
	if got := f.Enrichments[0].Blocks[0].Markdown; got != "⚠ no Prometheus configured (prometheus.url in medic.yaml)" {
		t.Errorf("no Prometheus: %q", got)
	}
	_, srv := startProm(t, func(string, map[string]string) (int, string) {
		return 400, `{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:6: parse error: unexpected end of input"}`
	})
	f = run(t, apiFor(t, srv.URL, ""), crashAlert(), "query: 'rate('")
	if got := f.Enrichments[0].Blocks[0].Markdown; !strings.HasPrefix(got, "⚠ query rate( failed: bad_data: invalid parameter \"query\"") {
		t.Errorf("bad query: %q", got)
	}
	_, srv = startProm(t, func(string, map[string]string) (int, string) {
		return 200, `{"status":"success","data":{"resultType":"vector","result":[]}}`
	})
	f = run(t, apiFor(t, srv.URL, ""), crashAlert(), "query: up")
	if got := f.Enrichments[0].Blocks[0].Markdown; got != "The query returned no data." {
		t.Errorf("no data: %q", got)
	}
	if _, err := NewAPI(Config{URL: srv.URL, BearerTokenFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing token file is an error at start-up")
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 3: "3", 0.4821: "0.4821", 1234.5678: "1234.6", 2.25: "2.250", 1e-5: "1e-05", math.NaN(): "NaN", math.Inf(1): "+Inf",
		52428800: "52428800",
	} {
		if got := formatValue(v); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestNiceTicks(t *testing.T) {
	ticks, lo, hi := niceTicks(21e6, 137.5e6, 5)
	if lo > 21e6 || hi < 137.5e6 || len(ticks) < 3 || len(ticks) > 8 {
		t.Errorf("ticks %v over [%v, %v]", ticks, lo, hi)
	}
	b, _ := json.Marshal(ticks)
	for _, tk := range ticks {
		if tk != math.Round(tk) {
			t.Errorf("tick %v is not round: %s", tk, b)
		}
	}
	if ticks, lo, hi := niceTicks(5, 5, 5); lo >= 5 || hi <= 5 || len(ticks) == 0 {
		t.Errorf("flat series: %v [%v, %v]", ticks, lo, hi)
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testkit.Golden(t, filepath.Join("testdata", name+".golden"), got)
}

// TestBearerTokenStaysWithPrometheusURL: a redirect from prometheus.url to
// another host must not carry the token there.
func TestBearerTokenStaysWithPrometheusURL(t *testing.T) {
	var elsewhere []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere = append(elsewhere, r.Header.Get("Authorization"))
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	defer other.Close()
	var own string
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		own = r.Header.Get("Authorization")
		http.Redirect(w, r, other.URL+r.URL.Path+"?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
	}))
	defer prom.Close()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("prom-s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, apiFor(t, prom.URL, tok), crashAlert(), "query: up")
	if own != "Bearer prom-s3cr3t" {
		t.Errorf("prometheus.url got Authorization %q", own)
	}
	if len(elsewhere) == 0 {
		t.Fatal("the redirect was not followed; the test proves nothing")
	}
	for _, a := range elsewhere {
		if a != "" {
			t.Errorf("the redirect target got Authorization %q", a)
		}
	}
}
