package slack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
)

// goldenRendered is Rendered with the uploads' sizes instead of contents.
type goldenRendered struct {
	Main    Message        `json:"main"`
	Thread  []Message      `json:"thread,omitempty"`
	Uploads []goldenUpload `json:"uploads,omitempty"`
}

type goldenUpload struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	Bytes int    `json:"bytes"`
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testkit.Golden(t, filepath.Join("testdata", name), got)
}

func renderGolden(t *testing.T, r Rendered) []byte {
	t.Helper()
	g := goldenRendered{Main: r.Main, Thread: r.Thread}
	for _, u := range r.Uploads {
		g.Uploads = append(g.Uploads, goldenUpload{u.Name, u.Title, len(u.Content)})
	}
	return testkit.JSON(t, g)
}

// assertWithinLimits checks every message against Slack's limits.
func assertWithinLimits(t *testing.T, r Rendered) {
	t.Helper()
	for i, m := range append([]Message{r.Main}, r.Thread...) {
		if err := CheckLimits(m); err != nil {
			t.Errorf("message %d breaks a Slack limit: %v", i, err)
		}
		if c := blocksChars(m.Blocks); c > MaxMessageChars {
			t.Errorf("message %d has %d characters of text (budget %d)", i, c, MaxMessageChars)
		}
	}
}

func renderCases() map[string]*event.Finding {
	png := bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 512)
	huge := withEnrichments(event.Enrichment{Title: "Logs", Source: "logs_enricher", Blocks: []event.Block{
		event.LogTextBlock("shop/cart-7d9 container app", strings.Repeat(logLines(1, "x"), 1)+logLines(27000, "app"), false),
	}})
	for huge.Enrichments[len(huge.Enrichments)-1].Title != "" && len(huge.Enrichments) < 62 {
		n := len(huge.Enrichments)
		huge.Add(event.Enrichment{Title: "Check " + strings.Repeat("x", n%7), Source: "template_enricher", Blocks: []event.Block{
			event.MarkdownBlock(strings.Repeat("Evidence line with *emphasis* and `code` & <angle brackets>. ", 10+n)),
			event.KeyValueBlock([][2]string{{"attempt", "1"}, {"result", "failed"}}),
		}})
	}
	huge.Add(event.Enrichment{Title: "Redacted", Source: event.RedactionSource, Blocks: []event.Block{
		event.MarkdownBlock("🔒 2 values redacted (1 bearer token, 1 env value) before this finding left medic."),
	}})
	odd := withEnrichments(event.Enrichment{Source: "untitled_action", Blocks: []event.Block{
		event.LogTextBlock("", "\x1b[31mred\x1b[0m text\ttab\n", false),
		event.LogTextBlock("empty log", "", false),
		{Kind: event.BlockTable},
		{Kind: event.BlockTable, Table: &event.TableBlock{Headers: []string{"only", "headers"}}},
		{Kind: event.BlockTable, Table: &event.TableBlock{Rows: [][]string{{"multi\nline", "cell"}, {"ключ", "значение"}}}},
		{Kind: event.BlockLinks},
		event.LinksBlock(event.Link{URL: "https://example.com/no-label"}, event.Link{Label: "not a web link", URL: "javascript:alert(1)"}),
		{Kind: "video"},
		{Kind: event.BlockImage},
	}})
	odd.Title = "Title with \x1b]0;pwned\x07 escape <!channel> & more " + strings.Repeat("long ", 40)

	manyRows := make([][2]string, 37)
	for i := range manyRows {
		manyRows[i] = [2]string{"key-" + strings.Repeat("k", i%5), strings.Repeat("v", i)}
	}
	return map[string]*event.Finding{
		"alert_firing":   alertFinding(event.StatusFiring),
		"alert_resolved": alertFinding(event.StatusResolved),
		"markdown": withEnrichments(event.Enrichment{Title: "Why it restarts", Source: "pod_issue_investigator", Blocks: []event.Block{
			event.MarkdownBlock("# Diagnosis\nThe container exits with **code 2** right after start.\n\n- check `CART_DB_URL`\n- see [the docs](https://docs.example/cart?x=1&y=2) and [a bad link](javascript:alert(1))\n\n```yaml\nenv:\n  - name: CART_DB_URL   # <unset> & empty\n```\n<!channel> ~~old~~ text"),
		}}),
		// The AI's transcript: Slack shows the summary and links the page.
		"collapsed": withEnrichments(event.Enrichment{Title: "AI investigation steps", Source: "ai_explanation", Collapsed: true, Blocks: []event.Block{
			event.MarkdownBlock("3 tool calls: `pod_logs` ×2, `search_runbooks`"),
			{Kind: event.BlockTable, Table: &event.TableBlock{
				Headers: []string{"#", "tool", "arguments", "result"},
				Rows:    [][]string{{"1", "pod_logs", `{"previous":true}`, "40 lines; panic: missing configuration"}, {"1", "search_runbooks", `{"query":"crash loop"}`, "3 runbooks"}},
			}},
		}}),
		"table_key_value": withEnrichments(event.Enrichment{Title: "Pod", Source: "pod_status_enricher", Blocks: []event.Block{
			event.KeyValueBlock([][2]string{{"phase", "Running"}, {"restarts", "5"}, {"last termination", "Error (exit code 2)"}}),
			event.KeyValueBlock(manyRows),
		}}),
		"table_headers": withEnrichments(event.Enrichment{Title: "Containers", Source: "pod_status_enricher", Blocks: []event.Block{
			{Kind: event.BlockTable, Table: &event.TableBlock{
				Headers: []string{"name", "image", "ready", "restarts"},
				Rows: [][]string{
					{"app", "registry.example/cart:1.42.0", "false", "5"},
					{"envoy-sidecar", "envoyproxy/envoy:v1.31", "true", "0"},
					{"log-shipper", "fluent-bit:3", "true"},
				},
			}},
		}}),
		"log_short": withEnrichments(event.Enrichment{Title: "Logs", Source: "logs_enricher", Blocks: []event.Block{
			event.LogTextBlock("shop/cart-7d9 container app (previous)", "starting cart service\nconfig: CART_DB_URL is not set\npanic: missing configuration\n", false),
		}}),
		"log_long": withEnrichments(event.Enrichment{Title: "Logs", Source: "logs_enricher", Blocks: []event.Block{
			event.LogTextBlock("shop/cart-7d9 container app (previous)", logLines(500, "app"), true),
		}}),
		"links": withEnrichments(event.Enrichment{Title: "Dashboards", Source: "template_enricher", Blocks: []event.Block{
			event.LinksBlock(
				event.Link{Label: "Grafana | pods", URL: "https://grafana.example/d/pods?var-pod=cart-7d9"},
				event.Link{Label: "Runbook (already shown)", URL: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping"},
			),
		}}),
		"image": withEnrichments(event.Enrichment{Title: "Memory", Source: "prometheus_enricher", Blocks: []event.Block{
			{Kind: event.BlockImage, Image: &event.ImageBlock{Name: "memory.png", PNG: png}},
		}}),
		"odd":     odd,
		"minimal": {ID: "m1", Title: "Watchdog", Severity: event.SeverityNone, Event: event.Event{Status: event.StatusFiring}},
		"huge":    huge,
	}
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	for name, f := range renderCases() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := DefaultRenderOptions()
			o.Cluster = "default"
			o.PageURL = "https://medic.example/findings/" + f.ID + "?exp=1741944413&sig=c2lnbmF0dXJl"
			r := Render(f, o)
			assertWithinLimits(t, r)
			checkGolden(t, name+".golden.json", renderGolden(t, r))
		})
	}
}

func TestRenderHugeFindingSplitsAndAttaches(t *testing.T) {
	t.Parallel()
	f := renderCases()["huge"]
	r := Render(f, DefaultRenderOptions())
	assertWithinLimits(t, r)
	if len(r.Thread) == 0 {
		t.Fatal("60 enrichments fit in one message?")
	}
	if len(r.Uploads) != 1 || len(r.Uploads[0].Content) < 2_000_000 {
		t.Fatalf("the 2 MB log is not attached whole: %d uploads", len(r.Uploads))
	}
	all := string(mustJSON(r.Main)) + string(mustJSON(r.Thread))
	if !strings.Contains(all, "…truncated") {
		t.Error("no visible truncation note")
	}
	if !strings.Contains(string(mustJSON(r.Main)), "app line 27000: connection") {
		t.Error("the log's last line is not shown inline")
	}
	// What was redacted is said in the channel, not only at the thread's end.
	if !strings.Contains(string(mustJSON(r.Main)), "2 values redacted") || strings.Contains(string(mustJSON(r.Thread)), "values redacted") {
		t.Error("the redaction note is not in the main message, once")
	}
}

func TestButtonsCarryOnlyTheFindingID(t *testing.T) {
	t.Parallel()
	r := Render(alertFinding(event.StatusFiring), DefaultRenderOptions())
	var actions map[string]any
	for _, b := range r.Main.Blocks {
		raw := mustJSON(b)
		if strings.Contains(string(raw), `"type":"actions"`) {
			_ = json.Unmarshal(raw, &actions)
		}
	}
	if actions == nil {
		t.Fatal("no buttons")
	}
	els := actions["elements"].([]any)
	var ids []string
	for _, e := range els {
		m := e.(map[string]any)
		ids = append(ids, m["action_id"].(string))
		if m["value"] != "4f1c2a9e0b7d3c5a8e6f1d2c3b4a5968" {
			t.Errorf("button %s carries %q, want the finding ID only", m["action_id"], m["value"])
		}
	}
	if strings.Join(ids, ",") != "medic_ask_ai,medic_silence_1h,medic_silence_4h" {
		t.Errorf("buttons %v", ids)
	}
	resolved := Render(alertFinding(event.StatusResolved), DefaultRenderOptions())
	if strings.Contains(string(mustJSON(resolved.Main)), ActionSilence1h) {
		t.Error("a resolved alert offers a silence")
	}
}

func TestSplitTextKeepsFencesAndLimits(t *testing.T) {
	t.Parallel()
	text := "```\n" + strings.Repeat("0123456789 abcdefghij\n", 600) + "```\nafter"
	parts := splitText(text, MaxSectionText, 3)
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	for i, p := range parts {
		if textLen(p) > MaxSectionText {
			t.Errorf("part %d: %d characters", i, textLen(p))
		}
		if strings.Count(p, "```")%2 != 0 {
			t.Errorf("part %d has an unbalanced fence:\n%s", i, p[max(0, len(p)-100):])
		}
	}
	if !strings.Contains(parts[2], "…truncated (") {
		t.Error("no truncation note on the last part")
	}
}

func TestMrkdwnEscapes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"<!channel> & <@U123>":              "&lt;!channel&gt; &amp; &lt;@U123&gt;",
		"**bold** and `<code>`":             "*bold* and `&lt;code&gt;`",
		"[x](https://a.example/?q=<1>&b=2)": "<https://a.example/?q=&lt;1&gt;&amp;b=2|x>",
		"[x](ftp://a.example)":              "[x](ftp://a.example)",
		"## Heading **b**":                  "*Heading b*",
		"- item":                            "• item",
	} {
		if got := mrkdwn(in); got != want {
			t.Errorf("mrkdwn(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRenderWithinLimits: whatever the finding holds, every message Render
// produces is within Slack's limits (go test -fuzz=FuzzRenderWithinLimits).
func FuzzRenderWithinLimits(f *testing.F) {
	f.Add("title", "desc **b** [x](https://a)", "```\ncode", "k", "v", 3, 40, uint8(2))
	f.Add(strings.Repeat("🔥", 200), strings.Repeat("<&>", 3000), strings.Repeat("x\n", 9000), strings.Repeat("k", 3000), strings.Repeat("é", 5000), 70, 1, uint8(5))
	f.Add("", "", "", "", "", 0, 0, uint8(0))
	f.Fuzz(func(t *testing.T, title, desc, md, key, val string, enrichments, rows int, labels uint8) {
		fd := alertFinding(event.StatusFiring)
		fd.Title, fd.Description = title, desc
		for i := range int(labels) {
			fd.Event.Labels[fmt.Sprintf("%s%d", key, i)] = val
		}
		kv := make([][2]string, max(0, rows%80))
		for i := range kv {
			kv[i] = [2]string{key, val}
		}
		for i := range max(0, enrichments%90) {
			fd.Add(event.Enrichment{Title: title, Blocks: []event.Block{
				event.MarkdownBlock(md),
				event.KeyValueBlock(kv),
				event.LogTextBlock(key, md+val, i%2 == 0),
				{Kind: event.BlockTable, Table: &event.TableBlock{Headers: []string{key, val}, Rows: [][]string{{val, key, md}}}},
				event.LinksBlock(event.Link{Label: val, URL: "https://x.example/" + key}),
			}})
		}
		r := Render(fd, DefaultRenderOptions())
		for i, m := range append([]Message{r.Main}, r.Thread...) {
			if err := CheckLimits(m); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
	})
}
