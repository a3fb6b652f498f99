// Package incident holds what the sinks that open incidents in another
// system (PagerDuty, Opsgenie, Jira, email) share: the keys that tie medic's
// findings to the incident they open, so a resolve closes it and a
// redelivery does not open a second, and the plain text of a finding.
package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/medichq/medic/sinks/chatfmt"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/internal/httpdeliver"
	"github.com/medichq/medic/sinks/stdout"
)

// LifetimeKey identifies one firing-to-resolved span of one alert as sent to
// one sink: the firing and the resolved finding of an alert share it (they
// are different findings, with different IDs), and a redelivery of either
// has it too. An alert that fires again after it resolved starts a new
// lifetime (Alertmanager gives it a new startsAt). Events without a
// fingerprint (nothing resolves them) are keyed by their finding.
func LifetimeKey(sink string, f *event.Finding) string {
	ev := &f.Event
	if ev.Fingerprint == "" {
		return sinks.IdempotencyKey(sink, f.ID)
	}
	return sinks.IdempotencyKey(sink, "lifetime\x00"+ev.Source+"\x00"+ev.Fingerprint+"\x00"+ev.StartsAt.UTC().Format(time.RFC3339Nano))
}

// AlertKey identifies every lifetime of one alert as sent to one sink (its
// source and fingerprint): a ticket system keeps one ticket per alert and
// comments on it each time the alert fires again.
func AlertKey(sink string, f *event.Finding) string {
	ev := &f.Event
	if ev.Fingerprint == "" {
		return sinks.IdempotencyKey(sink, f.ID)
	}
	return sinks.IdempotencyKey(sink, "alert\x00"+ev.Source+"\x00"+ev.Fingerprint)
}

// Title is the finding's title on one line, cut to at most max runes with
// an ellipsis (vendors cap summaries: Opsgenie's message at 130
// characters, PagerDuty's summary at 1024).
func Title(f *event.Finding, max int) string {
	t := strings.Join(strings.Fields(f.Title), " ")
	if t == "" {
		t = strings.Join(strings.Fields(f.Event.Title), " ")
	}
	if t == "" {
		t = "medic finding " + f.ID
	}
	return Truncate(t, max)
}

// Truncate cuts s to at most max runes, ending with "…" when it cut.
func Truncate(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// Text renders the finding as plain text (the stdout sink's rendering
// without colour), cut to at most max bytes on a line boundary with a note
// saying so. What was redacted (event.RedactionSource) is said last and
// survives the cut: it follows the note.
func Text(f *event.Finding, max int) string {
	s := plainText(f)
	if max <= 0 || len(s) <= max {
		return s
	}
	const note = "\n…truncated; the whole finding is on medic's finding page"
	var pinned string
	if r := f.Redaction(); r != nil {
		var lines []string
		for _, b := range r.Blocks {
			if b.Kind == event.BlockMarkdown && b.Markdown != "" {
				lines = append(lines, b.Markdown)
			}
		}
		if p := "\n" + strings.Join(lines, "\n"); len(lines) > 0 && len(p) <= max/4 {
			pinned = p
			rest := *f
			rest.Enrichments = f.WithoutRedaction()
			s = plainText(&rest)
		}
	}
	if len(s)+len(pinned) <= max {
		return s + pinned
	}
	room := max - len(note) - len(pinned)
	if room < 0 { // a max smaller than the note, never a vendor's
		return validPrefix(s[:max])
	}
	cut := s[:room]
	if i := strings.LastIndexByte(cut, '\n'); i > 0 {
		cut = cut[:i]
	}
	return validPrefix(cut) + note + pinned
}

// validPrefix drops the bytes of a rune a byte-wise cut split.
func validPrefix(s string) string {
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func plainText(f *event.Finding) string {
	var b bytes.Buffer
	_ = stdout.Render(&b, f, false) // writing to a buffer cannot fail
	return strings.TrimRight(b.String(), "\n")
}

// Deps is what an incident sink that posts over HTTP uses of sinks.Deps:
// the poster's logger and client, and the cluster's name and the finding
// page's link its incidents show.
type Deps interface {
	httpdeliver.Deps
	ClusterName() string
	FindingURL(id string) string
}

// Logger is deps' logger naming the sink.
func Logger(name string, deps interface{ Logger() *slog.Logger }) *slog.Logger {
	return deps.Logger().With("sink", name)
}

// Poster is an HTTP sink's poster: its own timeout, deps' transport (a
// proxy, a test's), errors naming vendor and the sink.
func Poster(name, vendor string, timeout, maxRetryAfter time.Duration, deps httpdeliver.Deps) *httpdeliver.Poster {
	hc := &http.Client{Timeout: timeout}
	if c := deps.HTTPClient(); c != nil && c.Transport != nil {
		hc.Transport = c.Transport
	}
	return &httpdeliver.Poster{Client: hc, MaxRetryAfter: maxRetryAfter, Logger: Logger(name, deps), What: vendor + " (sink " + name + ")"}
}

// PostJSON is the delivery of an HTTP incident sink: v, f's request to the
// vendor, encoded as JSON and posted to target with the header h (a
// User-Agent of medic added), errors naming the finding. A 4xx other than
// 429 will not heal by retrying, but the consumer retries and then
// dead-letters it, where the operator sees the vendor's reason.
func PostJSON(ctx context.Context, p *httpdeliver.Poster, target string, h http.Header, f *event.Finding, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode the request for finding %s: %w", f.ID, err)
	}
	if h == nil {
		h = http.Header{}
	}
	h.Set("User-Agent", "medic")
	if _, err := p.Post(ctx, target, body, h); err != nil {
		return fmt.Errorf("send finding %s: %w", f.ID, err)
	}
	return nil
}

// HTTPParams are the parameters every HTTP incident sink has; embed them
// with `yaml:",inline"`.
type HTTPParams struct {
	// Timeout bounds one request.
	Timeout time.Duration `yaml:"timeout"`
	// MaxRetryAfter is the longest 429 Retry-After waited out in one
	// delivery; a longer one fails the delivery, which is retried later.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
}

// DefaultHTTP are HTTPParams' defaults.
func DefaultHTTP() HTTPParams {
	return HTTPParams{Timeout: 10 * time.Second, MaxRetryAfter: time.Minute}
}

// Poster is an HTTP sink's poster with these parameters.
func (h HTTPParams) Poster(name, vendor string, deps httpdeliver.Deps) *httpdeliver.Poster {
	return Poster(name, vendor, h.Timeout, h.MaxRetryAfter, deps)
}

// CheckHTTP validates the parameters every HTTP sink has: its API's base
// URL under key, the request timeout and the longest Retry-After waited.
func CheckHTTP(key, apiURL string, h HTTPParams) error {
	if !chatfmt.IsWebURL(apiURL) {
		return fmt.Errorf("%s: required, an http(s) URL", key)
	}
	return h.Validate()
}

// Validate checks the request timeout and the longest Retry-After waited,
// for a sink whose URL is a secret checked once it is read.
func (h HTTPParams) Validate() error {
	switch {
	case h.Timeout <= 0:
		return errors.New("timeout: must be positive")
	case h.MaxRetryAfter < 0:
		return errors.New("max_retry_after: must not be negative")
	}
	return nil
}
