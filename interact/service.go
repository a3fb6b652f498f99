// Package interact is medic's interactive side: its own Slack app (signed
// interaction requests on POST /slack/interactions, mentions on
// POST /slack/events, or both over Socket Mode), the workers behind the
// buttons (Ask AI, Silence 1h / 4h, Show more logs, "@medic why?" in a
// thread), and the finding page (GET /findings/{id}) that Teams cards and
// "Open in medic" links point at.
//
// Clicks are answered within Slack's 3 seconds by publishing a job on the
// MEDIC_INTERACTIONS stream; workers consume it durably (the bus retries and
// dead-letters) and answer in the finding's thread. What must hold across
// replicas and restarts is in JetStream KV: findings (medic_findings), the
// single-flight state of each Ask AI (medic_ai_asks), seen request
// signatures (medic_slack_replay), the page key (medic_interact).
package interact

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/sinks"
	sslack "github.com/medichq/medic/sinks/slack"
)

// KV buckets of the interactive side.
const (
	AsksBucket   = "medic_ai_asks"
	ReplayBucket = "medic_slack_replay"
)

// Options configure a Service.
type Options struct {
	Bus      *bus.Bus
	Replicas int
	Logger   *slog.Logger
	// HTTPClient reaches Slack and Alertmanager.
	HTTPClient *http.Client
	KV         KVFunc
	Findings   sinks.FindingStore
	Links      *Links
	// Answerer is the AI (rag.Service); nil answers "AI is not configured".
	Answerer rag.Answerer
	Slack    SlackOptions
	// AlertmanagerURL is where silences are created. Empty: the alert's
	// own Alertmanager (its externalURL) only when AlertmanagerAllowed
	// lists it; otherwise the Silence buttons answer why they cannot act.
	AlertmanagerURL     string
	AlertmanagerAllowed []string
	// AlertmanagerToken, when set, is sent as a bearer token.
	AlertmanagerToken   func() (string, error)
	AlertmanagerTimeout time.Duration
	// AskTimeout bounds one answer (default 3m).
	AskTimeout time.Duration
	// MoreLogLines is how many last lines "Show more logs" posts (100).
	MoreLogLines int
	// Remediator runs approved remediations (actions/remediate); nil
	// answers an Approve button with "remediation is not enabled".
	Remediator Remediator
	// Approvers are the Slack user IDs and user-group IDs whose press of
	// an Approve button runs a proposed remediation.
	Approvers []string
	// Now is the clock (tests).
	Now func() time.Time
}

// SlackOptions are medic's Slack app settings.
type SlackOptions struct {
	BotToken      string
	SigningSecret string
	AppToken      string
	SocketMode    bool
	APIURL        string
}

// Service is the interactive side.
type Service struct {
	o       Options
	logger  *slog.Logger
	js      jetstream.JetStream
	asks    jetstream.KeyValue
	replay  jetstream.KeyValue
	threads jetstream.KeyValue // sinks/slack's bucket, for mentions
	runs    jetstream.KeyValue // approved remediations (approve.go)
	poster  *sslack.Poster     // nil without a bot token
	now     func() time.Time
	workers []*bus.Consumer // started by Start, stopped by Close
}

// New prepares the service: the stream, the buckets and the Slack client.
// Nothing runs until Start.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Bus == nil || o.KV == nil || o.Findings == nil {
		return nil, errors.New("interact: the bus, KV and the finding store are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.AskTimeout <= 0 {
		o.AskTimeout = 3 * time.Minute
	}
	if o.MoreLogLines <= 0 {
		o.MoreLogLines = 100
	}
	if o.AlertmanagerTimeout <= 0 {
		o.AlertmanagerTimeout = 10 * time.Second
	}
	s := &Service{o: o, logger: o.Logger, js: o.Bus.JetStream(), now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if err := ensureStream(ctx, s.js, o.Replicas); err != nil {
		return nil, err
	}
	var err error
	if s.asks, err = o.KV(ctx, AsksBucket, 24*time.Hour); err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", AsksBucket, err)
	}
	if s.replay, err = o.KV(ctx, ReplayBucket, 10*time.Minute); err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", ReplayBucket, err)
	}
	if s.threads, err = o.KV(ctx, sslack.Bucket, sslack.BucketTTL); err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", sslack.Bucket, err)
	}
	if s.runs, err = o.KV(ctx, RemediationsBucket, remediationsTTL); err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", RemediationsBucket, err)
	}
	if o.Slack.BotToken != "" {
		s.poster = &sslack.Poster{
			Client:        sslack.NewClient(o.Slack.BotToken, o.Slack.APIURL, o.HTTPClient),
			Limiter:       rate.NewLimiter(2, 4),
			MaxRetryAfter: time.Minute,
			Logger:        o.Logger,
		}
	}
	return s, nil
}

// SlackEnabled reports whether Slack requests are accepted over HTTP.
func (s *Service) SlackEnabled() bool { return s.o.Slack.SigningSecret != "" }

// SocketMode reports whether RunSocketMode should run.
func (s *Service) SocketMode() bool { return s.o.Slack.SocketMode }

// Start runs the workers; RunSocketMode runs the Socket Mode client.
func (s *Service) Start(ctx context.Context, onDeadLetter func(consumer string) func(*bus.Delivery, string)) error {
	dl := func(name string) func(*bus.Delivery, string) {
		if onDeadLetter == nil {
			return nil
		}
		return onDeadLetter(name)
	}
	for _, cc := range []bus.ConsumerConfig{
		{Stream: Stream, Durable: "interact-ai", FilterSubject: AISubject, Workers: 2, OnDeadLetter: dl("interact-ai")},
		{Stream: Stream, Durable: "interact-actions", FilterSubject: ActionsPrefix + ">", Workers: 2, OnDeadLetter: dl("interact-actions")},
	} {
		c, err := s.o.Bus.Consume(ctx, cc, s.handleJob)
		if err != nil {
			return err
		}
		s.workers = append(s.workers, c)
	}
	return nil
}

// Close stops the workers: running jobs get the bus's grace period to
// finish, the rest is redelivered. The caller closes what the jobs use
// (the AI, the bus) after it.
func (s *Service) Close() error {
	for _, c := range s.workers {
		c.Stop()
	}
	return nil
}
