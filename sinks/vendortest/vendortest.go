// Package vendortest holds what the tests of the sinks that speak to a
// vendor (mattermost, discord, telegram, google_chat, webex) share: a set
// of findings that exercise every block kind and the size limits, and the
// vendors' endpoints as test doubles built on Fake, an httptest receiver
// with failures on demand (5xx, 429 with Retry-After) that counts
// deliveries by finding so a test can assert lost 0 and duplicates 0. The
// end-to-end tests in test/e2e use the same doubles.
package vendortest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medichq/medic/event"
)

// T0 is when the fixtures' alert started.
var T0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// PageURL is the finding page link tests pass to the renderers.
const PageURL = "https://medic.example/findings/4f1c2a9e0b7d3c5a8e6f1d2c3b4a5968?exp=1741944413&sig=c2ln"

// Alert is a crash-looping pod alert from Alertmanager, firing or resolved.
func Alert(status event.Status) *event.Finding {
	f := event.NewFinding(AlertEvent(status), T0)
	f.Playbooks = []string{"builtin-crashloop"}
	return f
}

// AlertEvent is Alert's event, for the sinks' tests that render the same
// alert with other text: a firing and a resolved one share the fingerprint
// and start, as Alertmanager sends them.
func AlertEvent(status event.Status) event.Event {
	ev := event.Event{
		ID: "4f1c2a9e0b7d3c5a8e6f1d2c3b4a5968", Kind: event.KindPrometheusAlert, Source: "alertmanager",
		Status: status, Severity: event.SeverityCritical, Title: "Pod shop/cart-7d9 is crash looping <b>&</b>",
		Description: "Pod shop/cart-7d9 (app) is waiting.\nSee **the runbook**, `kubectl logs` and [the dashboard](https://grafana.example/d/pods?a=1&b=2) or [this](javascript:alert(1)). @everyone",
		Labels: map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9",
			"container": "app", "severity": "critical", "team": "pay_ments*", "job": "kube-state-metrics"},
		Annotations:  map[string]string{"runbook_url": "https://runbooks.example/kubepodcrashlooping"},
		Subject:      event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9", Container: "app", Node: "node-a1"},
		StartsAt:     T0,
		Fingerprint:  "5ef77f1f8e5dc3a8",
		GeneratorURL: "http://prometheus.example/graph?g0.expr=up",
		ExternalURL:  "http://alertmanager.example",
	}
	if status == event.StatusResolved {
		ev.ID = "9a8b7c6d5e4f30211203f4e5d6c7b8a9"
		ev.EndsAt = T0.Add(14 * time.Minute)
	}
	return ev
}

// Logs returns n log lines.
func Logs(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "2025-03-14T09:26:%02dZ line %d: <conn> to db:5432 refused & ``` retried\n", i%60, i)
	}
	return b.String()
}

// LastCrashLine ends CrashLog: a receiver's copy of a trimmed finding must
// still hold it, since a log's last lines are where a crash is.
const LastCrashLine = "panic: runtime error: invalid memory address or nil pointer dereference"

// WithCrashLog adds to f a log of n long lines ending with LastCrashLine:
// with 5,000 of them the finding encodes in about 2.5 MB, more than a Kafka
// record, a proxied webhook or a mail server takes.
func WithCrashLog(f *event.Finding, n int) *event.Finding {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "2026-11-22T10:00:%02dZ request %d failed: %s\n", i%60, i, strings.Repeat("upstream connect error ", 20))
	}
	b.WriteString(LastCrashLine + "\n")
	f.Add(event.Enrichment{Title: "Logs", Source: "logs_enricher", Blocks: []event.Block{event.LogTextBlock("shop/cart-7d9 app", b.String(), false)}})
	return f
}

// Findings are the golden cases: a firing and a resolved alert, each block
// kind, text a chat would misread (<, &, *, ```), and one too big for any
// chat, which must come out within the limit with a truncation note.
func Findings() map[string]*event.Finding {
	with := func(es ...event.Enrichment) *event.Finding {
		f := Alert(event.StatusFiring)
		f.Enrichments = append(f.Enrichments, es...)
		return f
	}
	huge := with(event.Enrichment{Title: "Logs", Blocks: []event.Block{event.LogTextBlock("shop/cart-7d9 app", Logs(5000), false)}})
	for i := range 40 {
		huge.Add(event.Enrichment{Title: fmt.Sprintf("Check %d", i), Blocks: []event.Block{
			event.MarkdownBlock(strings.Repeat("Evidence with **bold** and `code`. ", 20)),
			event.KeyValueBlock([][2]string{{"attempt", "1"}, {"result", "failed"}}),
		}})
	}
	// Said last, as the pipeline does: a sink that cuts the rest keeps it.
	huge.Add(event.Enrichment{Title: "Redacted", Source: event.RedactionSource, Blocks: []event.Block{
		event.MarkdownBlock("🔒 2 values redacted (1 bearer token, 1 env value) before this finding left medic."),
	}})
	out := map[string]*event.Finding{
		"alert_firing":   Alert(event.StatusFiring),
		"alert_resolved": Alert(event.StatusResolved),
		"evidence":       with(evidence()...),
		"huge":           huge,
	}
	out["crowded"] = Crowded()
	// Each case is its own finding, as a receiver that deduplicates by
	// finding (Google Chat's messageId, Kafka's key) must see it.
	for name, f := range out {
		if !strings.HasPrefix(name, "alert_") && name != "crowded" {
			sum := sha256.Sum256([]byte(name))
			f.ID = hex.EncodeToString(sum[:16])
			f.Event.ID = f.ID
		}
	}
	return out
}

// evidence is one enrichment of each block kind, with text a chat would
// misread.
func evidence() []event.Enrichment {
	return []event.Enrichment{
		{Title: "Why", Blocks: []event.Block{event.MarkdownBlock("# Diagnosis\nExit **code 2** <oops>.\n- check `CART_DB_URL`\n```\nraw <block>\n```")}},
		{Title: "Pod", Blocks: []event.Block{event.KeyValueBlock([][2]string{{"phase", "Running"}, {"restarts", "5"}, {"last*termination", "Error [exit 2]"}})}},
		{Title: "Containers", Blocks: []event.Block{{Kind: event.BlockTable, Table: &event.TableBlock{
			Headers: []string{"name", "image", "ready"},
			Rows:    [][]string{{"app", "registry.example/cart:1.42.0", "false"}, {"envoy", "envoyproxy/envoy:v1.31"}},
		}}}},
		{Title: "AI investigation steps", Collapsed: true, Blocks: []event.Block{
			event.MarkdownBlock("3 tool calls: `pod_logs` ×2"), event.KeyValueBlock([][2]string{{"1", "pod_logs"}}),
		}},
		{Title: "Logs", Blocks: []event.Block{event.LogTextBlock("shop/cart-7d9 app (previous)", Logs(40), true)}},
		{Title: "Links", Blocks: []event.Block{event.LinksBlock(event.Link{Label: "Grafana", URL: "https://grafana.example/d/pods"}, event.Link{Label: "bad", URL: "javascript:alert(1)"})}},
		{Title: "Memory", Blocks: []event.Block{{Kind: event.BlockImage, Image: &event.ImageBlock{Name: "memory.png", PNG: make([]byte, 4096)}}}},
	}
}

// Request is one request a Fake accepted.
type Request struct {
	Method, Path string
	Query        map[string][]string
	Header       http.Header
	Body         []byte
}

// Check validates a request the way the vendor would; it returns 0 to
// accept it, or the status and body the vendor answers a bad one with.
type Check func(r *http.Request, body []byte) (status int, answer string)

// Fake is a vendor's HTTP endpoint for tests.
type Fake struct {
	*httptest.Server
	check Check
	// answer writes the vendor's success answer.
	answer func(w http.ResponseWriter, r *http.Request)

	mu       sync.Mutex
	accepted []Request
	failures []Failure
	failed   int
	refused  []string
}

// Failure is one answer the Fake gives instead of accepting a request.
type Failure struct {
	Status     int
	RetryAfter string // the Retry-After header, for a 429
	Body       string
}

// NewFake starts a fake whose requests must pass check; answer writes the
// success answer (nil: 200 with "{}").
func NewFake(t testing.TB, check Check, answer func(w http.ResponseWriter, r *http.Request)) *Fake {
	f := &Fake{check: check, answer: answer}
	f.Server = httptest.NewServer(f)
	t.Cleanup(f.Close)
	return f
}

// FailNext makes the next requests fail, in order.
func (f *Fake) FailNext(fs ...Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fs...)
}

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.failures) > 0 {
		fl := f.failures[0]
		f.failures = f.failures[1:]
		f.failed++
		if fl.RetryAfter != "" {
			w.Header().Set("Retry-After", fl.RetryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(fl.Status)
		_, _ = io.WriteString(w, fl.Body)
		return
	}
	if status, answer := f.check(r, body); status != 0 {
		f.refused = append(f.refused, fmt.Sprintf("%d %s", status, answer))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
		return
	}
	f.accepted = append(f.accepted, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
	if f.answer != nil {
		f.answer(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}")
}

// Accepted returns the requests accepted so far.
func (f *Fake) Accepted() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.accepted...)
}

// Failed is how many requests were answered with a failure from FailNext.
func (f *Fake) Failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// Refused returns the requests the check refused ("status answer").
func (f *Fake) Refused() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.refused...)
}

var findingIDRE = regexp.MustCompile(`finding ([0-9a-f]{32})`)

// ByFinding counts the accepted requests by the finding ID each message
// shows in its footer ("finding <id>"), for lost/duplicate counts.
func (f *Fake) ByFinding() map[string]int {
	out := map[string]int{}
	for _, r := range f.Accepted() {
		if m := findingIDRE.FindSubmatch(r.Body); m != nil {
			out[string(m[1])]++
		} else {
			out[""]++
		}
	}
	return out
}

// SendEach sends every one of Findings through send and fails t unless the
// fake accepted each exactly once, counted by the finding each message
// names (lost 0, duplicates 0). It returns the accepted requests.
func (f *Fake) SendEach(t testing.TB, send func(context.Context, *event.Finding) error) []Request {
	t.Helper()
	fs := Findings()
	for name, fd := range fs {
		if err := send(context.Background(), fd); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	got := f.ByFinding()
	for name, fd := range fs {
		if n := got[fd.ID]; n != 1 {
			t.Errorf("%s: accepted %d times, want once (refused %v)", name, n, f.Refused())
		}
	}
	if acc := f.Accepted(); len(acc) != len(fs) {
		t.Fatalf("accepted %d messages, want %d; refused %v", len(acc), len(fs), f.Refused())
	}
	return f.Accepted()
}

// JSONBody decodes a request body into a generic map, or says why not.
func JSONBody(body []byte) (map[string]any, string) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err.Error()
	}
	return m, ""
}

// Crowded is a finding whose head alone is too big for a chat message: 40
// long labels with markup (which also make the silence link long) and a
// long description with markup.
func Crowded() *event.Finding {
	f := Alert(event.StatusFiring)
	f.ID = "c0ffee00c0ffee00c0ffee00c0ffee00"
	f.Event.ID = f.ID
	for i := range 40 {
		f.Event.Labels[fmt.Sprintf("label_%02d", i)] = strings.Repeat("<&> **x** @here ", 20)
	}
	f.Description = strings.Repeat("**Bold** `code` <tag> & [link](https://e.example/?a=1&b=2) ", 100)
	f.Enrichments = append(f.Enrichments, evidence()...)
	return f
}
