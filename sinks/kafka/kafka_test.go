package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/vendortest"
)

// The tests run against kfake, an in-process cluster that speaks the real
// Kafka wire protocol (produce, fetch, SASL, TLS). A real broker needs a
// JVM, which the machines medic is tested on lack.

func cluster(t *testing.T, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, "medic-findings")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// consume reads the topic from the start until want records arrived or 20s
// passed.
func consume(t *testing.T, brokers []string, want int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("medic-findings"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

func newSink(t *testing.T, p Params) *Sink {
	t.Helper()
	s, err := New(t.Context(), "bus-archive", p, sinks.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Every finding is produced once, keyed by its idempotency key, its value
// the finding as medic encodes it; sent again (a redelivery), it is
// produced with the same key to the same partition, where a consumer
// deduplicating by key counts it once.
func TestProducesFindingsKeyedByIdempotencyKey(t *testing.T) {
	t.Parallel()
	brokers := cluster(t)
	p := *Defaults()
	p.Brokers, p.Topic = brokers, "medic-findings"
	s := newSink(t, p)
	fs := vendortest.Findings()
	for _, f := range fs {
		if err := s.Send(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	again := fs["alert_firing"]
	if err := s.Send(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	recs := consume(t, brokers, len(fs)+1)
	if len(recs) != len(fs)+1 {
		t.Fatalf("consumed %d records, want %d", len(recs), len(fs)+1)
	}
	byKey := map[string]int{}
	partitionOf := map[string]int32{}
	for _, r := range recs {
		var f event.Finding
		if err := event.UnmarshalFinding(r.Value, &f); err != nil {
			t.Fatalf("value is not an encoded finding: %v", err)
		}
		key := string(r.Key)
		if key != sinks.IdempotencyKey("bus-archive", f.ID) || header(r, HeaderFindingID) != f.ID ||
			header(r, HeaderSink) != "bus-archive" || header(r, HeaderContentType) != "application/json" {
			t.Errorf("record key %q headers %v for finding %s", key, r.Headers, f.ID)
		}
		if p, ok := partitionOf[key]; ok && p != r.Partition {
			t.Errorf("finding %s in partitions %d and %d", f.ID, p, r.Partition)
		}
		partitionOf[key] = r.Partition
		byKey[key]++
	}
	lost, dups := 0, 0
	for _, f := range fs {
		if byKey[sinks.IdempotencyKey("bus-archive", f.ID)] == 0 {
			lost++
		}
	}
	for k, n := range byKey {
		if k != sinks.IdempotencyKey("bus-archive", again.ID) {
			dups += n - 1
		}
	}
	t.Logf("produced %d findings and one redelivery: consumed %d records, %d keys; lost %d, duplicates %d (besides the redelivery, same key)", len(fs), len(recs), len(byKey), lost, dups)
	if lost != 0 || dups != 0 || len(byKey) != len(fs) {
		t.Fatalf("by key %v: lost %d, duplicates %d", byKey, lost, dups)
	}
}

// A finding larger than a record may be (a 5,000-line log tail with long
// lines) is produced with its evidence trimmed to fit, saying so, instead of
// being refused by the broker on every try until it is dead-lettered. The
// log's last lines, where the crash is, and what was redacted stay.
func TestFindingLargerThanARecordIsTrimmedToFit(t *testing.T) {
	t.Parallel()
	big := vendortest.WithCrashLog(vendortest.Alert(event.StatusFiring), 5000)
	big.Add(event.Enrichment{Title: "Redacted", Source: event.RedactionSource, Blocks: []event.Block{event.MarkdownBlock("🔒 1 value redacted (1 env value) before this finding left medic.")}})
	whole, err := event.MarshalFinding(big)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		broker map[string]string // the broker's configs
		max    int               // max_message_bytes; 0: the default
	}{
		{"default limits", nil, 0},
		{"a topic of 200 KB records", map[string]string{"message.max.bytes": "200000"}, 200_000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			brokers := cluster(t, kfake.BrokerConfigs(tt.broker))
			p := *Defaults()
			p.Brokers, p.Topic = brokers, "medic-findings"
			if tt.max > 0 {
				p.MaxMessageBytes = tt.max
			}
			if len(whole) <= p.MaxMessageBytes {
				t.Fatalf("the finding encodes in %d bytes, under the limit %d: the test proves nothing", len(whole), p.MaxMessageBytes)
			}
			if err := newSink(t, p).Send(context.Background(), big); err != nil {
				t.Fatalf("send: %v", err)
			}
			recs := consume(t, brokers, 1)
			if len(recs) != 1 {
				t.Fatalf("consumed %d records, want 1", len(recs))
			}
			if n := len(recs[0].Value); n > p.MaxMessageBytes {
				t.Errorf("record value of %d bytes, limit %d", n, p.MaxMessageBytes)
			}
			var got event.Finding
			if err := event.UnmarshalFinding(recs[0].Value, &got); err != nil {
				t.Fatal(err)
			}
			all := string(recs[0].Value)
			for _, want := range []string{
				"nil pointer dereference", // the log's last line
				fmt.Sprintf("to fit a Kafka record (max_message_bytes %d)", p.MaxMessageBytes), // the marker
				"Raise max_message_bytes on the sink",                                          // the note
				"1 value redacted",
			} {
				if !strings.Contains(all, want) {
					t.Errorf("the produced finding lacks %q", want)
				}
			}
			if got.ID != big.ID || got.Title != big.Title {
				t.Errorf("produced finding %s %q, want %s %q", got.ID, got.Title, big.ID, big.Title)
			}
		})
	}
}

func TestSASL(t *testing.T) {
	t.Parallel()
	for _, mech := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			brokers := cluster(t, kfake.EnableSASL(), kfake.Superuser(mech, "medic", "pw-s3cret"))
			file := filepath.Join(t.TempDir(), "password")
			if err := os.WriteFile(file, []byte("pw-s3cret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			p := *Defaults()
			p.Brokers, p.Topic, p.SASLMechanism, p.Username, p.PasswordFile = brokers, "medic-findings", mech, "medic", file
			if err := newSink(t, p).Send(context.Background(), vendortest.Alert(event.StatusFiring)); err != nil {
				t.Fatalf("authenticated produce: %v", err)
			}
			p.PasswordFile, p.Password, p.Timeout = "", "wrong", 3*time.Second
			err := newSink(t, p).Send(context.Background(), vendortest.Alert(event.StatusFiring))
			if err == nil || strings.Contains(err.Error(), "wrong") {
				t.Fatalf("wrong password: %v", err)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caFile, serverCfg := selfSigned(t, dir)
	brokers := cluster(t, kfake.TLS(serverCfg))
	p := *Defaults()
	p.Brokers, p.Topic, p.TLS, p.CAFile, p.ServerName = brokers, "medic-findings", true, caFile, "kafka.test"
	if err := newSink(t, p).Send(context.Background(), vendortest.Alert(event.StatusFiring)); err != nil {
		t.Fatalf("produce over TLS: %v", err)
	}
	p.CAFile, p.Timeout = "", 3*time.Second // the system roots do not know the test CA
	if err := newSink(t, p).Send(context.Background(), vendortest.Alert(event.StatusFiring)); err == nil {
		t.Fatal("produced to a broker whose certificate is not trusted")
	}
}

// A broker that is not there fails the delivery within the timeout, for
// medic's consumer to retry.
func TestBrokerDownFailsTheDelivery(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	p := *Defaults()
	p.Brokers, p.Topic, p.Timeout = []string{addr}, "medic-findings", 2*time.Second
	if err := newSink(t, p).Send(context.Background(), vendortest.Alert(event.StatusFiring)); err == nil || !strings.Contains(err.Error(), "produce finding") {
		t.Fatalf("no broker: %v", err)
	}
}

func TestParams(t *testing.T) {
	t.Parallel()
	ok := func(p *Params) { p.Brokers, p.Topic = []string{"kafka-0.kafka:9092"}, "medic.findings" }
	testkit.CheckParams(t, Defaults, (*Params).Validate, []testkit.ParamCase[Params]{
		{Name: "no brokers", Mut: func(p *Params) { p.Topic = "t" }, Want: "brokers: required"},
		{Name: "bad broker", Mut: func(p *Params) { ok(p); p.Brokers = []string{"kafka"} }, Want: "brokers[0]"},
		{Name: "bad topic", Mut: func(p *Params) { ok(p); p.Topic = "a topic" }, Want: "topic"},
		{Name: "mechanism", Mut: func(p *Params) { ok(p); p.SASLMechanism = "GSSAPI" }, Want: "sasl_mechanism"},
		{Name: "no user", Mut: func(p *Params) { ok(p); p.SASLMechanism, p.PasswordEnv = SASLPlain, "PW" }, Want: "username: required"},
		{Name: "no password", Mut: func(p *Params) { ok(p); p.SASLMechanism, p.Username = SASLScramSHA512, "u" }, Want: "password: required"},
		{Name: "no mechanism", Mut: func(p *Params) { ok(p); p.Username, p.Password = "u", "s3cret" }, Want: "set sasl_mechanism"},
		{Name: "tls options", Mut: func(p *Params) { ok(p); p.CAFile = "/ca.pem" }, Want: "tls: true"},
		{Name: "half mtls", Mut: func(p *Params) { ok(p); p.TLS, p.CertFile = true, "/c.pem" }, Want: "cert_file and key_file"},
		{Name: "tiny records", Mut: func(p *Params) { ok(p); p.MaxMessageBytes = 1000 }, Want: "max_message_bytes"},
		{Name: "ok", Mut: ok, Want: ""},
		{Name: "ok sasl tls", Mut: func(p *Params) {
			ok(p)
			p.SASLMechanism, p.Username, p.PasswordFile, p.TLS = SASLScramSHA256, "medic", "/var/run/secrets/medic/kafka/password", true
		}, Want: ""},
	}, "s3cret")
}

// selfSigned writes a CA certificate for kafka.test and returns its path
// and the broker's TLS config.
func selfSigned(t *testing.T, dir string) (string, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kafka.test"}, DNSNames: []string{"kafka.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
