// Package sinks holds the sink registry, sink configuration and routing.
// Concrete sinks live in sub-packages (file, stdout, slack, …), each with a
// Register(*Registry) that adds its type; sinks/all.Register calls every one
// of them, and the binary's wiring (internal/plugins.Builtin) calls that.
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
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"sync"
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

// Deps is everything medic offers sinks when they start, filled once by the
// app (a test fills what the sink under test uses). No sink takes it whole:
// a sink's New declares the few methods below that it calls as its own
// interface, say
//
//	type Deps interface {
//		Logger() *slog.Logger
//		HTTPClient() *http.Client
//	}
//
// and Add checks, when the sink registers, that Deps provides them.
// What each sink uses is listed by Uses (and kept in sinks/all's golden
// file), so a sink that starts to need more says so in review.
type Deps struct {
	// Log is the logger sinks log to; nil discards.
	Log *slog.Logger
	// HTTP is for sinks that post over HTTP; nil leaves the choice to the
	// sink (most use http.DefaultClient's transport).
	HTTP *http.Client
	// Out is where the stdout sink writes; os.Stdout unless a test swaps it.
	Out io.Writer
	// Cluster is the configuration's cluster_name; chat sinks show it.
	Cluster string
	// OpenKV opens, creating it when missing, a JetStream key-value bucket
	// whose entries expire after ttl (0: never). Nil when medic runs
	// without a bus (unit tests).
	OpenKV func(ctx context.Context, bucket string, ttl time.Duration) (jetstream.KeyValue, error)
	// FindingStore keeps delivered findings. Nil: not kept.
	FindingStore FindingStore
	// PageURL returns a signed, expiring link to medic's page for a
	// finding, or "" when public_url is not configured. Nil: no links.
	PageURL func(id string) string
	// SlackSettings is the configuration's slack section as far as sinks
	// need it.
	SlackSettings SlackSettings
}

// Logger is the logger to log to, never nil.
func (d Deps) Logger() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

// HTTPClient is the client to post with; nil when the app gave none.
func (d Deps) HTTPClient() *http.Client { return d.HTTP }

// Stdout is where the stdout sink writes; nil when the app gave none.
func (d Deps) Stdout() io.Writer { return d.Out }

// ClusterName is the configuration's cluster_name.
func (d Deps) ClusterName() string { return d.Cluster }

// ErrNoKV is KV's answer when medic runs without a bus; a sink then keeps
// in memory what it would have kept in the bucket.
var ErrNoKV = errors.New("no JetStream key-value store (medic runs without a bus)")

// KV opens, creating it when missing, a JetStream key-value bucket whose
// entries expire after ttl (0: never). Sinks keep there what must survive a
// restart (Slack message references, group threads).
func (d Deps) KV(ctx context.Context, bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
	if d.OpenKV == nil {
		return nil, ErrNoKV
	}
	return d.OpenKV(ctx, bucket, ttl)
}

// Findings keeps delivered findings for a while, so chat buttons and
// medic's finding page can look one up by its ID; nil when not kept.
func (d Deps) Findings() FindingStore { return d.FindingStore }

// FindingURL is a signed, expiring link to medic's page for the finding
// id, or "" when there is none to give.
func (d Deps) FindingURL(id string) string {
	if d.PageURL == nil {
		return ""
	}
	return d.PageURL(id)
}

// Slack is the workspace-wide Slack settings.
func (d Deps) Slack() SlackSettings { return d.SlackSettings }

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

// Factory starts a sink from validated parameters. ctx bounds what starting
// does (opening a file or a bucket, reading a secret, dialing a broker).
type Factory func(ctx context.Context, name string, deps Deps) (Sink, error)

// Definition describes one registered sink type.
type Definition = registry.Definition[Factory]

// Registry holds the sink types a binary (or a test) knows. It is a value
// handed to whoever decodes or starts sinks (the app, config check, the
// Robusta importer), never a package global: sinks/all.Register fills one
// with every sink medic ships.
type Registry struct {
	defs *registry.Registry[Factory]

	mu   sync.Mutex
	uses map[string][]string // sink type → the methods of Deps its New takes
}

// NewRegistry returns a registry holding the sink types of the packages
// whose Register functions it is given (none: an empty one), as a test
// builds exactly the sinks it needs: sinks.NewRegistry(file.Register).
func NewRegistry(register ...func(*Registry)) *Registry {
	r := &Registry{defs: registry.New[Factory]("sink type"), uses: map[string][]string{}}
	for _, add := range register {
		add(r)
	}
	return r
}

// Add adds a sink type to r, `sinks.Add(r, Type, doc, Defaults, New)`:
// P is its parameter struct (defaults returns it filled with the defaults;
// the registry calls its Validate), D the interface of what New uses of
// Deps. New is called with the validated parameters each time a sink of
// this type starts. It panics, when the sink registers, if D is not an
// interface that Deps satisfies, or if the type is registered twice:
// programming errors that no configuration can cause.
func Add[P any, D any, S Sink](r *Registry, typ, doc string, defaults func() *P, start func(ctx context.Context, name string, p P, deps D) (S, error)) {
	dt := reflect.TypeFor[D]()
	if dt.Kind() != reflect.Interface || !reflect.TypeFor[Deps]().Implements(dt) {
		panic(fmt.Sprintf("sink type %q: New must take an interface of Deps's methods, not %v", typ, dt))
	}
	methods := make([]string, dt.NumMethod()) // sorted, as reflect lists them
	for i := range methods {
		methods[i] = dt.Method(i).Name
	}
	registry.Add(r.defs, typ, doc, defaults, func(p *P) (Factory, error) {
		params := *p
		return func(ctx context.Context, name string, deps Deps) (Sink, error) {
			s, err := start(ctx, name, params, any(deps).(D))
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return s, nil
		}, nil
	})
	r.mu.Lock()
	r.uses[typ] = methods
	r.mu.Unlock()
}

// Uses lists, sorted, the methods of Deps a sink type's New takes; nil for
// an unknown type.
func (r *Registry) Uses(typ string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.uses[typ])
}

// Types lists registered sink types, sorted.
func (r *Registry) Types() []string { return r.defs.Names() }

// Definitions lists registered sink types, sorted by type.
func (r *Registry) Definitions() []Definition { return r.defs.Definitions() }

// factory decodes a spec's parameters strictly and returns its factory.
func (r *Registry) factory(typ string, params *yaml.Node) (Factory, error) {
	return r.defs.Build(typ, params)
}
