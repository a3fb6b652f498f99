package chattext_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks/internal/chattext"
	"github.com/medichq/medic/sinks/vendortest"
)

// Whatever an action or a pod writes, the HTML dialect's output parses as
// Telegram's HTML (balanced tags, known entities) and keeps the text.
func FuzzHTMLStaysBalanced(f *testing.F) {
	for _, s := range []string{
		"**bold** `code` [l](https://x.example/?a=1&b=2)", "```\n<pre>\n```", "# h\n**x `y** z`",
		"[x](javascript:alert(1))", "a & b < c > d \" e", "** ** ``` `", "\x00\x1b[31m", "[**a**](https://e.example)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, out := range map[string]string{
			"markdown": chattext.HTML.Markdown(s), "text": chattext.HTML.Text(s), "pre": chattext.HTML.Pre(s),
			"bold": chattext.HTML.Bold(s), "code": chattext.HTML.Code(s), "link": chattext.HTML.Link(s, "https://x.example/?q="+s),
		} {
			if _, err := vendortest.TelegramHTML(out); err != "" {
				t.Fatalf("%s(%q) = %q: %s", name, s, out, err)
			}
		}
	})
}

// Fit keeps the head and the tail, shortens a section that does not fit
// whole, and leaves the rest out with a note that links to the page.
func TestFit(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 900)
	secs := []chattext.Section{
		{Title: "one", Full: "short", Short: "short"},
		{Title: "two", Full: long, Short: "two, shortened"},
		{Title: "three", Full: long, Short: long},
		{Title: "four", Full: "never shown", Short: "never shown"},
	}
	out := chattext.Fit(chattext.Markdown, "HEAD", secs, "TAIL", "https://medic.example/f/1", 1200)
	if n := utf8.RuneCountInString(out); n > 1200 {
		t.Fatalf("%d characters, limit 1200", n)
	}
	for _, want := range []string{"HEAD", "**one**\nshort", "two, shortened", "…truncated: 2 more sections did not fit", "(https://medic.example/f/1)", "TAIL"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "never shown") || !strings.HasSuffix(out, "TAIL") {
		t.Errorf("output:\n%s", out)
	}
}

// A pinned section (what was redacted) is kept when the sections before it
// are cut, after the truncation note; without a cut it stays in its place.
func TestFitKeepsPinnedSections(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 900)
	secs := []chattext.Section{
		{Title: "logs", Full: long, Short: long},
		{Title: "yaml", Full: long, Short: long},
		{Title: "Redacted", Full: "🔒 2 values redacted", Short: "🔒 2 values redacted", Pinned: true},
	}
	for _, tt := range []struct {
		name      string
		max       int
		truncated bool
	}{
		{"cut", 1200, true},
		{"room for all", 4000, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := chattext.Fit(chattext.Markdown, "HEAD", secs, "TAIL", "https://medic.example/f/1", tt.max)
			if n := utf8.RuneCountInString(out); n > tt.max {
				t.Fatalf("%d characters, limit %d", n, tt.max)
			}
			if got := strings.Contains(out, "…truncated"); got != tt.truncated {
				t.Fatalf("truncated = %v, want %v:\n%s", got, tt.truncated, out)
			}
			if !strings.HasSuffix(out, "**Redacted**\n🔒 2 values redacted\n\nTAIL") {
				t.Errorf("the redaction note is not kept before the tail:\n%s", out)
			}
		})
	}
}

// An alert's firing and resolved findings share a thread key; another
// alert (other labels, or the same labels firing again later) does not.
func TestThreadKey(t *testing.T) {
	t.Parallel()
	firing, resolved := vendortest.Alert(event.StatusFiring), vendortest.Alert(event.StatusResolved)
	other := vendortest.Alert(event.StatusFiring)
	other.Event.Fingerprint = "0000000000000001"
	again := vendortest.Alert(event.StatusFiring)
	again.Event.StartsAt = again.Event.StartsAt.Add(3 * 60 * 60 * 1e9)
	if chattext.ThreadKey(firing) != chattext.ThreadKey(resolved) {
		t.Error("firing and resolved in different threads")
	}
	if chattext.ThreadKey(firing) == chattext.ThreadKey(other) || chattext.ThreadKey(firing) == chattext.ThreadKey(again) {
		t.Error("two alerts share a thread")
	}
	plain := &event.Finding{ID: "f1"}
	if chattext.ThreadKey(plain) != "f1" {
		t.Errorf("a finding without fingerprint: %q", chattext.ThreadKey(plain))
	}
}

func TestMarkdownNeutralisesCluster(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"[x](javascript:alert(1))": "x (javascript:alert(1))",
		"@channel look":            "@\u200bchannel look",
		"[ok](https://e.example)":  "[ok](https://e.example)",
	} {
		if got := chattext.Markdown.Markdown(in); got != want {
			t.Errorf("Markdown(%q) = %q, want %q", in, got, want)
		}
	}
	if got := chattext.Markdown.Pre("a\n```\nb"); strings.Count(got, "```") != 2 {
		t.Errorf("a fence in a log closes the block: %q", got)
	}
}
