package httpauth

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Flux's generic-hmac provider may sign with SHA-1; the secret, not the hash, is what protects
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"net/http"
	"strings"
)

// DefaultHMACHeader is where GitHub-style senders put the body's signature
// ("sha256=<hex>").
const DefaultHMACHeader = "X-Hub-Signature-256"

// HMAC checks a signature of the request body, as GitHub
// (X-Hub-Signature-256: sha256=<hex>) and Flux's generic-hmac provider
// (X-Signature: sha256=<hex>, or sha1, sha384, sha512) send it. The zero
// value (no secret) accepts every body.
type HMAC struct {
	Secret string
	// Header carries the signature; "" means DefaultHMACHeader.
	Header string
}

// Enabled reports whether a secret is configured.
func (m HMAC) Enabled() bool { return m.Secret != "" }

// Verify reports whether h carries a valid signature of body, or whether no
// secret is configured. The value is "<algorithm>=<hex>"; a bare hex value
// is taken as SHA-256. The comparison is constant-time (hmac.Equal).
func (m HMAC) Verify(h http.Header, body []byte) bool {
	if !m.Enabled() {
		return true
	}
	name := m.Header
	if name == "" {
		name = DefaultHMACHeader
	}
	algo, sig, ok := strings.Cut(strings.TrimSpace(h.Get(name)), "=")
	if !ok {
		algo, sig = "sha256", algo
	}
	var newHash func() hash.Hash
	switch strings.ToLower(algo) {
	case "sha256":
		newHash = sha256.New
	case "sha512":
		newHash = sha512.New
	case "sha384":
		newHash = sha512.New384
	case "sha1":
		newHash = sha1.New
	default:
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) == 0 {
		return false
	}
	mac := hmac.New(newHash, []byte(m.Secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// Sign returns "sha256=<hex>" of body, the header value Verify accepts; for
// tests and tools that post to medic.
func (m HMAC) Sign(body []byte) string {
	mac := hmac.New(sha256.New, []byte(m.Secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
