// Package config is medic's one typed configuration: medic.yaml overlaid by
// MEDIC_* environment variables, with every default in Default and every
// check of its own shape in Validate, which names the offending field.
//
// It is a leaf: the bus, the Kubernetes clients, the sinks, the sources and
// the actions take its plain structs, not the other way round. What only a
// plugin can judge (a sink type's parameters, a webhook source's CEL
// mapping, the remediation actions' names) it keeps raw for a Validator,
// the second step that the binary's wiring supplies
// (internal/plugins.Builtin().ValidateConfig).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration of `medic serve`.
type Config struct {
	// ClusterName is shown on every finding so a shared channel can tell
	// clusters apart.
	ClusterName string `yaml:"cluster_name"`
	// DataDir holds JetStream's files and the default findings file.
	DataDir   string          `yaml:"data_dir"`
	Log       LogConfig       `yaml:"log"`
	HTTP      HTTPConfig      `yaml:"http"`
	Bus       BusConfig       `yaml:"bus"`
	Webhook   WebhookConfig   `yaml:"webhook"`
	Playbooks PlaybooksConfig `yaml:"playbooks"`
	Engine    EngineConfig    `yaml:"engine"`
	Memory    MemoryConfig    `yaml:"memory"`
	// Sinks are where findings go. Empty means the defaults: stdout and the
	// JSON Lines file under DataDir.
	Sinks []SinkSpec `yaml:"sinks"`
	// PlaybookRepos are Git repositories whose playbooks medic follows, in
	// addition to Playbooks.Dirs.
	PlaybookRepos []PlaybookRepo `yaml:"playbook_repos"`
	// AI is the model for explanations; KnowledgeBase holds the runbooks
	// (see ai.go).
	AI            AIConfig            `yaml:"ai"`
	KnowledgeBase KnowledgeBaseConfig `yaml:"knowledge_base"`
	// Prometheus answers prometheus_enricher's queries (see prometheus.go).
	Prometheus PrometheusConfig `yaml:"prometheus"`
	// Kubernetes is the cluster medic watches and reads (internal/kube).
	Kubernetes KubernetesConfig `yaml:"kubernetes"`
	// Slack is medic's Slack app, Alertmanager where the Silence buttons
	// create silences, PublicURL how people reach medic (links to the
	// finding page), FindingPage that page (see chat.go).
	Slack        SlackConfig        `yaml:"slack"`
	Alertmanager AlertmanagerConfig `yaml:"alertmanager"`
	PublicURL    string             `yaml:"public_url"`
	FindingPage  FindingPageConfig  `yaml:"finding_page"`
	// Redaction is what is removed from findings and prompts (redaction.go).
	Redaction RedactionConfig `yaml:"redaction"`
	// Remediation opts into actions that change the cluster (remediation.go).
	Remediation RemediationConfig `yaml:"remediation"`

	// WebhookSources are generic JSON webhooks (Argo CD, Flux, Kubecost,
	// your own tool): see webhooksources.go.
	WebhookSources []WebhookSource `yaml:"webhook_sources"`

	// Warnings collects what Load noticed but tolerated, for the caller to log.
	Warnings []string `yaml:"-"`
}

// LogConfig sets up the one slog logger.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// HTTPConfig is medic's HTTP server: webhooks, health, metrics.
type HTTPConfig struct {
	Addr string `yaml:"addr"`
	// ReadHeaderTimeout bounds reading a request's headers (a client that
	// trickles them holds a connection and a goroutine).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// MaxConnections caps the connections open at once; one more waits
	// in the kernel's backlog until one closes. 0 means no cap.
	MaxConnections  int           `yaml:"max_connections"`
	ReadTimeout     time.Duration `yaml:"read_timeout"`
	WriteTimeout    time.Duration `yaml:"write_timeout"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Pprof serves Go's profiler under /debug/pprof/ on the same address;
	// off by default because profiles reveal internals.
	Pprof bool `yaml:"pprof"`
}

// MemoryConfig is how medic treats its own memory.
type MemoryConfig struct {
	// ReleaseAfterStart gives back, once start-up is over (playbooks loaded,
	// knowledge base ingested), the memory only start-up used: the Go heap's
	// free pages and the process's mappings of executable pages that package
	// initialisers touched (internal/memtrim), which it also evicts from the
	// page cache: a freshly written binary is cached in 2 MiB folios that
	// would come back whole on the first touch of any of their pages. Until
	// work arrives, a page needed again is read from disk alone rather than
	// with the disk's read-ahead window around it (memtrim.Wake). Idle RSS
	// drops from about 84 MiB to about 20 MiB, 28 MiB under probes and
	// scrapes. The same release runs after a burst, once medic is idle.
	ReleaseAfterStart bool `yaml:"release_after_start"`
}

// WebhookConfig guards POST /api/alerts and /api/trigger.
type WebhookConfig struct {
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxInFlight bounds the intake requests (/api/alerts and /api/trigger
	// together) worked on at once; one more waits a second for a slot, then
	// gets 503 with Retry-After. 0 means no bound.
	MaxInFlight int `yaml:"max_in_flight"`
	// BodyTimeout bounds reading one request body, from the moment the
	// handler starts reading it; a slower sender gets 408. 0 means only
	// http.read_timeout bounds it.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// MaxAlertsPerRequest and MaxDecodedBytes cap one request, decided on
	// the body before it is decoded (a few MiB of tiny alerts decode to a
	// hundred times that); over either, 413 naming the setting. The
	// decoded bytes are an estimate from the body's alerts, strings and
	// size. 0 means no cap.
	MaxAlertsPerRequest int   `yaml:"max_alerts_per_request"`
	MaxDecodedBytes     int64 `yaml:"max_decoded_bytes"`
	// MaxInFlightDecodedBytes bounds the decoded bytes of the intake
	// requests worked on at once (both endpoints); one more waits a second
	// for room, then gets 503 with Retry-After. 0 means no bound.
	MaxInFlightDecodedBytes int64 `yaml:"max_in_flight_decoded_bytes"`
	// BearerToken, or Username and Password, turn authentication on.
	BearerToken string `yaml:"bearer_token"`
	// BearerTokenFile is read at start-up; it wins over BearerToken.
	BearerTokenFile string `yaml:"bearer_token_file"`
	Username        string `yaml:"username"`
	Password        string `yaml:"password"`
	PasswordFile    string `yaml:"password_file"`
}

// Defaults of the caps the webhook intake decides before it decodes a body
// (webhook.max_alerts_per_request, max_decoded_bytes,
// max_in_flight_decoded_bytes).
const (
	// DefaultMaxAlertsPerRequest is above what a 4 MiB body of real alerts
	// holds (about 5,000 at 0.8 KiB) and far below what it holds of tiny
	// hand-made ones (150,000 at 25 bytes, which decoded to 1.1 GiB).
	DefaultMaxAlertsPerRequest = 5000
	// DefaultMaxDecodedBytes is what a full 4 MiB body of real alerts is
	// estimated to take decoded (about 30 MiB, see sources/alertmanager's
	// decodeCost).
	DefaultMaxDecodedBytes int64 = 32 << 20
	// DefaultMaxInFlightDecodedBytes is a quarter of the chart's 256 MiB
	// memory limit: with the garbage collector's headroom the decoded
	// requests in flight stay within half of it.
	DefaultMaxInFlightDecodedBytes int64 = 64 << 20
)

// PlaybooksConfig says where playbooks come from.
type PlaybooksConfig struct {
	// Dirs are local folders of playbook YAML files; a missing folder is
	// skipped with a warning so the default ./playbooks may be absent.
	Dirs []string `yaml:"dirs"`
	// Builtin loads the playbooks embedded in the binary.
	Builtin bool `yaml:"builtin"`
	// Disabled names playbooks (built-in or not) that must not run.
	Disabled []string `yaml:"disabled"`
	// ReloadInterval is how often local folders are checked for changes;
	// 0 turns polling off (SIGHUP and POST /api/playbooks/reload still work).
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// AdminSink, when set, receives a finding for every rejected playbook
	// commit ("playbook commit abc1234 rejected"); it must name a sink.
	AdminSink string `yaml:"admin_sink"`
	// WebhookSecret verifies POST /api/playbooks/webhook (GitHub and Gitea
	// HMAC signatures, GitLab's token). Without one the endpoint is off.
	WebhookSecret string `yaml:"webhook_secret"`
	// WebhookSecretFile is read at start-up; it wins over WebhookSecret.
	WebhookSecretFile string `yaml:"webhook_secret_file"`
}

// EngineConfig tunes how playbooks run.
type EngineConfig struct {
	// Workers handle events concurrently. Each event waits on the bus
	// twice (the alert claim, then the finding's PubAck), so the engine
	// stage is bound by those round trips, not by the cores: more workers
	// than cores keep the CPU busy and let JetStream store the claims and
	// findings of several events in one write. Measured on 2 cores
	// (docs/benchmarks.md, session 15; 100,000 alerts): 4 workers 4,800–5,500
	// findings/s, 16 workers 6,500–7,200, 32 workers 7,200–7,700. In a storm
	// of 200,000 alerts in the chart's 256 MiB the collector, not the
	// workers, sets the pace, and the peak barely moves (high water 225–249
	// MiB with 4, 226–245 with 16, 233–257 with 32: the one run at the limit
	// is why the default is 16, not 32).
	Workers int `yaml:"workers"`
	// ActionTimeout bounds one action; a slow cluster API must not hold an
	// event forever.
	ActionTimeout time.Duration `yaml:"action_timeout"`
	// SinkWorkers is the concurrency of each sink's consumer.
	SinkWorkers int `yaml:"sink_workers"`
	// IntakeYield is how long, at most, a playbook or sink worker waits
	// before its next message while webhook or Kubernetes intake is being
	// stored, so that senders are answered first in an alert storm; 0
	// turns it off. The workers still handle Workers/IntakeYield messages
	// a second through a storm that never pauses.
	IntakeYield time.Duration `yaml:"intake_yield"`
}

// Default returns the configuration used when nothing is set: everything
// in-process, data under ./data.
func Default() Config {
	return Config{
		ClusterName: "default",
		DataDir:     "data",
		Log:         LogConfig{Level: "info", Format: "text"},
		HTTP: HTTPConfig{
			Addr:              "127.0.0.1:8080",
			ReadHeaderTimeout: 5 * time.Second,
			MaxConnections:    512,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			ShutdownTimeout:   15 * time.Second,
		},
		Bus: BusConfig{
			Replicas: 1,
			// Two minutes cover Alertmanager's retries of one webhook and
			// its HA peers sending the same notification (seconds apart);
			// later re-sends (group_interval, repeat_interval) meet the
			// alert's record in medic_alerts (alert_state_ttl) instead.
			// The embedded server keeps every ID of the window in the Go
			// heap (~110 bytes each): ten minutes of a storm held 137 MiB
			// after 600,000 alerts in a 256 MiB pod, two minutes 69
			// (docs/benchmarks.md).
			DedupWindow: 2 * time.Minute,
			// Twice publish_timeout: a publish retried by the same attempt
			// or by the next one after a nak (backoff 1s) is dropped; later
			// copies meet the sinks' delivery records.
			FindingsDedupWindow: 10 * time.Second,
			// Longer than any Alertmanager repeat_interval in common use
			// (4h by default, 24h often): each re-send must find its
			// alert's record still there.
			AlertStateTTL: 7 * 24 * time.Hour,
			// What a storm leaves in the embedded server's memory is
			// bounded by these, whatever its size (DefaultBucketRecords).
			AlertStateMaxRecords: DefaultBucketRecords,
			DeliveryMaxRecords:   DefaultBucketRecords,
			Retention:            72 * time.Hour,
			// 256 MiB per stream, as the chart: about 250,000 alerts not yet
			// processed (s2-compressed, ~1 KiB each; 110,000 as plain JSON). A full stream refuses (503), it never drops events;
			// processed ones are purged to make room. Three streams.
			MaxBytes:       256 << 20,
			MaxDeliver:     6,
			Backoff:        []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute},
			AckWait:        30 * time.Second,
			PublishTimeout: 5 * time.Second,
			// Events and findings are JSON that s2 shrinks to about 45%:
			// JetStream's block caches, which hold what was written in the
			// last 10 s, and its files shrink with them (docs/benchmarks.md).
			Compression: CompressionS2,
		},
		Webhook: WebhookConfig{
			MaxBodyBytes: 4 << 20, MaxInFlight: 64, BodyTimeout: 10 * time.Second,
			MaxAlertsPerRequest:     DefaultMaxAlertsPerRequest,
			MaxDecodedBytes:         DefaultMaxDecodedBytes,
			MaxInFlightDecodedBytes: DefaultMaxInFlightDecodedBytes,
		},
		Playbooks: PlaybooksConfig{
			Dirs:           []string{"playbooks"},
			Builtin:        true,
			ReloadInterval: 10 * time.Second,
		},
		Engine: EngineConfig{
			Workers:       16,
			ActionTimeout: 30 * time.Second,
			SinkWorkers:   1,
			IntakeYield:   10 * time.Millisecond,
		},
		Memory:        MemoryConfig{ReleaseAfterStart: true},
		AI:            defaultAI(),
		KnowledgeBase: defaultKnowledgeBase(),
		Prometheus:    defaultPrometheus(),
		Kubernetes:    defaultKubernetes(),
		Slack:         defaultSlack(),
		Alertmanager:  defaultAlertmanager(),
		FindingPage:   defaultFindingPage(),
		Redaction:     defaultRedaction(),
		Remediation:   defaultRemediation(),
	}
}

// A Validator is the second step of validation: it judges what config
// keeps raw for a plugin's registry (a sink type's parameters, a webhook
// source's preset and CEL mapping, the remediation actions' names). It runs
// after Validate and names the field the way Validate does ("sinks[1]: …"),
// with the *params.Error of the node where it has one, so that Check places
// and lists its errors like config's own. The binary's wiring supplies it
// (plugins.Builtin().ValidateConfig): config imports no plugin.
type Validator func(*Config) error

// Load reads path (skipped when empty), applies environ's MEDIC_* variables
// over it, fills the default sinks, and validates the result: Validate, then
// each of validators.
func Load(path string, environ []string, validators ...Validator) (Config, error) {
	cfg := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config %s: %w", path, err)
		}
		if err := decodeStrict(raw, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := cfg.complete(environ, validators); err != nil {
		if path != "" && errors.Is(err, errInvalid) {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		return cfg, err
	}
	return cfg, nil
}

// errInvalid marks errors of Validate, which Load prefixes with the file.
var errInvalid = errors.New("invalid configuration")

type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{e.err, errInvalid} }

// complete is everything Load does after decoding the file, shared with
// Check so that both judge a configuration the same way: the environment
// overlay, derived defaults, secret files, Validate and the validators.
func (cfg *Config) complete(environ []string, validators []Validator) error {
	if err := applyEnv(cfg, environ); err != nil {
		return err
	}
	if cfg.Bus.URL == "" && cfg.Bus.StoreDir == "" {
		cfg.Bus.StoreDir = StoreDirFor(cfg.DataDir)
	}
	if len(cfg.Sinks) == 0 {
		specs, err := DefaultSinks(cfg.DataDir)
		if err != nil {
			return err
		}
		cfg.Sinks = specs
	}
	cfg.setPlaybookRepoDefaults()
	if err := readSecretFiles(cfg); err != nil {
		return err
	}
	if err := cfg.checkPlaybookRepoSecrets(environ); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return invalidError{err}
	}
	for _, v := range validators {
		if err := v(cfg); err != nil {
			return invalidError{err}
		}
	}
	return nil
}

func decodeStrict(raw []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func readSecretFiles(cfg *Config) error {
	read := func(field, path string, dst *string) error {
		if path == "" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%s: read %s: %w", field, path, err)
		}
		*dst = strings.TrimSpace(string(b))
		return nil
	}
	if err := read("webhook.bearer_token_file", cfg.Webhook.BearerTokenFile, &cfg.Webhook.BearerToken); err != nil {
		return err
	}
	if err := read("playbooks.webhook_secret_file", cfg.Playbooks.WebhookSecretFile, &cfg.Playbooks.WebhookSecret); err != nil {
		return err
	}
	if err := readAISecrets(cfg, read); err != nil {
		return err
	}
	if err := readChatSecrets(cfg, read); err != nil {
		return err
	}
	if err := readWebhookSourceSecrets(cfg, read); err != nil {
		return err
	}
	return read("webhook.password_file", cfg.Webhook.PasswordFile, &cfg.Webhook.Password)
}

// Validate checks every field and names the first one that is wrong.
func (c *Config) Validate() error {
	switch {
	case strings.TrimSpace(c.ClusterName) == "":
		return errors.New("cluster_name: must not be empty")
	case c.DataDir == "":
		return errors.New("data_dir: must not be empty")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format: %q is not text or json", c.Log.Format)
	}
	switch {
	case c.HTTP.Addr == "":
		return errors.New("http.addr: must not be empty")
	case c.HTTP.ReadHeaderTimeout <= 0:
		return errors.New("http.read_header_timeout: must be positive")
	case c.HTTP.MaxConnections < 0:
		return fmt.Errorf("http.max_connections: %d is negative (0 means no cap)", c.HTTP.MaxConnections)
	case c.HTTP.ReadTimeout <= 0:
		return errors.New("http.read_timeout: must be positive")
	case c.Webhook.BodyTimeout < 0:
		return errors.New("webhook.body_timeout: must not be negative (0 means only http.read_timeout)")
	case c.HTTP.WriteTimeout <= 0:
		return errors.New("http.write_timeout: must be positive")
	case c.Webhook.MaxInFlight < 0:
		return fmt.Errorf("webhook.max_in_flight: %d is negative (0 means no bound)", c.Webhook.MaxInFlight)
	case c.Webhook.MaxBodyBytes < 1024:
		return errors.New("webhook.max_body_bytes: must be at least 1024")
	case c.Webhook.MaxAlertsPerRequest < 0:
		return fmt.Errorf("webhook.max_alerts_per_request: %d is negative (0 means no cap)", c.Webhook.MaxAlertsPerRequest)
	case c.Webhook.MaxDecodedBytes < 0:
		return fmt.Errorf("webhook.max_decoded_bytes: %d is negative (0 means no cap)", c.Webhook.MaxDecodedBytes)
	case c.Webhook.MaxInFlightDecodedBytes < 0:
		return fmt.Errorf("webhook.max_in_flight_decoded_bytes: %d is negative (0 means no bound)", c.Webhook.MaxInFlightDecodedBytes)
	case c.Webhook.MaxInFlightDecodedBytes > 0 && c.Webhook.MaxDecodedBytes > c.Webhook.MaxInFlightDecodedBytes:
		return fmt.Errorf("webhook.max_decoded_bytes: %d is more than webhook.max_in_flight_decoded_bytes (%d), so such a request could never be taken",
			c.Webhook.MaxDecodedBytes, c.Webhook.MaxInFlightDecodedBytes)
	case (c.Webhook.Username == "") != (c.Webhook.Password == ""):
		return errors.New("webhook.username and webhook.password: set both or neither")
	case c.Webhook.BearerToken != "" && c.Webhook.Username != "":
		return errors.New("webhook.bearer_token: cannot be combined with webhook.username/password")
	case c.Playbooks.ReloadInterval < 0:
		return errors.New("playbooks.reload_interval: must not be negative")
	case c.Engine.Workers < 1:
		return errors.New("engine.workers: must be at least 1")
	case c.Engine.SinkWorkers < 1:
		return errors.New("engine.sink_workers: must be at least 1")
	case c.Engine.ActionTimeout <= 0:
		return errors.New("engine.action_timeout: must be positive")
	case c.Engine.IntakeYield < 0 || c.Engine.IntakeYield > time.Second:
		return fmt.Errorf("engine.intake_yield: %s is not between 0s (off) and 1s", c.Engine.IntakeYield)
	}
	if err := c.Bus.Validate(); err != nil {
		return err
	}
	if err := c.validateSinks(); err != nil {
		return err
	}
	if err := c.validateAI(); err != nil {
		return err
	}
	if err := c.validateRedaction(); err != nil {
		return err
	}
	if err := c.validatePrometheus(); err != nil {
		return err
	}
	if err := c.Kubernetes.Validate(); err != nil {
		return err
	}
	if err := c.validateChat(); err != nil {
		return err
	}
	if err := c.validateRemediation(); err != nil {
		return err
	}
	if err := c.validateWebhookSources(); err != nil {
		return err
	}
	return c.validatePlaybookRepos()
}
