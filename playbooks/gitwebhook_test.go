package playbooks

import (
	"errors"
	"net/http"
	"testing"
)

func TestVerifyWebhook(t *testing.T) {
	t.Parallel()
	const secret = "It's a Secret to Everybody"
	body := []byte(`{"ref":"refs/heads/main","repository":{"full_name":"acme/playbooks"}}`)
	sig := SignWebhook(body, secret)
	// GitHub's documented example: secret "It's a Secret to Everybody",
	// body "Hello, World!".
	if got := SignWebhook([]byte("Hello, World!"), secret); got != "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" {
		t.Fatalf("signature of GitHub's example: %s", got)
	}
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name     string
		header   http.Header
		body     []byte
		ok       bool
		provider string
		push     bool
		ping     bool
	}{
		{"github push", h("X-Hub-Signature-256", "sha256="+sig, "X-GitHub-Event", "push"), body, true, "github", true, false},
		{"github ping", h("X-Hub-Signature-256", "sha256="+SignWebhook([]byte(`{}`), secret), "X-GitHub-Event", "ping"), []byte(`{}`), true, "github", false, true},
		{"github wrong signature", h("X-Hub-Signature-256", "sha256="+SignWebhook(body, "other"), "X-GitHub-Event", "push"), body, false, "", false, false},
		{"github without prefix", h("X-Hub-Signature-256", sig, "X-GitHub-Event", "push"), body, false, "", false, false},
		{"github body changed", h("X-Hub-Signature-256", "sha256="+sig, "X-GitHub-Event", "push"), append([]byte(" "), body...), false, "", false, false},
		{"gitea push", h("X-Gitea-Signature", sig, "X-Gitea-Event", "push"), body, true, "gitea", true, false},
		{"gitea push also sending the GitHub header", h("X-Gitea-Signature", sig, "X-Hub-Signature-256", "sha256="+sig, "X-Gitea-Event", "push"), body, true, "gitea", true, false},
		{"gitea wrong signature", h("X-Gitea-Signature", "00"+sig[2:], "X-Gitea-Event", "push"), body, false, "", false, false},
		{"gogs push", h("X-Gogs-Signature", sig, "X-Gogs-Event", "push"), body, true, "gitea", true, false},
		{"gitlab push", h("X-Gitlab-Token", secret, "X-Gitlab-Event", "Push Hook"), body, true, "gitlab", true, false},
		{"gitlab other event", h("X-Gitlab-Token", secret, "X-Gitlab-Event", "Issue Hook"), body, true, "gitlab", false, false},
		{"gitlab wrong token", h("X-Gitlab-Token", "guess", "X-Gitlab-Event", "Push Hook"), body, false, "", false, false},
		{"unsigned", h("X-GitHub-Event", "push"), body, false, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := VerifyWebhook(tt.header, tt.body, secret)
			if !tt.ok {
				if !errors.Is(err, ErrWebhookSignature) {
					t.Fatalf("want ErrWebhookSignature, got %v (%+v)", err, p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Provider != tt.provider || p.IsPush != tt.push || p.IsPing != tt.ping {
				t.Fatalf("got %+v", p)
			}
			if tt.push && (p.Branch() != "main" || p.Repository != "acme/playbooks") {
				t.Fatalf("payload not read: %+v", p)
			}
		})
	}
	if _, err := VerifyWebhook(h("X-Gitlab-Token", ""), body, ""); err == nil {
		t.Fatal("an empty secret verified a request")
	}
}
