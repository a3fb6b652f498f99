package teams

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/vendortest"
)

var t0 = vendortest.T0

func alertFinding(status event.Status) *event.Finding {
	ev := vendortest.AlertEvent(status)
	ev.Title = "Pod shop/cart-7d9 is crash looping"
	ev.Description = "Pod shop/cart-7d9 (app) is in waiting state.\nSee **the runbook** and [the dashboard](https://grafana.example/d/pods) or [this](javascript:alert(1))."
	ev.Labels["team"] = "payments"
	f := event.NewFinding(ev, t0)
	f.Playbooks = []string{"builtin-crashloop"}
	return f
}

func with(es ...event.Enrichment) *event.Finding {
	f := alertFinding(event.StatusFiring)
	f.Enrichments = append(f.Enrichments, es...)
	return f
}

func logLines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "2025-03-14T09:26:%02dZ line %d: connection to db-primary:5432 refused\n", i%60, i)
	}
	return b.String()
}

func cases() map[string]*event.Finding {
	huge := with(event.Enrichment{Title: "Logs", Blocks: []event.Block{event.LogTextBlock("shop/cart-7d9 app", logLines(28000), false)}})
	for i := range 60 {
		huge.Add(event.Enrichment{Title: fmt.Sprintf("Check %d", i), Blocks: []event.Block{
			event.MarkdownBlock(strings.Repeat("Evidence with **bold** and `code`. ", 20)),
			event.KeyValueBlock([][2]string{{"attempt", "1"}, {"result", "failed"}}),
		}})
	}
	huge.Add(event.Enrichment{Title: "Redacted", Source: event.RedactionSource, Blocks: []event.Block{
		event.MarkdownBlock("🔒 2 values redacted (1 bearer token, 1 env value) before this finding left medic."),
	}})
	return map[string]*event.Finding{
		"alert_firing":   alertFinding(event.StatusFiring),
		"alert_resolved": alertFinding(event.StatusResolved),
		"markdown":       with(event.Enrichment{Title: "Why", Blocks: []event.Block{event.MarkdownBlock("# Diagnosis\nExit **code 2**.\n- check `CART_DB_URL`")}}),
		"table_key_value": with(event.Enrichment{Title: "Pod", Blocks: []event.Block{
			event.KeyValueBlock([][2]string{{"phase", "Running"}, {"restarts", "5"}, {"last*termination", "Error [exit 2]"}}),
		}}),
		"table_headers": with(event.Enrichment{Title: "Containers", Blocks: []event.Block{{Kind: event.BlockTable, Table: &event.TableBlock{
			Headers: []string{"name", "image", "ready"},
			Rows:    [][]string{{"app", "registry.example/cart:1.42.0", "false"}, {"envoy", "envoyproxy/envoy:v1.31"}},
		}}}}),
		// The AI's transcript: the summary shown, the table behind a toggle.
		"collapsed": with(event.Enrichment{Title: "AI investigation steps", Source: "ai_explanation", Collapsed: true, Blocks: []event.Block{
			event.MarkdownBlock("3 tool calls: `pod_logs` ×2, `search_runbooks`"),
			{Kind: event.BlockTable, Table: &event.TableBlock{
				Headers: []string{"#", "tool", "arguments", "result"},
				Rows:    [][]string{{"1", "pod_logs", `{"previous":true}`, "40 lines; panic: missing configuration"}, {"1", "search_runbooks", `{"query":"crash loop"}`, "3 runbooks"}, {"2", "pod_logs", `{"grep":"CART_DB_URL"}`, "1 line"}},
			}},
		}}),
		"log":   with(event.Enrichment{Title: "Logs", Blocks: []event.Block{event.LogTextBlock("shop/cart-7d9 app (previous)", logLines(40), true)}}),
		"links": with(event.Enrichment{Title: "Links", Blocks: []event.Block{event.LinksBlock(event.Link{Label: "Grafana", URL: "https://grafana.example/d/pods"}, event.Link{Label: "Runbook again", URL: "https://runbooks.example/kubepodcrashlooping"})}}),
		"image": with(event.Enrichment{Title: "Memory", Blocks: []event.Block{{Kind: event.BlockImage, Image: &event.ImageBlock{Name: "memory.png", PNG: make([]byte, 4096)}}}}),
		"odd": with(event.Enrichment{Source: "untitled", Blocks: []event.Block{
			{Kind: event.BlockTable}, {Kind: event.BlockLinks}, {Kind: "video"}, event.LogTextBlock("", "", false),
			event.MarkdownBlock("\x1b[31mred\x1b[0m [x](data:text/html,boo)"),
		}}),
		"huge": huge,
	}
}

const page = vendortest.PageURL

func TestCardGolden(t *testing.T) {
	for name, f := range cases() {
		t.Run(name, func(t *testing.T) {
			card := Card(f, CardOptions{Cluster: "prod-eu", PageURL: page, MaxCardBytes: DefaultMaxCardBytes})
			validateCard(t, card, DefaultMaxCardBytes)
			got := testkit.JSON(t, card)
			path := filepath.Join("testdata", name+".golden.json")
			testkit.Golden(t, path, got)
		})
	}
}

func TestHugeFindingStaysUnderTheCardLimit(t *testing.T) {
	card := Card(cases()["huge"], CardOptions{PageURL: page})
	b, _ := json.Marshal(Message(card))
	if len(b) > DefaultMaxCardBytes+400 {
		t.Fatalf("card message of %d bytes", len(b))
	}
	if !strings.Contains(string(b), "…truncated: ") || !strings.Contains(string(b), "see them on the finding page") {
		t.Error("no visible truncation note pointing at the finding page")
	}
	if !strings.Contains(string(b), "2 values redacted") {
		t.Error("the cut dropped what was redacted")
	}
	small := Card(cases()["huge"], CardOptions{MaxCardBytes: 4000})
	if n := size(small); n > 4000 {
		t.Errorf("card of %d bytes with max_card_bytes 4000", n)
	}
	if b, _ := json.Marshal(small); !strings.Contains(string(b), "2 values redacted") {
		t.Error("the cut to 4000 bytes dropped what was redacted")
	}
}

// validateCard checks the card's shape the way Teams would refuse it.
func validateCard(t *testing.T, card Element, max int) {
	t.Helper()
	if card["type"] != "AdaptiveCard" || card["version"] != "1.5" || card["$schema"] == nil {
		t.Fatalf("not an Adaptive Card 1.5: %v", card["type"])
	}
	if n := size(card); n > max {
		t.Errorf("card of %d bytes (limit %d)", n, max)
	}
	ids := map[string]bool{}
	var targets []string
	var walk func(items []any, where string)
	walk = func(items []any, where string) {
		for i, it := range items {
			e, ok := it.(Element)
			if !ok {
				t.Errorf("%s[%d]: not an element", where, i)
				continue
			}
			switch e["type"] {
			case "TextBlock":
				if s, ok := e["text"].(string); !ok || s == "" {
					t.Errorf("%s[%d]: TextBlock without text", where, i)
				}
			case "Container":
				if id, ok := e["id"].(string); ok {
					ids[id] = true
				}
				walk(e["items"].([]any), fmt.Sprintf("%s[%d].items", where, i))
			case "ActionSet":
				for _, a := range e["actions"].([]any) {
					act := a.(Element)
					if act["type"] != "Action.ToggleVisibility" || act["title"] == "" {
						t.Errorf("%s[%d]: unexpected action %v", where, i, act)
					}
					for _, id := range act["targetElements"].([]any) {
						targets = append(targets, id.(string))
					}
				}
			case "FactSet":
				if len(e["facts"].([]any)) == 0 {
					t.Errorf("%s[%d]: empty FactSet", where, i)
				}
			case "Table":
				for _, r := range e["rows"].([]any) {
					for _, c := range r.(Element)["cells"].([]any) {
						walk(c.(Element)["items"].([]any), where+".cell")
					}
				}
			default:
				t.Errorf("%s[%d]: unexpected element %v", where, i, e["type"])
			}
		}
	}
	walk(card["body"].([]any), "body")
	for _, id := range targets {
		if !ids[id] {
			t.Errorf("a toggle targets %q, which no element has", id)
		}
	}
	for _, a := range card["actions"].([]any) {
		e := a.(Element)
		u, _ := e["url"].(string)
		if e["type"] != "Action.OpenUrl" || !(strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) {
			t.Errorf("bad action %v", e)
		}
	}
}

// receiver is a local Teams webhook that checks what it gets.
type receiver struct {
	mu       sync.Mutex
	bodies   [][]byte
	failures []int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failures) > 0 {
		st := r.failures[0]
		r.failures = r.failures[1:]
		if st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "3")
		}
		w.WriteHeader(st)
		return
	}
	if req.Header.Get("Content-Type") != "application/json" || req.URL.Query().Get("sig") != "s3cret" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.bodies = append(r.bodies, b)
	w.WriteHeader(http.StatusAccepted) // what Workflows answers
}

func newSink(t *testing.T, url string) (*Sink, *[]time.Duration) {
	t.Helper()
	p := *Defaults()
	p.WebhookURL = url
	s, err := New(t.Context(), "teams", p, sinks.Deps{
		Log: slog.New(slog.DiscardHandler), HTTP: &http.Client{Timeout: 5 * time.Second},
		Cluster: "prod-eu", PageURL: func(id string) string { return "https://medic.example/findings/" + id + "?exp=1&sig=x" },
	})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	s.poster.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	return s, &waits
}

func TestReceiverGetsTheCard(t *testing.T) {
	rec := &receiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s, _ := newSink(t, srv.URL+"/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=s3cret")
	f := with(event.Enrichment{Title: "Logs", Blocks: []event.Block{event.LogTextBlock("src", logLines(30), false)}})
	if err := s.Send(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), f); err != nil { // a redelivery
		t.Fatal(err)
	}
	if len(rec.bodies) != 1 {
		t.Fatalf("receiver got %d cards, want 1", len(rec.bodies))
	}
	var msg struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string  `json:"contentType"`
			Content     Element `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(rec.bodies[0], &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Type != "message" || len(msg.Attachments) != 1 || msg.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" {
		t.Fatalf("not a Teams card message: %s", rec.bodies[0])
	}
	card := msg.Attachments[0].Content
	if card["version"] != "1.5" {
		t.Errorf("version %v", card["version"])
	}
	acts, _ := json.Marshal(card["actions"])
	if !strings.Contains(string(acts), `"🤖 Ask AI"`) || !strings.Contains(string(acts), "https://medic.example/findings/"+f.ID) {
		t.Errorf("no Ask AI button opening the finding page: %s", acts)
	}
	if !strings.Contains(string(rec.bodies[0]), "line 30: connection") {
		t.Error("the log's last lines are not in the card")
	}
}

func TestRateLimitAndErrorsNeverShowTheURL(t *testing.T) {
	rec := &receiver{failures: []int{http.StatusTooManyRequests, http.StatusInternalServerError}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	url := srv.URL + "/hook?sig=s3cret"
	s, waits := newSink(t, url)
	err := s.Send(context.Background(), alertFinding(event.StatusFiring))
	if err == nil || !strings.Contains(err.Error(), "answered 500") {
		t.Fatalf("error %v, want the 500 for the consumer to retry", err)
	}
	if len(*waits) != 1 || (*waits)[0] != 3*time.Second {
		t.Errorf("waits %v, want the 3s Retry-After", *waits)
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), srv.URL) {
		t.Errorf("the error shows the webhook URL: %v", err)
	}
	if err := s.Send(context.Background(), alertFinding(event.StatusFiring)); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	err = s.Send(context.Background(), alertFinding(event.StatusResolved))
	if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "/hook") {
		t.Errorf("connection error %v shows the URL (or no error)", err)
	}
}

func TestParams(t *testing.T) {
	p := *Defaults()
	if err := p.Validate(); err == nil {
		t.Error("no webhook URL accepted")
	}
	p.WebhookURL = "ftp://x?sig=s3cret"
	if err := p.Validate(); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad URL: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "url")
	_ = os.WriteFile(file, []byte("https://prod.westeurope.logic.azure.com/workflows/x?sig=s3cret\n"), 0o600)
	p = *Defaults()
	p.WebhookURLFile = file
	s, err := New(t.Context(), "t", p, sinks.Deps{})
	if err != nil || s.url != "https://prod.westeurope.logic.azure.com/workflows/x?sig=s3cret" {
		t.Fatalf("from file: %v", err)
	}
	t.Setenv("TEAMS_URL", "https://example.webhook.office.com/webhookb2/x")
	p = *Defaults()
	p.WebhookURLEnv = "TEAMS_URL"
	if _, err := New(t.Context(), "t", p, sinks.Deps{}); err != nil {
		t.Fatal(err)
	}
}
