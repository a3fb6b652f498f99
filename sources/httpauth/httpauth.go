// Package httpauth checks the credentials of requests to medic's event
// intake endpoints (the Alertmanager webhook and the manual trigger). Both
// accept what Alertmanager's http_config can send: a bearer token
// (authorization.credentials) or basic auth.
package httpauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
)

// Auth holds the accepted credentials. The zero value accepts every request,
// so a laptop setup needs no configuration. When both a token and a user are
// set, either one is enough.
type Auth struct {
	BearerToken string `yaml:"bearer_token" json:"bearer_token,omitempty"`
	Username    string `yaml:"username" json:"username,omitempty"`
	Password    string `yaml:"password" json:"password,omitempty"`
}

// Enabled reports whether any credential is configured.
func (a Auth) Enabled() bool {
	return a.BearerToken != "" || a.Username != "" || a.Password != ""
}

// Check reports whether r carries an accepted credential, or whether no
// credential is configured at all.
func (a Auth) Check(r *http.Request) bool {
	if !a.Enabled() {
		return true
	}
	if a.BearerToken != "" {
		if tok, ok := bearer(r.Header.Get("Authorization")); ok && equal(tok, a.BearerToken) {
			return true
		}
	}
	if a.Username != "" || a.Password != "" {
		if u, p, ok := r.BasicAuth(); ok {
			// Both comparisons run whatever the first one says, so timing
			// does not tell a caller which half was wrong.
			uok := equal(u, a.Username)
			pok := equal(p, a.Password)
			if uok && pok {
				return true
			}
		}
	}
	return false
}

// Challenge sets the WWW-Authenticate headers a 401 answer should carry,
// one per accepted scheme.
func (a Auth) Challenge(h http.Header) {
	if a.BearerToken != "" {
		h.Add("WWW-Authenticate", `Bearer realm="medic"`)
	}
	if a.Username != "" || a.Password != "" {
		h.Add("WWW-Authenticate", `Basic realm="medic", charset="UTF-8"`)
	}
}

// LogValue keeps secrets out of logs when an Auth is logged by mistake.
func (a Auth) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("bearer_token", a.BearerToken != ""),
		slog.String("username", a.Username),
		slog.Bool("password", a.Password != ""),
	)
}

func bearer(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// equal compares in constant time. Hashing first makes the comparison
// independent of the lengths too, which ConstantTimeCompare alone leaks.
func equal(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
