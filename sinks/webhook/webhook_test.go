package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/vendortest"
)

func TestSignedPostVerifies(t *testing.T) {
	secret := []byte("hunter2-but-longer")
	dir := t.TempDir()
	sf := filepath.Join(dir, "secret")
	if err := os.WriteFile(sf, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []Payload
	var failed []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := Verify(secret, r.Header, body, 5*time.Minute, time.Now()); err != nil {
			failed = append(failed, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Header.Get("X-Team") != "payments" || r.Header.Get(HeaderFindingID) != "f1" ||
			r.Header.Get(HeaderIdempotencyKey) != sinks.IdempotencyKey("hook", "f1") {
			failed = append(failed, "headers")
		}
		var p Payload
		if err := json.Unmarshal(body, &p); err != nil {
			failed = append(failed, err.Error())
		}
		got = append(got, p)
	}))
	defer srv.Close()
	p := *Defaults()
	p.URL = srv.URL + "/hook"
	p.SecretFile = sf
	p.Headers = map[string]string{"X-Team": "payments"}
	s, err := New(t.Context(), "hook", p, sinks.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	f := &event.Finding{ID: "f1", Title: "t", Event: event.Event{Status: event.StatusFiring}}
	if err := s.Send(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if len(failed) > 0 || len(got) != 1 || got[0].Finding.ID != "f1" || got[0].Sink != "hook" {
		t.Fatalf("receiver: got %+v, failures %v", got, failed)
	}
}

func TestVerifyRejects(t *testing.T) {
	secret := []byte("k")
	body := []byte(`{"a":1}`)
	now := time.Unix(1741944413, 0)
	h := http.Header{}
	h.Set(HeaderTimestamp, "1741944413")
	h.Set(HeaderSignature, Sign(secret, "1741944413", body))
	if err := Verify(secret, h, body, time.Minute, now); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	for name, mut := range map[string]func(http.Header, *[]byte, *time.Time){
		"tampered body": func(_ http.Header, b *[]byte, _ *time.Time) { *b = []byte(`{"a":2}`) },
		"wrong secret": func(h http.Header, _ *[]byte, _ *time.Time) {
			h.Set(HeaderSignature, Sign([]byte("x"), "1741944413", body))
		},
		"stale":          func(_ http.Header, _ *[]byte, n *time.Time) { *n = n.Add(10 * time.Minute) },
		"no signature":   func(h http.Header, _ *[]byte, _ *time.Time) { h.Del(HeaderSignature) },
		"timestamp swap": func(h http.Header, _ *[]byte, _ *time.Time) { h.Set(HeaderTimestamp, "1741944414") },
	} {
		t.Run(name, func(t *testing.T) {
			hh, b, n := h.Clone(), body, now
			mut(hh, &b, &n)
			if err := Verify(secret, hh, b, time.Minute, n); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestErrorsAreReturnedWithoutTheURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer srv.Close()
	p := *Defaults()
	p.URL = srv.URL + "/hook?token=s3cret"
	s, err := New(t.Context(), "hook", p, sinks.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), &event.Finding{ID: "f"})
	if err == nil || !strings.Contains(err.Error(), "502") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v", err)
	}
}

// A receiver behind a proxy with a body limit (nginx answers 413 over its
// client_max_body_size) gets a finding too large for it again with the
// evidence trimmed, signed, under its limit, with the log's last lines and a
// note saying what was trimmed, instead of a 413 on every try until the
// finding is dead-lettered. The finding Send was given is left whole.
func TestTooLargeForTheReceiverIsTrimmed(t *testing.T) {
	t.Parallel()
	secret := []byte("hunter2-but-longer")
	sf := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(sf, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	const bodyLimit = 300_000
	var (
		mu       sync.Mutex
		refused  []int
		accepted [][]byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if len(body) > bodyLimit {
			refused = append(refused, len(body))
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			_, _ = io.WriteString(w, "<html><center><h1>413 Request Entity Too Large</h1></center></html>")
			return
		}
		if err := Verify(secret, r.Header, body, time.Minute, time.Now()); err != nil {
			t.Errorf("trimmed body: %v", err)
		}
		accepted = append(accepted, body)
	}))
	t.Cleanup(srv.Close)

	f := vendortest.WithCrashLog(event.NewFinding(event.Event{ID: "f1", Title: "cart is crash looping"}, time.Now()), 5000)
	before, _ := json.Marshal(f)

	s, err := New(context.Background(), "hook", Params{URL: srv.URL, SecretFile: sf, Timeout: 5 * time.Second}, sinks.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), f); err != nil {
		t.Fatalf("send: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refused) == 0 || len(accepted) != 1 {
		t.Fatalf("refused %v, accepted %d bodies: want the whole refused, then one trimmed accepted", refused, len(accepted))
	}
	var p Payload
	if err := json.Unmarshal(accepted[0], &p); err != nil || p.Finding == nil || p.Finding.ID != "f1" {
		t.Fatalf("accepted body is not the finding's payload: %v", err)
	}
	for _, want := range []string{vendortest.LastCrashLine, "to fit what the webhook receiver accepts", "client_max_body_size"} {
		if !strings.Contains(string(accepted[0]), want) {
			t.Errorf("the trimmed finding lacks %q", want)
		}
	}
	if n := strings.Count(string(accepted[0]), "This finding was larger than"); n != 1 {
		t.Errorf("%d notes of what was trimmed after %d refusals, want 1", n, len(refused))
	}
	if after, _ := json.Marshal(f); string(after) != string(before) {
		t.Error("Send trimmed the finding it was given, not a copy")
	}
}

func TestParams(t *testing.T) {
	for _, p := range []Params{
		{Timeout: time.Second},
		{URL: "ftp://x", Timeout: time.Second},
		{URL: "https://x", Timeout: time.Second, Headers: map[string]string{"X-Medic-Signature-256": "forged"}},
		{URL: "https://x", SecretFile: "a", SecretEnv: "B", Timeout: time.Second},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}
