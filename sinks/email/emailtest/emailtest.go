// Package emailtest is a real SMTP server for tests (emersion/go-smtp),
// served on loopback with a test certificate: implicit TLS, STARTTLS or
// none, AUTH PLAIN and/or LOGIN with one account, refusals on demand (a
// 451 or 554 to DATA), and every accepted message kept with its envelope,
// so tests parse what a mail server really received.
package emailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/medichq/medic/sinks/internal/incident/incidenttest"
)

// Mode is how the server encrypts.
type Mode int

// Modes.
const (
	STARTTLS Mode = iota
	ImplicitTLS
	Plain // offers no STARTTLS
)

// Options configure a server.
type Options struct {
	Mode Mode
	// Mechanisms offered (sasl.Plain, sasl.Login); none: no AUTH.
	Mechanisms         []string
	Username, Password string
	// MaxMessageBytes is the server's SIZE limit: a larger mail is refused
	// with 552 5.3.4, as Postfix's message_size_limit does. 0: none.
	MaxMessageBytes int64
}

// Message is one accepted message.
type Message struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool
	AuthUser string
}

// Parts parses a multipart message as a mail client does and returns its
// header and its parts' decoded bodies by media type ("text/plain").
func Parts(t testing.TB, raw []byte) (mail.Header, map[string]string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("an unparsable message: %v", err)
	}
	mt, ps, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, ps["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return msg.Header, parts
		}
		if err != nil {
			t.Fatal(err)
		}
		// multipart.Reader decodes quoted-printable itself (and drops the
		// Content-Transfer-Encoding header).
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts[ct] = string(b)
	}
}

// Server is a running SMTP server.
type Server struct {
	Host   string
	Port   int
	CAFile string // PEM of the certificate the server presents
	opts   Options
	srv    *smtp.Server
	// Faults: Fail queues SMTP codes DATA answers (451: try again later;
	// 554: refused); Refused counts them.
	incidenttest.Faults

	mu        sync.Mutex
	messages  []Message
	authFails int
}

// Start serves on 127.0.0.1; the server stops when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	cert, caPEM := certificate(t)
	s := &Server{opts: opts, CAFile: filepath.Join(t.TempDir(), "ca.pem")}
	if err := os.WriteFile(s.CAFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{s: s, c: c}, nil }))
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.srv.MaxMessageBytes = opts.MaxMessageBytes
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch opts.Mode {
	case STARTTLS:
		s.srv.TLSConfig = tc
	case ImplicitTLS:
		l = tls.NewListener(l, tc)
	case Plain:
		s.srv.AllowInsecureAuth = true
	}
	addr := l.Addr().(*net.TCPAddr)
	s.Host, s.Port = "127.0.0.1", addr.Port
	go func() { _ = s.srv.Serve(l) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Messages returns the accepted messages, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// AuthFailures counts failed authentications.
func (s *Server) AuthFailures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authFails
}

type session struct {
	s      *Server
	c      *smtp.Conn
	user   string
	authed bool
	from   string
	to     []string
}

func (se *session) AuthMechanisms() []string { return se.s.opts.Mechanisms }

func (se *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != se.s.opts.Username || pass != se.s.opts.Password {
			se.s.mu.Lock()
			se.s.authFails++
			se.s.mu.Unlock()
			return smtp.ErrAuthFailed
		}
		se.user, se.authed = user, true
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if len(se.s.opts.Mechanisms) > 0 && !se.authed {
		return smtp.ErrAuthRequired
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := se.c.TLSConnectionState()
	s := se.s
	if code, ok := s.Take(); ok {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 3, 0}, Message: "refused on demand by the test"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, Message{From: se.from, To: slices.Clone(se.to), Data: data, TLS: isTLS, AuthUser: se.user})
	return nil
}

func (se *session) Reset()        { se.from, se.to = "", nil }
func (se *session) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN (go-sasl has only the
// client): the username, possibly as the initial response, then the
// password.
type loginServer struct {
	check func(user, pass string) error
	user  string
	step  int
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		if resp == nil {
			l.step = 1
			return []byte("Username:"), false, nil
		}
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 1:
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// certificate makes a self-signed certificate for 127.0.0.1 and localhost.
func certificate(t testing.TB) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "medic test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
