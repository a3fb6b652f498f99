package interact

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/browsertest"
)

func get(t *testing.T, u string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func pageFinding(id string) *event.Finding {
	f := alertFinding(id)
	f.Add(event.Enrichment{Title: "Owner <img src=x onerror=alert(1)>", Blocks: []event.Block{
		event.MarkdownBlock("Team **payments** <script>alert('md')</script>"),
		event.KeyValueBlock([][2]string{{"team", "<b>payments</b>"}}),
		event.LinksBlock(event.Link{Label: "Grafana", URL: "https://grafana.example/d/x"}, event.Link{Label: "evil", URL: "javascript:alert(1)"}),
		{Kind: event.BlockImage, Image: &event.ImageBlock{Name: "g.png", PNG: []byte("\x89PNG\r\n\x1a\nrest")}},
		{Kind: event.BlockImage, Image: &event.ImageBlock{Name: "fake.png", PNG: []byte("<svg onload=alert(1)>")}},
	}})
	return f
}

func TestFindingPageIsSignedAndEscaped(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := pageFinding("p1")
	if err := h.findings.Put(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	link := h.links.URL(f.ID)
	st, hdr, body := get(t, link)
	if st != http.StatusOK {
		t.Fatalf("page answered %d: %s", st, body)
	}
	for _, bad := range []string{"<script>alert(1)</script>", "<img src=x", "<b>", `href="javascript:`, "<script>alert('md')", "<svg"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page shows %q unescaped", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;payments&lt;/b&gt;", `href="https://grafana.example/d/x"`, "data:image/png;base64,", "line 150: dial tcp"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'nonce-") {
		t.Errorf("CSP %q", csp)
	}
	if hdr.Get("Referrer-Policy") != "no-referrer" {
		t.Error("the signed URL could leak as a referrer")
	}

	u, _ := url.Parse(link)
	q := u.Query()
	tampered := func(mut func(url.Values, *url.URL)) string {
		uu := *u
		qq := url.Values{}
		for k, v := range q {
			qq[k] = append([]string(nil), v...)
		}
		mut(qq, &uu)
		uu.RawQuery = qq.Encode()
		return uu.String()
	}
	other := pageFinding("p2")
	_ = h.findings.Put(context.Background(), other)
	for name, target := range map[string]string{
		"bad signature":      tampered(func(v url.Values, _ *url.URL) { v.Set("sig", "AAAA"+v.Get("sig")[4:]) }),
		"longer validity":    tampered(func(v url.Values, _ *url.URL) { v.Set("exp", "99999999999") }),
		"another finding":    tampered(func(_ url.Values, u *url.URL) { u.Path = "/findings/p2" }),
		"no signature":       tampered(func(v url.Values, _ *url.URL) { v.Del("sig") }),
		"ask, bad signature": strings.Replace(tampered(func(v url.Values, _ *url.URL) { v.Set("sig", "x") }), "/findings/p1?", "/findings/p1/answer?", 1),
	} {
		if st, _, _ := get(t, target); st != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, st)
		}
	}
	expired := NewLinksWithKey(h.links.key, h.links.base, time.Hour)
	expired.now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	if st, _, body := get(t, expired.URL(f.ID)); st != http.StatusForbidden || !strings.Contains(body, "expired") {
		t.Errorf("expired link: %d %s", st, body)
	}
	if st, _, _ := get(t, h.links.URL("gone")); st != http.StatusNotFound {
		t.Errorf("unknown finding: %d", st)
	}
}

func TestFindingPageAskShowsTheAnswer(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := pageFinding("p3")
	_ = h.findings.Put(context.Background(), f)
	q := h.links.Query(f.ID)
	resp, err := http.Post(h.srv.URL+"/findings/"+f.ID+"/ask?"+q, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var asked struct{ Status, Request string }
	_ = json.NewDecoder(resp.Body).Decode(&asked)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || asked.Request == "" {
		t.Fatalf("ask answered %d %+v", resp.StatusCode, asked)
	}
	h.waitAsk(f.ID)
	_, _, body := get(t, h.srv.URL+"/findings/"+f.ID+"/answer?"+q)
	var ans pageAnswerBody
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Status != AskDone || ans.Request != asked.Request || !strings.Contains(strings.Join(ans.Texts, " "), "cannot reach its database") || len(ans.Links) != 1 {
		t.Fatalf("answer %+v", ans)
	}
	// Asking again returns the answer there is instead of asking the AI again.
	resp, _ = http.Post(h.srv.URL+"/findings/"+f.ID+"/ask?"+q, "", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(h.ai.calls()) != 1 {
		t.Errorf("second ask: %d, AI asked %d times", resp.StatusCode, len(h.ai.calls()))
	}
}

// TestFindingPageInChromium opens the page in a real headless Chromium,
// clicks Ask AI and sees the answer appear on the page.
func TestFindingPageInChromium(t *testing.T) {
	bin := browsertest.Require(t)
	h := newHarness(t, harnessOpts{})
	f := pageFinding("p4")
	if err := h.findings.Put(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	b := browsertest.Start(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Navigate(ctx, h.links.URL(f.ID)); err != nil {
		t.Fatalf("%v\nchromium:\n%s", err, b.Stderr())
	}
	var title string
	if err := b.Eval(`document.getElementById("title").textContent`, &title); err != nil {
		t.Fatal(err)
	}
	if title != f.Title {
		t.Errorf("title %q, want the finding's title as text", title)
	}
	var injected bool
	if err := b.Eval(`document.querySelectorAll("script").length !== 1 || document.querySelectorAll("img[onerror], svg").length > 0`, &injected); err != nil {
		t.Fatal(err)
	}
	if injected {
		t.Error("markup from the finding became elements on the page")
	}
	if err := b.Eval(`document.getElementById("ask").click()`, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx, `document.getElementById("answer").getAttribute("data-status") === "done"`); err != nil {
		var out string
		_ = b.Eval(`document.getElementById("answer").textContent`, &out)
		t.Fatalf("no answer on the page: %v (answer area: %q)\nchromium:\n%s", err, out, b.Stderr())
	}
	var answer string
	_ = b.Eval(`document.getElementById("answer").textContent`, &answer)
	if !strings.Contains(answer, "cannot reach its database <db-primary>") || !strings.Contains(answer, "[1] KubePodCrashLooping") {
		t.Errorf("answer on the page: %q", answer)
	}
	var href string
	_ = b.Eval(`document.querySelector("#answer a").href`, &href)
	if href != "https://runbooks.example/kubepodcrashlooping" {
		t.Errorf("citation link %q", href)
	}
}
