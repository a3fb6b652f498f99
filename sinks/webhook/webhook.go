// Package webhook is the `webhook` sink: each finding is POSTed as JSON to
// a URL, signed with HMAC-SHA256 so the receiver can tell it came from
// medic and was not replayed:
//
//	X-Medic-Timestamp:     1741944413            (Unix seconds)
//	X-Medic-Signature-256: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//	X-Medic-Finding-Id:    <finding ID>          (the same on every retry: deduplicate on it)
//	Idempotency-Key:       <32 hex digits>       (per finding and sink, the same on every retry)
//
// The receiver recomputes the HMAC over the timestamp, a dot and the raw
// body, compares in constant time, and rejects timestamps older than a few
// minutes. See Verify, which receivers written in Go can use as it is.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/internal/httpdeliver"
)

// Type is the sink type name used in configuration.
const Type = "webhook"

// Headers medic sets.
const (
	HeaderTimestamp = "X-Medic-Timestamp"
	HeaderSignature = "X-Medic-Signature-256"
	HeaderFindingID = "X-Medic-Finding-Id"
	HeaderSink      = "X-Medic-Sink"
	// HeaderIdempotencyKey is the same on every retry and redelivery of a
	// finding to this sink (sinks.IdempotencyKey): a receiver that keeps
	// the keys it has seen acts on each finding once.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// Payload is the body: the finding and the sink that sent it.
type Payload struct {
	Sink    string         `json:"sink"`
	Finding *event.Finding `json:"finding"`
}

// Params are the parameters of the webhook sink.
type Params struct {
	URL string `yaml:"url"`
	// SecretFile or SecretEnv hold the HMAC key; without one the body is
	// sent unsigned (and medic warns at start).
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
	// Headers are added to every request (e.g. a routing key); they are
	// configuration, not secrets, and are never logged either.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one request.
	Timeout time.Duration `yaml:"timeout"`
	// MaxRetryAfter is the longest 429 Retry-After waited out in one
	// delivery.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params { return &Params{Timeout: 10 * time.Second, MaxRetryAfter: time.Minute} }

// Validate checks the parameters after decoding.
func (p *Params) Validate() error {
	u, err := url.Parse(p.URL)
	if p.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("url: required, an http(s) URL")
	}
	if p.SecretFile != "" && p.SecretEnv != "" {
		return errors.New("secret_file and secret_env: set one")
	}
	for k := range p.Headers {
		if http.CanonicalHeaderKey(k) == HeaderSignature || http.CanonicalHeaderKey(k) == HeaderTimestamp || strings.ContainsAny(k, " :\r\n") || k == "" {
			return fmt.Errorf("headers: %q cannot be set", k)
		}
	}
	switch {
	case p.Timeout <= 0:
		return errors.New("timeout: must be positive")
	case p.MaxRetryAfter < 0:
		return errors.New("max_retry_after: must not be negative")
	}
	return nil
}

// Register adds the webhook sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"POSTs each finding as JSON to a URL, signed with HMAC-SHA256 (X-Medic-Signature-256 over timestamp.body).",
		Defaults, New)
}

// Sink posts findings.
type Sink struct {
	name   string
	p      Params
	secret []byte
	poster *httpdeliver.Poster
	logger *slog.Logger
	now    func() time.Time
}

// Deps is what a webhook sink uses of sinks.Deps: a logger and the HTTP
// client whose transport it posts through.
type Deps = httpdeliver.Deps

// New starts a webhook sink, reading the secret now.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var secret string
	switch {
	case p.SecretFile != "":
		b, err := os.ReadFile(p.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("secret_file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	case p.SecretEnv != "":
		secret = os.Getenv(p.SecretEnv)
		if secret == "" {
			return nil, fmt.Errorf("secret_env: $%s is empty", p.SecretEnv)
		}
	}
	logger := deps.Logger().With("sink", name)
	if secret == "" {
		logger.Warn("webhook sink without secret_file or secret_env: findings are sent unsigned")
	}
	hc := &http.Client{Timeout: p.Timeout}
	if c := deps.HTTPClient(); c != nil && c.Transport != nil {
		hc.Transport = c.Transport
	}
	return &Sink{
		name: name, p: p, secret: []byte(secret), now: time.Now, logger: logger,
		poster: &httpdeliver.Poster{Client: hc, MaxRetryAfter: p.MaxRetryAfter, Logger: logger, What: "the webhook " + name},
	}, nil
}

// Close releases nothing.
func (s *Sink) Close() error { return nil }

// minFitBody is the smallest body Send trims a finding to when the receiver
// answers 413: below it the receiver's limit is not about evidence.
const minFitBody = 16 << 10

// Send posts f. A receiver that answers 413 Content Too Large (nginx's
// client_max_body_size is 1 MiB by default; a finding may carry several
// megabytes of logs) gets the finding again with its evidence trimmed to
// half the refused body, and so on down to minFitBody, rather than refuse
// it on every try until it is dead-lettered.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("webhook sink: nil finding")
	}
	body, err := json.Marshal(Payload{Sink: s.name, Finding: f})
	if err != nil {
		return fmt.Errorf("encode finding %s: %w", f.ID, err)
	}
	whole := body
	for {
		err = s.post(ctx, f.ID, body)
		var se *httpdeliver.StatusError
		if !errors.As(err, &se) || se.Status != http.StatusRequestEntityTooLarge || len(body)/2 < minFitBody {
			return err
		}
		refused := len(body)
		if body, err = s.fit(whole, refused); err != nil {
			return err
		}
		s.logger.Warn("the webhook receiver refused the finding as too large; posting it with its evidence trimmed",
			"finding", f.ID, "refused_bytes", refused, "bytes", len(body))
	}
}

// fit returns body, a Payload, with its finding's evidence trimmed until
// the whole encodes in at most half of refused, the size of the body the
// receiver last refused (event.Finding.TrimToFitFor). It decodes a copy:
// the finding Send was given stays as it was.
func (s *Sink) fit(body []byte, refused int) ([]byte, error) {
	limit := refused / 2
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil || p.Finding == nil {
		return nil, fmt.Errorf("decode the refused body to trim it: %v", err)
	}
	enc, err := json.Marshal(p.Finding)
	if err != nil {
		return nil, fmt.Errorf("encode finding %s: %w", p.Finding.ID, err)
	}
	room := len(body) - len(enc) // the envelope around the finding
	if _, err := p.Finding.TrimToFitFor(limit-room, event.TrimTarget{
		Limit:    fmt.Sprintf("what the webhook receiver accepts (it refused %d bytes with 413)", refused),
		Receiver: "the webhook receiver",
		Fix:      "Raise the receiver's request body limit (nginx: client_max_body_size) to keep findings whole.",
	}); err != nil {
		return nil, fmt.Errorf("fit finding %s into %d bytes for the webhook receiver: %w", p.Finding.ID, limit, err)
	}
	out, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode trimmed finding %s: %w", p.Finding.ID, err)
	}
	return out, nil
}

// post sends one signed body.
func (s *Sink) post(ctx context.Context, id string, body []byte) error {
	h := http.Header{}
	for k, v := range s.p.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "medic-webhook")
	h.Set(HeaderFindingID, id)
	h.Set(HeaderSink, s.name)
	h.Set(HeaderIdempotencyKey, sinks.IdempotencyKey(s.name, id))
	if len(s.secret) > 0 {
		ts := strconv.FormatInt(s.now().Unix(), 10)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, Sign(s.secret, ts, body))
	}
	_, err := s.poster.Post(ctx, s.p.URL, body, h)
	return err
}

// Sign returns the X-Medic-Signature-256 value for a body sent at
// timestamp (Unix seconds, as sent in X-Medic-Timestamp).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is Verify's answer for a request medic did not sign.
var ErrBadSignature = errors.New("bad or missing medic signature")

// Verify checks a received request's signature headers against its raw
// body, and that its timestamp is within maxAge of now.
func Verify(secret []byte, header http.Header, body []byte, maxAge time.Duration, now time.Time) error {
	ts := header.Get(HeaderTimestamp)
	sig := header.Get(HeaderSignature)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxAge || d < -maxAge {
		return fmt.Errorf("%w: timestamp outside %s", ErrBadSignature, maxAge)
	}
	if !hmac.Equal([]byte(sig), []byte(Sign(secret, ts, body))) {
		return ErrBadSignature
	}
	return nil
}
