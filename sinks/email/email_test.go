package email

import (
	"context"
	"mime"
	"net/mail"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/email/emailtest"
	"github.com/medichq/medic/sinks/internal/incident/incidenttest"
	"github.com/medichq/medic/sinks/vendortest"
)

const password = "sm7p-pa55word-s3cret"

func params(srv *emailtest.Server) Params {
	p := *Defaults()
	p.Host, p.Port, p.CAFile = srv.Host, srv.Port, srv.CAFile
	p.ServerName = "localhost"
	p.Username, p.Password = "medic", password
	p.From = "medic <medic@example.com>"
	p.To = []string{"oncall@example.com", "Zoë Ops <zoe@example.com>"}
	p.Timeout = 10 * time.Second
	return p
}

func composer() Composer {
	from, _ := mail.ParseAddress("medic <medic@example.com>")
	to, _ := mail.ParseAddress("oncall@example.com")
	return Composer{Sink: "mail", From: from, To: []*mail.Address{to}, SubjectPrefix: "[medic]", Cluster: "prod-eu", PageURL: incidenttest.PageURL}
}

// parts returns a message's header and its decoded text and HTML parts.
func parts(t *testing.T, raw []byte) (mail.Header, string, string) {
	t.Helper()
	h, got := emailtest.Parts(t, raw)
	if len(got) != 2 || h.Get("Content-Type") == "" || !strings.HasPrefix(h.Get("Content-Type"), "multipart/alternative;") {
		t.Fatalf("%s with parts %v, want text/plain and text/html", h.Get("Content-Type"), got)
	}
	return h, got["text/plain"], got["text/html"]
}

func TestMessageGolden(t *testing.T) {
	t.Parallel()
	c := composer()
	for name, f := range map[string]*event.Finding{
		"firing":     incidenttest.Alert(event.StatusFiring),
		"resolved":   incidenttest.Alert(event.StatusResolved),
		"kube_event": incidenttest.KubeEvent(),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw, err := c.Message(f)
			if err != nil {
				t.Fatal(err)
			}
			testkit.Golden(t, filepath.Join("testdata", name+".golden.eml"), raw)
			h, text, html := parts(t, raw)
			dec := new(mime.WordDecoder)
			subj, err := dec.DecodeHeader(h.Get("Subject"))
			if err != nil || subj != c.Subject(f) {
				t.Errorf("Subject %q (%v), want %q", subj, err, c.Subject(f))
			}
			if h.Get("Message-ID") != "<"+sinks.IdempotencyKey("mail", f.ID)+"@example.com>" {
				t.Errorf("Message-ID %q", h.Get("Message-ID"))
			}
			if !strings.Contains(text, f.Title) || !strings.Contains(html, "<h2") {
				t.Errorf("parts lack the title:\n%s\n%s", text, html)
			}
			if strings.Contains(html, "<CrashLoopBackOff>") {
				t.Error("text from the cluster is not escaped in the HTML part")
			}
		})
	}
	// Nothing from the finding adds a header line.
	odd := incidenttest.KubeEvent()
	odd.ID, odd.Title = "id\r\nBcc: evil@example.com", "title\r\nBcc: evil@example.com"
	raw, err := c.Message(odd)
	if err != nil {
		t.Fatal(err)
	}
	if h, _, _ := parts(t, raw); h.Get("Bcc") != "" || len(h["X-Medic-Finding-Id"]) != 1 {
		t.Errorf("a finding injected a header: %v", h)
	}
	// The firing and resolved messages of one alert share the thread root.
	fr, _ := c.Message(incidenttest.Alert(event.StatusFiring))
	rs, _ := c.Message(incidenttest.Alert(event.StatusResolved))
	hf, _, _ := parts(t, fr)
	hr, _, _ := parts(t, rs)
	if hf.Get("References") == "" || hf.Get("References") != hr.Get("References") || hf.Get("Message-ID") == hr.Get("Message-ID") {
		t.Errorf("threading: firing %q %q, resolved %q %q", hf.Get("Message-ID"), hf.Get("References"), hr.Get("Message-ID"), hr.Get("References"))
	}
}

// Every way of reaching a server delivers the message, encrypted unless
// insecure_skip_starttls says otherwise, authenticated as configured.
func TestDeliveryThroughARealSMTPServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		opts    emailtest.Options
		mut     func(*Params)
		wantTLS bool
	}{
		{"STARTTLS with AUTH PLAIN", emailtest.Options{Mode: emailtest.STARTTLS, Mechanisms: []string{sasl.Plain, sasl.Login}}, nil, true},
		{"implicit TLS with AUTH LOGIN only", emailtest.Options{Mode: emailtest.ImplicitTLS, Mechanisms: []string{sasl.Login}},
			func(p *Params) { p.ImplicitTLS = true }, true},
		{"relay without STARTTLS or AUTH", emailtest.Options{Mode: emailtest.Plain},
			func(p *Params) { p.InsecureSkipSTARTTLS, p.Username, p.Password = true, "", "" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.opts.Username, tc.opts.Password = "medic", password
			srv := emailtest.Start(t, tc.opts)
			p := params(srv)
			if tc.mut != nil {
				tc.mut(&p)
			}
			s, err := New(t.Context(), "mail", p, sinks.Deps{PageURL: incidenttest.PageURL})
			if err != nil {
				t.Fatal(err)
			}
			f := incidenttest.Alert(event.StatusFiring)
			if err := s.Send(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("server accepted %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if m.TLS != tc.wantTLS || m.From != "medic@example.com" || strings.Join(m.To, ",") != "oncall@example.com,zoe@example.com" {
				t.Errorf("envelope %s → %v, TLS %v (want %v)", m.From, m.To, m.TLS, tc.wantTLS)
			}
			if wantUser := p.Username; m.AuthUser != wantUser {
				t.Errorf("authenticated as %q, want %q", m.AuthUser, wantUser)
			}
			h, _, html := parts(t, m.Data)
			if h.Get("Message-ID") != "<"+sinks.IdempotencyKey("mail", f.ID)+"@example.com>" || !strings.Contains(html, "Finding page") {
				t.Errorf("received Message-ID %q; HTML:\n%s", h.Get("Message-ID"), html)
			}
		})
	}
}

// A mail server with a size limit (Postfix's message_size_limit; 552 5.3.4
// over it) gets a finding with megabytes of logs again with its evidence
// trimmed, under its limit, keeping the log's last lines and saying what
// was trimmed, instead of a 552 on every try until it is dead-lettered.
func TestTooLargeForTheServerIsTrimmed(t *testing.T) {
	t.Parallel()
	const limit = 300_000
	srv := emailtest.Start(t, emailtest.Options{Mode: emailtest.STARTTLS, Mechanisms: []string{sasl.Plain},
		Username: "medic", Password: password, MaxMessageBytes: limit})
	send := func(srv *emailtest.Server, f *event.Finding) error {
		t.Helper()
		s, err := New(t.Context(), "mail", params(srv), sinks.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Send(context.Background(), f)
	}
	f := vendortest.WithCrashLog(incidenttest.Alert(event.StatusFiring), 5000)
	before, _ := event.MarshalFinding(f)
	if err := send(srv, f); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d mails accepted, want 1", len(msgs))
	}
	if n := len(msgs[0].Data); n > limit {
		t.Errorf("accepted a mail of %d bytes over the limit %d?", n, limit)
	}
	_, parts := emailtest.Parts(t, msgs[0].Data)
	for _, kind := range []string{"text/plain", "text/html"} {
		for _, want := range []string{vendortest.LastCrashLine, "size limit (300000 bytes)", "message size limit to keep findings whole"} {
			if !strings.Contains(parts[kind], want) {
				t.Errorf("%s lacks %q", kind, want)
			}
		}
	}
	if after, _ := event.MarshalFinding(f); string(after) != string(before) {
		t.Error("Send trimmed the finding it was given, not a copy")
	}

	// A server that advertises no SIZE says 552 only after the DATA: the
	// mail is sent again at half the size, once per refusal.
	quiet := emailtest.Start(t, emailtest.Options{Mode: emailtest.STARTTLS, Mechanisms: []string{sasl.Plain}, Username: "medic", Password: password})
	quiet.Fail(552)
	if err := send(quiet, vendortest.WithCrashLog(incidenttest.Alert(event.StatusFiring), 400)); err != nil {
		t.Fatalf("send after a 552: %v", err)
	}
	got := quiet.Messages()
	if len(got) != 1 {
		t.Fatalf("after one 552: %d mails, want one", len(got))
	}
	if _, parts := emailtest.Parts(t, got[0].Data); !strings.Contains(parts["text/plain"], "message size limit to keep findings whole") {
		t.Error("the mail sent after a 552 is not trimmed")
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	srv := emailtest.Start(t, emailtest.Options{Mode: emailtest.STARTTLS, Mechanisms: []string{sasl.Plain}, Username: "medic", Password: password})
	plain := emailtest.Start(t, emailtest.Options{Mode: emailtest.Plain})
	log := &incidenttest.Log{}
	f := incidenttest.Alert(event.StatusFiring)
	send := func(p Params) error {
		t.Helper()
		s, err := New(t.Context(), "mail", p, sinks.Deps{Log: log.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		return s.Send(context.Background(), f)
	}
	var errs []error
	check := func(what string, err error, want string) {
		t.Helper()
		errs = append(errs, err)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", what, err, want)
		}
	}

	// A server without STARTTLS is refused unless the operator says so.
	check("no STARTTLS", send(params(plain)), "STARTTLS")
	// The server's certificate is verified.
	p := params(srv)
	p.CAFile = ""
	check("unknown CA", send(p), "certificate")
	// A wrong password is the server's 535, without the password.
	p = params(srv)
	p.Password = "wrong-" + password
	check("wrong password", send(p), "535")
	// A temporary refusal is returned for the consumer to retry; the retry
	// delivers.
	srv.Fail(451)
	check("451", send(params(srv)), "451")
	if err := send(params(srv)); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := len(srv.Messages()) + len(plain.Messages()); n != 1 || srv.Refused() != 1 || srv.AuthFailures() != 1 {
		t.Errorf("%d messages, %d refused, %d auth failures; want 1, 1, 1", n, srv.Refused(), srv.AuthFailures())
	}
	log.NoSecret(t, errs, password)
}

func TestParams(t *testing.T) {
	t.Parallel()
	ok := func() *Params {
		p := Defaults()
		p.Host, p.From, p.To = "smtp.example.com", "medic@example.com", []string{"oncall@example.com"}
		return p
	}
	testkit.CheckParams(t, ok, (*Params).Validate, []testkit.ParamCase[Params]{
		{Name: "valid", Mut: func(*Params) {}},
		{Name: "no host", Mut: func(p *Params) { p.Host = "" }, Want: "host"},
		{Name: "host with port", Mut: func(p *Params) { p.Host = "smtp.example.com:587" }, Want: "host"},
		{Name: "port", Mut: func(p *Params) { p.Port = 0 }, Want: "port"},
		{Name: "implicit and skip", Mut: func(p *Params) { p.ImplicitTLS, p.InsecureSkipSTARTTLS = true, true }, Want: "insecure_skip_starttls"},
		{Name: "password without user", Mut: func(p *Params) { p.Password = "x" }, Want: "username"},
		{Name: "two passwords", Mut: func(p *Params) { p.Username, p.Password, p.PasswordEnv = "u", "x", "PW" }, Want: "set only one"},
		{Name: "bad from", Mut: func(p *Params) { p.From = "medic" }, Want: "from"},
		{Name: "no to", Mut: func(p *Params) { p.To = nil }, Want: "to:"},
		{Name: "bad to", Mut: func(p *Params) { p.To = []string{"ok@example.com", "nope"} }, Want: "to[1]"},
		{Name: "subject prefix", Mut: func(p *Params) { p.SubjectPrefix = "a\r\nBcc: x@example.com" }, Want: "subject_prefix"},
		{Name: "timeout", Mut: func(p *Params) { p.Timeout = 0 }, Want: "timeout"},
	})
}
