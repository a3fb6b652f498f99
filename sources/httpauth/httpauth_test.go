package httpauth

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		auth   Auth
		header string // Authorization
		user   string
		pass   string
		ok     bool
	}{
		{name: "nothing configured", ok: true},
		{name: "bearer ok", auth: Auth{BearerToken: "t"}, header: "Bearer t", ok: true},
		{name: "bearer scheme is case-insensitive", auth: Auth{BearerToken: "t"}, header: "BEARER  t ", ok: true},
		{name: "bearer wrong", auth: Auth{BearerToken: "t"}, header: "Bearer u"},
		{name: "bearer prefix of token", auth: Auth{BearerToken: "token"}, header: "Bearer tok"},
		{name: "bearer empty", auth: Auth{BearerToken: "t"}, header: "Bearer "},
		{name: "bearer missing", auth: Auth{BearerToken: "t"}},
		{name: "token sent as basic password", auth: Auth{BearerToken: "t"}, user: "", pass: "t"},
		{name: "basic ok", auth: Auth{Username: "u", Password: "p"}, user: "u", pass: "p", ok: true},
		{name: "basic wrong password", auth: Auth{Username: "u", Password: "p"}, user: "u", pass: "x"},
		{name: "basic wrong user", auth: Auth{Username: "u", Password: "p"}, user: "x", pass: "p"},
		{name: "either of two", auth: Auth{BearerToken: "t", Username: "u", Password: "p"}, user: "u", pass: "p", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			if tt.user != "" || tt.pass != "" {
				r.SetBasicAuth(tt.user, tt.pass)
			}
			if got := tt.auth.Check(r); got != tt.ok {
				t.Errorf("Check = %v, want %v", got, tt.ok)
			}
		})
	}
}

func TestLogValueHidesSecrets(t *testing.T) {
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("cfg", "auth", Auth{BearerToken: "tok-123", Username: "am", Password: "pw-456"})
	if s := b.String(); strings.Contains(s, "tok-123") || strings.Contains(s, "pw-456") || !strings.Contains(s, "am") {
		t.Errorf("logged %q", s)
	}
}
