package interact

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// KeyBucket holds medic's generated finding-page key.
const KeyBucket = "medic_interact"

const pageKeyName = "finding_page_key"

// Links signs and checks links to the finding page:
//
//	<public_url>/findings/<id>?exp=<unix>&sig=<base64url HMAC-SHA256(key, "finding\x00"+id+"\x00"+exp)>
//
// A link names one finding and expires; changing either breaks the
// signature. The key never leaves medic.
type Links struct {
	key  []byte
	base string // public_url without a trailing slash; "" means no links
	ttl  time.Duration
	now  func() time.Time
}

// NewLinks loads the signing key from keyFile (at least 32 bytes), or from
// the KV bucket medic_interact, generating it there at first start so that
// every replica and every restart signs alike.
func NewLinks(ctx context.Context, open KVFunc, keyFile, publicURL string, ttl time.Duration) (*Links, error) {
	l := &Links{base: strings.TrimSuffix(publicURL, "/"), ttl: ttl, now: time.Now}
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("finding_page.key_file: %w", err)
		}
		if len(strings.TrimSpace(string(b))) < 32 {
			return nil, errors.New("finding_page.key_file: the key must be at least 32 bytes")
		}
		l.key = []byte(strings.TrimSpace(string(b)))
		return l, nil
	}
	kv, err := open(ctx, KeyBucket, 0)
	if err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", KeyBucket, err)
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := createOnce(ctx, kv, pageKeyName, fresh); err != nil {
		return nil, fmt.Errorf("store the finding-page key: %w", err)
	}
	e, err := kv.Get(ctx, pageKeyName) // ours, or the one another replica made first
	if err != nil {
		return nil, fmt.Errorf("read the finding-page key: %w", err)
	}
	l.key = e.Value()
	return l, nil
}

// NewLinksWithKey is for tests and tools: a fixed key.
func NewLinksWithKey(key []byte, publicURL string, ttl time.Duration) *Links {
	return &Links{key: key, base: strings.TrimSuffix(publicURL, "/"), ttl: ttl, now: time.Now}
}

// Enabled reports whether links can be made (public_url is set).
func (l *Links) Enabled() bool { return l != nil && l.base != "" }

// URL returns the signed page link for a finding, or "" without public_url.
func (l *Links) URL(id string) string {
	if !l.Enabled() || !validID(id) {
		return ""
	}
	return l.base + "/findings/" + id + "?" + l.Query(id)
}

// Query returns the signed query (exp and sig) for a finding.
func (l *Links) Query(id string) string {
	exp := strconv.FormatInt(l.now().Add(l.ttl).Unix(), 10)
	return url.Values{"exp": {exp}, "sig": {l.sign(id, exp)}}.Encode()
}

func (l *Links) sign(id, exp string) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("finding\x00" + id + "\x00" + exp))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Errors of Check.
var (
	ErrLinkExpired = errors.New("this link has expired")
	ErrLinkInvalid = errors.New("this link is not valid")
)

// Check verifies a request's exp and sig for a finding.
func (l *Links) Check(id string, q url.Values) error {
	exp, sig := q.Get("exp"), q.Get("sig")
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || sig == "" || !validID(id) {
		return ErrLinkInvalid
	}
	if !hmac.Equal([]byte(sig), []byte(l.sign(id, exp))) {
		return ErrLinkInvalid
	}
	if l.now().After(time.Unix(sec, 0)) {
		return ErrLinkExpired
	}
	return nil
}
