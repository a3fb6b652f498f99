// Package email is the `email` sink: each finding is mailed through an SMTP
// server as a multipart/alternative message, plain text and HTML, both
// rendered from the finding.
//
// The connection is encrypted: implicit TLS (port 465, implicit_tls: true)
// or STARTTLS (port 587), which is required unless insecure_skip_starttls
// says the server is a trusted relay that does not offer it. The password
// is sent with AUTH PLAIN, or AUTH LOGIN where the server offers only that
// (Office 365, older Exchange).
//
// SMTP has no idempotency key, so the Message-ID is derived from medic's
// (sinks.IdempotencyKey): a redelivered finding is the very same message,
// which mail systems and clients fold into one, and the firing and resolved
// messages of an alert share a References header so clients thread them.
package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/internal/incident"
	"github.com/medichq/medic/sinks/internal/secretparam"
)

// Type is the sink type name used in configuration.
const Type = "email"

// Params are the parameters of the email sink.
type Params struct {
	// Host and Port are the SMTP server's (submission: 587 with STARTTLS,
	// 465 with implicit TLS).
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// ImplicitTLS speaks TLS from the first byte (port 465, "SMTPS").
	ImplicitTLS bool `yaml:"implicit_tls"`
	// InsecureSkipSTARTTLS sends in the clear to a server that does not
	// offer STARTTLS (a relay inside the cluster). Without it such a server
	// is refused.
	InsecureSkipSTARTTLS bool `yaml:"insecure_skip_starttls"`
	// CAFile is a PEM bundle to verify the server's certificate with,
	// instead of the system's roots (a private relay).
	CAFile string `yaml:"ca_file"`
	// ServerName is the name the server's certificate must carry, when it
	// is not Host.
	ServerName string `yaml:"server_name"`
	// Username and Password authenticate (AUTH PLAIN or LOGIN); without a
	// username no AUTH is sent. Password is a secret: prefer
	// password_file or password_env.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// From is the sender ("medic <medic@example.com>"); To the recipients.
	From string   `yaml:"from"`
	To   []string `yaml:"to"`
	// SubjectPrefix starts every subject.
	SubjectPrefix string `yaml:"subject_prefix"`
	// Timeout bounds one delivery: connecting, the SMTP dialogue, the data.
	Timeout time.Duration `yaml:"timeout"`
}

func (p *Params) password() secretparam.Param {
	return secretparam.Param{Key: "password", Inline: p.Password, File: p.PasswordFile, Env: p.PasswordEnv}
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params {
	return &Params{Port: 587, SubjectPrefix: "[medic]", Timeout: 30 * time.Second}
}

// Validate checks the parameters after decoding.
func (p *Params) Validate() error {
	switch {
	case p.Host == "" || strings.ContainsAny(p.Host, " /:"):
		return errors.New("host: required, a host name or address (the port goes in port)")
	case p.Port < 1 || p.Port > 65535:
		return errors.New("port: must be 1-65535")
	case p.ImplicitTLS && p.InsecureSkipSTARTTLS:
		return errors.New("insecure_skip_starttls: means nothing with implicit_tls")
	case p.Timeout <= 0:
		return errors.New("timeout: must be positive")
	}
	if err := p.password().Validate(false); err != nil {
		return err
	}
	if p.password().Set() && p.Username == "" {
		return errors.New("username: required with a password")
	}
	if _, err := mail.ParseAddress(p.From); err != nil {
		return fmt.Errorf("from: not an address: %w", err)
	}
	if len(p.To) == 0 {
		return errors.New("to: at least one recipient")
	}
	for i, to := range p.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return fmt.Errorf("to[%d]: not an address: %w", i, err)
		}
	}
	if strings.ContainsAny(p.SubjectPrefix, "\r\n") {
		return errors.New("subject_prefix: must be one line")
	}
	return nil
}

// Register adds the email sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Mails each finding (text and HTML) through an SMTP server with implicit TLS or STARTTLS and AUTH PLAIN/LOGIN; the Message-ID is derived from the idempotency key.",
		Defaults, New)
}

// Sink mails findings. It is safe for concurrent use: each delivery has
// its own connection (findings are rare enough; a pool would have to
// notice servers dropping idle connections).
type Sink struct {
	name     string
	p        Params
	password string
	tls      *tls.Config
	from     *mail.Address
	to       []*mail.Address
	compose  Composer
	logger   *slog.Logger
}

// Deps is what a email sink uses of sinks.Deps.
type Deps interface {
	Logger() *slog.Logger
	ClusterName() string
	FindingURL(id string) string
}

// New starts an email sink, reading the password and the CA file now.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	password, err := p.password().Read()
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{ServerName: p.Host, MinVersion: tls.VersionTLS12}
	if p.ServerName != "" {
		tc.ServerName = p.ServerName
	}
	if p.CAFile != "" {
		pem, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", p.CAFile)
		}
	}
	from, _ := mail.ParseAddress(p.From)
	to := make([]*mail.Address, len(p.To))
	for i, a := range p.To {
		to[i], _ = mail.ParseAddress(a)
	}
	return &Sink{
		name: name, p: p, password: password, tls: tc, from: from, to: to, logger: incident.Logger(name, deps),
		compose: Composer{Sink: name, From: from, To: to, SubjectPrefix: p.SubjectPrefix, Cluster: deps.ClusterName(), PageURL: deps.FindingURL},
	}, nil
}

// Close releases nothing.
func (s *Sink) Close() error { return nil }

// Send mails f.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("email sink: nil finding")
	}
	msg, err := s.compose.Message(f)
	if err != nil {
		return fmt.Errorf("compose the mail for finding %s: %w", f.ID, err)
	}
	for {
		err := s.deliver(ctx, msg)
		if err == nil {
			return nil
		}
		// Too large: the server's advertised SIZE says by how much; a 552
		// from a server that advertised none, only that it was (unless its
		// enhanced code, 5.2.x, says the mailbox is full instead).
		want := 0
		var big *tooLargeError
		var se *smtp.SMTPError
		switch {
		case errors.As(err, &big):
			want = big.limit
		case errors.As(err, &se) && se.Code == 552 && se.EnhancedCode[1] != 2:
			want = len(msg) / 2
		}
		if want < minFitMail {
			return fmt.Errorf("mail finding %s: %w", f.ID, err)
		}
		refused := len(msg)
		if msg, err = s.fit(f, want, refused); err != nil {
			return fmt.Errorf("mail finding %s: the server refuses %d bytes as too large, and trimming failed: %w", f.ID, refused, err)
		}
		s.logger.Warn("the mail server refuses the finding as too large; sending it with its evidence trimmed",
			"finding", f.ID, "refused_bytes", refused, "bytes", len(msg))
	}
}

// minFitMail is the smallest mail Send trims a finding to when the server
// refuses it as too large: below it the server's limit is not about
// evidence.
const minFitMail = 16 << 10

// tooLargeError is a mail larger than the SIZE the server advertised
// (RFC 1870), found before sending it.
type tooLargeError struct{ size, limit int }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("the mail is %d bytes, over the %d the server accepts (SIZE)", e.size, e.limit)
}

// fit composes the mail of a copy of f with its evidence trimmed
// (event.Finding.TrimToFitFor) until the mail is at most want bytes; refused
// is the size the server refused. A mail carries the finding twice (text
// and HTML) in an encoding that grows it, so the finding's limit starts at
// its share of the target and shrinks until the composed mail fits. f
// itself stays whole.
func (s *Sink) fit(f *event.Finding, want, refused int) ([]byte, error) {
	whole, err := event.MarshalFinding(f)
	if err != nil {
		return nil, fmt.Errorf("encode finding %s: %w", f.ID, err)
	}
	limit := len(whole) * want / refused
	to := event.TrimTarget{
		Limit:    fmt.Sprintf("the mail server's size limit (%d bytes)", want),
		Receiver: "the mail server",
		Fix:      "Raise the server's message size limit to keep findings whole.",
	}
	for range 8 {
		var c event.Finding
		if err := event.UnmarshalFinding(whole, &c); err != nil {
			return nil, fmt.Errorf("copy finding %s: %w", f.ID, err)
		}
		if _, err := c.TrimToFitFor(limit, to); err != nil {
			return nil, err
		}
		msg, err := s.compose.Message(&c)
		if err != nil {
			return nil, fmt.Errorf("compose the trimmed mail: %w", err)
		}
		if len(msg) <= want {
			return msg, nil
		}
		limit = limit * want / len(msg) * 9 / 10
	}
	return nil, fmt.Errorf("the mail of finding %s does not fit in %d bytes", f.ID, want)
}

// deliver runs one SMTP transaction. Errors carry the server's reply
// (SMTP code and text), never the password.
func (s *Sink) deliver(ctx context.Context, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.p.Timeout)
	defer cancel()
	addr := net.JoinHostPort(s.p.Host, strconv.Itoa(s.p.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	// The SMTP client has no context: a cancelled or expired context
	// closes the connection under it.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	var c *smtp.Client
	switch {
	case s.p.ImplicitTLS:
		c = smtp.NewClient(tls.Client(conn, s.tls))
	case s.p.InsecureSkipSTARTTLS:
		c = smtp.NewClient(conn)
		s.logger.Debug("sending without TLS (insecure_skip_starttls)", "server", addr)
	default:
		// Fails when the server does not offer STARTTLS: the password and
		// the finding are not sent in the clear by accident.
		if c, err = smtp.NewClientStartTLS(conn, s.tls); err != nil {
			_ = conn.Close()
			return fmt.Errorf("STARTTLS with %s (set insecure_skip_starttls only for a relay that cannot do it): %w", addr, err)
		}
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = s.p.Timeout, s.p.Timeout
	// Hello (again, after STARTTLS) surfaces what the client's lazy
	// greeting would otherwise hide: a failed TLS handshake, a refused
	// certificate, a server that is not speaking SMTP.
	if err := c.Hello(helloName()); err != nil {
		return fmt.Errorf("greet %s: %w", addr, err)
	}
	if s.p.Username != "" {
		var a sasl.Client
		switch {
		case c.SupportsAuth(sasl.Plain):
			a = sasl.NewPlainClient("", s.p.Username, s.password)
		case c.SupportsAuth(sasl.Login):
			a = sasl.NewLoginClient(s.p.Username, s.password)
		default:
			return fmt.Errorf("authenticate with %s: it offers neither AUTH PLAIN nor AUTH LOGIN", addr)
		}
		if err := c.Auth(a); err != nil {
			return fmt.Errorf("authenticate with %s as %s: %w", addr, s.p.Username, err)
		}
	}
	if ok, size := c.Extension("SIZE"); ok {
		if limit, err := strconv.Atoi(size); err == nil && limit > 0 && len(msg) > limit {
			return &tooLargeError{size: len(msg), limit: limit}
		}
	}
	to := make([]string, len(s.to))
	for i, a := range s.to {
		to[i] = a.Address
	}
	if err := c.SendMail(s.from.Address, to, bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("send through %s: %w", addr, err)
	}
	if err := c.Quit(); err != nil {
		// The server took the message (the DATA reply was positive); a
		// failed QUIT does not make it a failed delivery.
		s.logger.Debug("QUIT after a delivered mail failed", "server", addr, "err", err)
	}
	return nil
}

// helloName is the name medic greets the server with: its host name (a
// pod's name), as servers expect one, or localhost.
func helloName() string {
	if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \r\n") {
		return h
	}
	return "localhost"
}
