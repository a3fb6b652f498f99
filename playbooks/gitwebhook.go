package playbooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// WebhookPush is a verified webhook call from a Git host.
type WebhookPush struct {
	// Provider is github, gitea or gitlab.
	Provider string
	// Event is the provider's event name ("push", "ping", "Push Hook", …).
	Event string
	// IsPush says the event reports new commits (a push or a tag push).
	IsPush bool
	// IsPing is GitHub's and Gitea's test delivery.
	IsPing bool
	// Ref is the pushed ref ("refs/heads/main") when the body says.
	Ref string
	// Repository is the repository's name with its owner, when the body says.
	Repository string
}

// Branch is the pushed branch, or "" when Ref is not a branch.
func (p WebhookPush) Branch() string {
	b, ok := strings.CutPrefix(p.Ref, "refs/heads/")
	if !ok {
		return ""
	}
	return b
}

// ErrWebhookSignature means a webhook call is not signed by whoever holds
// the secret: a missing or wrong signature or token.
var ErrWebhookSignature = errors.New("webhook signature or token is missing or wrong")

// VerifyWebhook checks a push webhook the way each Git host signs it:
//
//   - GitHub: X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>
//   - Gitea (and Forgejo, Gogs): X-Gitea-Signature (X-Gogs-Signature): <hex HMAC-SHA256>
//   - GitLab: X-Gitlab-Token: <the secret itself>
//
// Comparisons are constant-time. The body is parsed only after it was
// verified.
func VerifyWebhook(h http.Header, body []byte, secret string) (WebhookPush, error) {
	var p WebhookPush
	if secret == "" {
		return p, errors.New("no webhook secret is configured")
	}
	switch {
	case h.Get("X-Gitlab-Token") != "":
		if subtle.ConstantTimeCompare([]byte(h.Get("X-Gitlab-Token")), []byte(secret)) != 1 {
			return p, ErrWebhookSignature
		}
		p.Provider, p.Event = "gitlab", h.Get("X-Gitlab-Event")
		p.IsPush = p.Event == "Push Hook" || p.Event == "Tag Push Hook"
	case h.Get("X-Gitea-Signature") != "" || h.Get("X-Gogs-Signature") != "":
		sig := h.Get("X-Gitea-Signature")
		if sig == "" {
			sig = h.Get("X-Gogs-Signature")
		}
		if !validHMAC(sig, body, secret) {
			return p, ErrWebhookSignature
		}
		p.Provider = "gitea"
		p.Event = firstHeader(h, "X-Gitea-Event", "X-Gogs-Event", "X-GitHub-Event")
		p.IsPush, p.IsPing = p.Event == "push", p.Event == "ping"
	case h.Get("X-Hub-Signature-256") != "":
		sig, ok := strings.CutPrefix(h.Get("X-Hub-Signature-256"), "sha256=")
		if !ok || !validHMAC(sig, body, secret) {
			return p, ErrWebhookSignature
		}
		p.Provider, p.Event = "github", h.Get("X-GitHub-Event")
		p.IsPush, p.IsPing = p.Event == "push", p.Event == "ping"
	default:
		return p, ErrWebhookSignature
	}
	var payload struct {
		Ref        string `json:"ref"`
		Repository struct {
			FullName          string `json:"full_name"`
			PathWithNamespace string `json:"path_with_namespace"`
		} `json:"repository"`
		Project struct {
			PathWithNamespace string `json:"path_with_namespace"`
		} `json:"project"`
	}
	if json.Unmarshal(body, &payload) == nil {
		p.Ref = payload.Ref
		p.Repository = firstNonEmpty(payload.Repository.FullName, payload.Project.PathWithNamespace, payload.Repository.PathWithNamespace)
	}
	return p, nil
}

func validHMAC(sigHex string, body []byte, secret string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(sigHex))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// SignWebhook returns the hex HMAC-SHA256 of body, as GitHub and Gitea send
// it (GitHub prefixes "sha256="); for tests and tooling.
func SignWebhook(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
