// Package sinks holds the sink registry, sink configuration and routing.
// Concrete sinks live in sub-packages (file, stdout, slack, …) and register
// their type from init; sinks/all imports every one of them.
//
// A sink never sees the bus: medic feeds each configured sink from its own
// durable JetStream consumer, retries failed deliveries with back-off and
// dead-letters what keeps failing, so a sink only has to deliver one finding.
package sinks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/registry"
)

// Sink delivers findings somewhere people or programs read them.
type Sink interface {
	// Send delivers f. It is called again with the same finding after a
	// failure or a crash, so a sink that can tell should not post twice.
	Send(ctx context.Context, f *event.Finding) error
	// Close flushes and releases what the sink holds.
	Close() error
}

// EncodedSender is implemented by sinks that can deliver a finding from the
// JSON medic stored on the bus (an encoded event.Finding), sparing a decode
// and a re-encode per finding on the hot path. Send is still used when the
// encoding is not at hand.
type EncodedSender interface {
	SendEncoded(ctx context.Context, id string, encoded []byte) error
}

// SelfDeduplicating is implemented by sinks that already keep, durably and
// next to what they deliver, which findings they delivered (the file sink:
// the file itself). medic skips its own delivery record for them, a KV read
// and write per finding saved on the hot path.
type SelfDeduplicating interface {
	DeduplicatesItself() bool
}

// IdempotencyKey is the key of one finding's delivery to one sink: the same
// on every retry and redelivery, different for each sink. medic's delivery
// record is kept under it, and sinks that speak HTTP send it as the
// Idempotency-Key header so the receiver can drop a repeat.
func IdempotencyKey(sink, findingID string) string {
	sum := sha256.Sum256([]byte(sink + "\x00" + findingID))
	return hex.EncodeToString(sum[:16])
}

// Deps are what sinks may need to start.
type Deps struct {
	Logger *slog.Logger
	// DataDir is medic's writable data folder; relative sink paths are
	// resolved against the working directory, not this.
	DataDir string
	// Stdout is where the stdout sink writes; os.Stdout unless a test swaps it.
	Stdout io.Writer
	// HTTPClient is for sinks that post over HTTP.
	HTTPClient *http.Client

	// ClusterName is the configuration's cluster_name; chat sinks show it.
	ClusterName string
	// KV opens, creating it when missing, a JetStream key-value bucket whose
	// entries expire after ttl (0: never). Sinks keep there what must
	// survive a restart (Slack message references, group threads). Nil
	// when medic runs without a bus (unit tests); sinks then keep it in
	// memory.
	KV func(ctx context.Context, bucket string, ttl time.Duration) (jetstream.KeyValue, error)
	// Findings keeps delivered findings for a while, so chat buttons and
	// medic's finding page can look one up by its ID. Nil: not kept.
	Findings FindingStore
	// FindingURL returns a signed, expiring link to medic's page for a
	// finding, or "" when public_url is not configured. Nil: no links.
	FindingURL func(id string) string
	// Slack is the configuration's slack section as far as sinks need it.
	Slack SlackSettings
}

// SlackSettings are the workspace-wide Slack settings the Slack sinks post
// with unless a sink's own parameters say otherwise.
type SlackSettings struct {
	// BotToken (xoxb-…) is a secret: never logged, never put in a message.
	BotToken string
	// APIURL is Slack's Web API base URL; empty means https://slack.com/api/.
	APIURL string
}

// FindingStore keeps findings by ID for the chat sinks' buttons and the
// finding page (medic keeps them in the JetStream KV bucket medic_findings).
type FindingStore interface {
	Put(ctx context.Context, f *event.Finding) error
	// Get returns ErrFindingNotFound when the finding is not (or no longer)
	// stored.
	Get(ctx context.Context, id string) (*event.Finding, error)
}

// ErrFindingNotFound is FindingStore.Get's answer for an unknown or expired ID.
var ErrFindingNotFound = errors.New("finding not found (it may have expired)")

// Factory starts a sink from validated parameters.
type Factory func(name string, deps Deps) (Sink, error)

var defs = registry.New[Factory]("sink type")

// Definition describes one registered sink type.
type Definition = registry.Definition[Factory]

// Register adds a sink type. P is its parameter struct with defaults; build
// validates the parameters and returns the factory that starts the sink.
func Register[P any](typ, doc string, defaults func() *P, build func(*P) (Factory, error)) {
	registry.Add(defs, typ, doc, defaults, build)
}

// RegisterNew registers a sink type whose sinks are started by start with
// the validated parameters (the registry has called their Validate): the
// usual shape, `sinks.RegisterNew(Type, doc, Defaults, New)`.
func RegisterNew[P any, S Sink](typ, doc string, defaults func() *P, start func(name string, p P, deps Deps) (S, error)) {
	Register(typ, doc, defaults, func(p *P) (Factory, error) {
		params := *p
		return func(name string, deps Deps) (Sink, error) {
			s, err := start(name, params, deps)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return s, nil
		}, nil
	})
}

// Types lists registered sink types, sorted.
func Types() []string { return defs.Names() }

// Definitions lists registered sink types.
func Definitions() []Definition { return defs.Definitions() }

// factory decodes a spec's parameters strictly and returns its factory.
func factory(typ string, params *yaml.Node) (Factory, error) { return defs.Build(typ, params) }
