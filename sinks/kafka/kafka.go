// Package kafka is the `kafka` sink: each finding is produced to a Kafka
// topic as the JSON medic stores on the bus (an encoded event.Finding),
// keyed by medic's idempotency key for the finding and this sink
// (sinks.IdempotencyKey). A redelivery after a crash produces a record with
// the same key to the same partition, so a consumer (or a compacted topic)
// keeps one finding once; medic's own delivery record already skips most
// redeliveries before they reach Kafka.
//
// The producer waits for all in-sync replicas (acks=all) and is idempotent,
// so a retry inside the client does not write a record twice. SASL PLAIN
// and SCRAM-SHA-256/512 (password from a Secret) and TLS (with a CA, and a
// client certificate for mTLS) are supported.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/internal/secretparam"
)

// Type is the sink type name used in configuration.
const Type = "kafka"

// Record headers medic sets.
const (
	HeaderFindingID   = "medic-finding-id"
	HeaderSink        = "medic-sink"
	HeaderContentType = "content-type"
)

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Params are the parameters of the kafka sink.
type Params struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string `yaml:"brokers"`
	// Topic receives the findings.
	Topic string `yaml:"topic"`
	// ClientID names medic to the brokers (quotas, logs).
	ClientID string `yaml:"client_id"`

	// SASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 ("": none).
	SASLMechanism string `yaml:"sasl_mechanism"`
	Username      string `yaml:"username"`
	// Password is the SASL password (a secret).
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`

	// TLS connects over TLS; CAFile replaces the system roots, CertFile and
	// KeyFile present a client certificate.
	TLS                bool   `yaml:"tls"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`

	// Timeout bounds one produce, retries inside the client included;
	// past it the delivery fails and medic's consumer retries it later.
	Timeout time.Duration `yaml:"timeout"`

	// MaxMessageBytes is the largest record batch produced, a finding and
	// its key and headers together: at most the topic's max.message.bytes
	// (the broker's message.max.bytes, 1048588 by default). A finding that
	// encodes larger has its evidence trimmed to fit, with a note saying
	// so, rather than fail every delivery and end in the dead-letter stream.
	MaxMessageBytes int `yaml:"max_message_bytes"`
}

// Kafka's own bounds on a record batch (the broker refuses a message.max.bytes
// outside them), and the room a record's key, headers and the batch's
// framing take beside the finding.
const (
	minMessageBytes = 64 << 10
	maxMessageBytes = 100 << 20
	recordRoom      = 1 << 10
)

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params {
	return &Params{ClientID: "medic", Timeout: 15 * time.Second, MaxMessageBytes: 1_000_000}
}

func (p *Params) password() secretparam.Param {
	return secretparam.Param{Key: "password", Inline: p.Password, File: p.PasswordFile, Env: p.PasswordEnv}
}

// Validate checks the parameters after decoding.
func (p *Params) Validate() error {
	if len(p.Brokers) == 0 {
		return errors.New("brokers: required, host:port of at least one broker")
	}
	for i, b := range p.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return fmt.Errorf("brokers[%d]: %q is not host:port", i, b)
		}
	}
	if !validTopic(p.Topic) {
		return fmt.Errorf("topic: %q is not a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)", p.Topic)
	}
	switch p.SASLMechanism {
	case "":
		if p.Username != "" || p.password().Set() {
			return errors.New("username and password: set sasl_mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) too")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if p.Username == "" {
			return errors.New("username: required with sasl_mechanism")
		}
		if err := p.password().Validate(true); err != nil {
			return err
		}
	default:
		return fmt.Errorf("sasl_mechanism: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", p.SASLMechanism)
	}
	switch {
	case !p.TLS && (p.CAFile != "" || p.CertFile != "" || p.KeyFile != "" || p.ServerName != "" || p.InsecureSkipVerify):
		return errors.New("ca_file, cert_file, key_file, server_name, insecure_skip_verify: set tls: true too")
	case (p.CertFile == "") != (p.KeyFile == ""):
		return errors.New("cert_file and key_file: set both or neither")
	case p.Timeout <= 0:
		return errors.New("timeout: must be positive")
	case p.ClientID == "":
		return errors.New("client_id: must not be empty")
	case p.MaxMessageBytes < minMessageBytes || p.MaxMessageBytes > maxMessageBytes:
		return fmt.Errorf("max_message_bytes: %d is not between %d and %d (the topic's max.message.bytes, 1048588 by default)",
			p.MaxMessageBytes, minMessageBytes, maxMessageBytes)
	}
	return nil
}

func validTopic(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Register adds the kafka sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Produces each finding as JSON to a Kafka topic (acks=all, idempotent producer), keyed by medic's idempotency key; SASL PLAIN/SCRAM and TLS.",
		Defaults, New)
}

// Sink produces findings. It is safe for concurrent use.
type Sink struct {
	name   string
	p      Params
	client *kgo.Client
	logger *slog.Logger
}

// Deps is what a kafka sink uses of sinks.Deps.
type Deps interface {
	Logger() *slog.Logger
}

// New starts a Kafka sink. It does not connect: the client connects on the
// first produce, so medic starts while the brokers are away and the
// deliveries wait on the bus.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	logger := deps.Logger().With("sink", name)
	opts := []kgo.Opt{
		kgo.SeedBrokers(p.Brokers...),
		kgo.ClientID(p.ClientID),
		kgo.DefaultProduceTopic(p.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProduceRequestTimeout(p.Timeout),
		kgo.RecordDeliveryTimeout(p.Timeout),
		// One record per Send, produced synchronously: no batching delay.
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(int32(p.MaxMessageBytes)),
	}
	if p.SASLMechanism != "" {
		pw, err := p.password().Read()
		if err != nil {
			return nil, err
		}
		var m sasl.Mechanism
		switch p.SASLMechanism {
		case SASLPlain:
			m = plain.Auth{User: p.Username, Pass: pw}.AsMechanism()
		case SASLScramSHA256:
			m = scram.Auth{User: p.Username, Pass: pw}.AsSha256Mechanism()
		case SASLScramSHA512:
			m = scram.Auth{User: p.Username, Pass: pw}.AsSha512Mechanism()
		}
		opts = append(opts, kgo.SASL(m))
		if !p.TLS {
			logger.Warn("kafka sink sends its SASL credentials without TLS", "mechanism", p.SASLMechanism)
		}
	}
	if p.TLS {
		cfg, err := tlsConfig(&p)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &Sink{name: name, p: p, client: client, logger: logger}, nil
}

func tlsConfig(p *Params) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: p.ServerName, InsecureSkipVerify: p.InsecureSkipVerify}
	if p.CAFile != "" {
		pem, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", p.CAFile)
		}
		cfg.RootCAs = pool
	}
	if p.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file and key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Close flushes nothing (every Send waited for its record) and closes the
// connections.
func (s *Sink) Close() error {
	s.client.Close()
	return nil
}

// Send produces f.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("kafka sink: nil finding")
	}
	encoded, err := event.MarshalFinding(f)
	if err != nil {
		return fmt.Errorf("encode finding %s: %w", f.ID, err)
	}
	return s.SendEncoded(ctx, f.ID, encoded)
}

// SendEncoded produces the finding as medic stored it on the bus, trimmed
// first when it is larger than a record may be (max_message_bytes).
func (s *Sink) SendEncoded(ctx context.Context, id string, encoded []byte) error {
	if len(encoded) > s.p.MaxMessageBytes-recordRoom {
		fitted, err := s.fit(id, encoded)
		if err != nil {
			return err
		}
		encoded = fitted
	}
	ctx, cancel := context.WithTimeout(ctx, s.p.Timeout)
	defer cancel()
	rec := &kgo.Record{
		Key:   []byte(sinks.IdempotencyKey(s.name, id)),
		Value: encoded,
		Headers: []kgo.RecordHeader{
			{Key: HeaderFindingID, Value: []byte(id)},
			{Key: HeaderSink, Value: []byte(s.name)},
			{Key: HeaderContentType, Value: []byte("application/json")},
		},
	}
	if err := s.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("produce finding %s to topic %s: %w", id, s.p.Topic, err)
	}
	return nil
}

var _ sinks.EncodedSender = (*Sink)(nil)

// fit trims the evidence of an encoded finding too large for a record
// (event.Finding.TrimToFitFor): the broker would refuse it on every try, and
// a finding with its log tails cut still tells the reader what happened.
func (s *Sink) fit(id string, encoded []byte) ([]byte, error) {
	var f event.Finding
	if err := event.UnmarshalFinding(encoded, &f); err != nil {
		return nil, fmt.Errorf("decode finding %s to trim it: %w", id, err)
	}
	limit := s.p.MaxMessageBytes - recordRoom
	trimmed, err := f.TrimToFitFor(limit, event.TrimTarget{
		Limit:    fmt.Sprintf("a Kafka record (max_message_bytes %d)", s.p.MaxMessageBytes),
		Receiver: "the Kafka topic " + s.p.Topic,
		Fix:      "Raise max_message_bytes on the sink (and max.message.bytes on the topic) to keep findings whole.",
	})
	if err != nil {
		return nil, fmt.Errorf("fit finding %s into a Kafka record of %d bytes: %w", id, s.p.MaxMessageBytes, err)
	}
	out, err := event.MarshalFinding(&f)
	if err != nil {
		return nil, fmt.Errorf("encode trimmed finding %s: %w", id, err)
	}
	s.logger.Warn("finding larger than a Kafka record; its evidence was trimmed to fit",
		"finding", id, "bytes", len(encoded), "trimmed_bytes", trimmed, "max_message_bytes", s.p.MaxMessageBytes)
	return out, nil
}
