// Package teams is the `teams` sink: each finding becomes an Adaptive Card
// (schema 1.5) posted to a Microsoft Teams Workflows ("post to a channel
// when a webhook request is received") or incoming webhook URL, with the
// same content as the Slack message and the same discipline about limits:
// the card stays under max_card_bytes (28 KB), with a visible
// "…truncated" note when something had to go.
//
// Teams webhooks cannot call medic back, so the card's buttons open pages:
// medic's signed finding page (with an Ask AI button that shows the answer
// on the page), Alertmanager's silence page, the runbook and the graph.
package teams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/internal/chatparams"
	"github.com/medichq/medic/sinks/internal/httpdeliver"
)

// Type is the sink type name used in configuration.
const Type = "teams"

// Bucket remembers which findings a Teams sink posted, so a redelivery
// after a crash does not post the card twice.
const Bucket = "medic_teams"

// Params are the parameters of the teams sink.
type Params struct {
	// WebhookURL is the Workflows or incoming webhook URL. It is a secret
	// (its signature is the credential): prefer webhook_url_file or
	// webhook_url_env. It is never logged.
	WebhookURL     string `yaml:"webhook_url"`
	WebhookURLFile string `yaml:"webhook_url_file"`
	WebhookURLEnv  string `yaml:"webhook_url_env"`
	// MaxCardBytes bounds the card's JSON (Teams refuses about 28 KB).
	MaxCardBytes int `yaml:"max_card_bytes"`
	// InlineLogLines is how many last lines of a log the card shows.
	InlineLogLines int `yaml:"inline_log_lines"`
	// MaxRetryAfter is the longest 429 Retry-After waited out inside one
	// delivery.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params {
	return &Params{MaxCardBytes: DefaultMaxCardBytes, InlineLogLines: 15, MaxRetryAfter: time.Minute}
}

// Validate checks the parameters after decoding.
func (p *Params) Validate() error {
	n := 0
	for _, v := range []string{p.WebhookURL, p.WebhookURLFile, p.WebhookURLEnv} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return errors.New("webhook_url, webhook_url_file or webhook_url_env: set exactly one")
	}
	if p.WebhookURL != "" {
		if err := checkURL(p.WebhookURL); err != nil {
			return fmt.Errorf("webhook_url: %w", err)
		}
	}
	switch {
	case p.MaxCardBytes < 2000 || p.MaxCardBytes > 100000:
		return errors.New("max_card_bytes: must be between 2000 and 100000")
	case p.InlineLogLines < 1 || p.InlineLogLines > 100:
		return errors.New("inline_log_lines: must be between 1 and 100")
	case p.MaxRetryAfter < 0:
		return errors.New("max_retry_after: must not be negative")
	}
	return nil
}

// checkURL validates a webhook URL without ever echoing it.
func checkURL(s string) error {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("not an http(s) URL")
	}
	return nil
}

// Register adds the teams sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Posts each finding to Microsoft Teams as an Adaptive Card through a Workflows or incoming webhook; its buttons open medic's finding page (with Ask AI), the silence page, the runbook and the graph.",
		Defaults, New)
}

// Sink posts cards. It is safe for concurrent use.
type Sink struct {
	name     string
	p        Params
	url      string
	poster   *httpdeliver.Poster
	logger   *slog.Logger
	cluster  string
	pageURL  func(string) string
	findings sinks.FindingStore
	kv       jetstream.KeyValue

	mu   sync.Mutex
	sent map[string]bool // without a KV bucket
}

// Deps is what a teams sink uses of sinks.Deps.
type Deps interface {
	chatparams.Deps
	Findings() sinks.FindingStore
	KV(ctx context.Context, bucket string, ttl time.Duration) (jetstream.KeyValue, error)
}

// New starts a Teams sink; the webhook URL is read from its file or
// environment variable now.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	target := strings.TrimSpace(p.WebhookURL)
	switch {
	case p.WebhookURLFile != "":
		b, err := os.ReadFile(p.WebhookURLFile)
		if err != nil {
			return nil, fmt.Errorf("webhook_url_file: %w", err)
		}
		target = strings.TrimSpace(string(b))
	case p.WebhookURLEnv != "":
		target = strings.TrimSpace(os.Getenv(p.WebhookURLEnv))
		if target == "" {
			return nil, fmt.Errorf("webhook_url_env: $%s is empty", p.WebhookURLEnv)
		}
	}
	if err := checkURL(target); err != nil {
		return nil, fmt.Errorf("the Teams webhook URL: %w", err)
	}
	logger := deps.Logger().With("sink", name)
	s := &Sink{
		name: name, p: p, url: target, logger: logger, cluster: deps.ClusterName(),
		pageURL: deps.FindingURL, findings: deps.Findings(), sent: map[string]bool{},
		poster: &httpdeliver.Poster{Client: deps.HTTPClient(), MaxRetryAfter: p.MaxRetryAfter, Logger: logger, What: "the Teams webhook"},
	}
	kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	switch kv, err := deps.KV(kctx, Bucket, 7*24*time.Hour); {
	case errors.Is(err, sinks.ErrNoKV): // sent cards are remembered in memory
	case err != nil:
		return nil, fmt.Errorf("open KV bucket %s: %w", Bucket, err)
	default:
		s.kv = kv
	}
	return s, nil
}

// Close releases nothing.
func (s *Sink) Close() error { return nil }

// CardFor renders the card this sink posts for f.
func (s *Sink) CardFor(f *event.Finding) Element {
	o := CardOptions{Cluster: s.cluster, InlineLogLines: s.p.InlineLogLines, MaxCardBytes: s.p.MaxCardBytes}
	if s.pageURL != nil {
		o.PageURL = s.pageURL(f.ID)
	}
	return Card(f, o)
}

// Send posts f's card, once.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("teams sink: nil finding")
	}
	key := "sent." + s.name + "." + keyToken(f.ID)
	if done, err := s.wasSent(ctx, key); err != nil {
		return err
	} else if done {
		return nil
	}
	if s.findings != nil {
		if err := s.findings.Put(ctx, f); err != nil {
			s.logger.Warn("could not store the finding for its page", "finding", f.ID, "err", err)
		}
	}
	body, err := json.Marshal(Message(s.CardFor(f)))
	if err != nil {
		return fmt.Errorf("encode card for finding %s: %w", f.ID, err)
	}
	if _, err := s.poster.Post(ctx, s.url, body, nil); err != nil {
		return err
	}
	return s.markSent(ctx, key)
}

func (s *Sink) wasSent(ctx context.Context, key string) (bool, error) {
	if s.kv == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.sent[key], nil
	}
	_, err := s.kv.Get(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("read delivery record: %w", err)
	}
}

func (s *Sink) markSent(ctx context.Context, key string) error {
	if s.kv == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sent[key] = true
		return nil
	}
	if _, err := s.kv.Put(ctx, key, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		s.logger.Warn("card posted, but its delivery record was not saved (a redelivery would post it again)", "key", key, "err", err)
	}
	return nil
}

func keyToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}
