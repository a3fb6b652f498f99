package redact

import (
	"strings"
	"testing"

	"github.com/medichq/medic/rag/ragtest"
)

func TestRedactFixture(t *testing.T) {
	t.Parallel()
	raw := ragtest.SecretsLog
	for _, s := range ragtest.Secrets {
		if !strings.Contains(raw, s) {
			t.Fatalf("fixture lacks %q", s)
		}
	}
	r, err := New(Options{Patterns: []string{ragtest.CustomPattern}})
	if err != nil {
		t.Fatal(err)
	}
	out, found := r.Redact(raw)
	for _, s := range ragtest.Secrets {
		if strings.Contains(out, s) {
			t.Errorf("secret survived: %q", s)
		}
	}
	// Each secret counted once (one line may hold two, e.g. the AWS pair).
	if n := found.Total(); n != len(ragtest.Secrets) {
		t.Errorf("%d redactions (%v), want %d", n, found, len(ragtest.Secrets))
	}
	// What is not secret stays readable.
	for _, keep := range []string{"starting cart service version=1.4.2", "panic: runtime error: invalid memory address",
		"db.shop.svc:5432/cart", "Authorization: Bearer " + Placeholder, "aws_access_key_id="} {
		if !strings.Contains(out, keep) {
			t.Errorf("lost %q:\n%s", keep, out)
		}
	}
	if !strings.Contains(found.String(), "23 secrets redacted (") {
		t.Errorf("summary %q", found.String())
	}
	// Redacting twice finds nothing new.
	if _, again := r.Redact(out); again.Total() != 0 {
		t.Errorf("second pass found %v", again)
	}
}

func TestRedactLeavesOrdinaryTextAlone(t *testing.T) {
	t.Parallel()
	text := `Check pod events via kubectl -n $NAMESPACE describe pod $POD.
The token bucket refills every second. Secrets are mounted from the cart-secrets Secret.
Back-off restarting failed container app in pod cart-7d9_shop(1234-abcd).`
	out, found := (*Redactor)(nil).Redact(text)
	if found.Total() != 0 || out != text {
		t.Errorf("changed ordinary text (%v):\n%s", found, out)
	}
}

func TestRedactPatternErrorsNameThePattern(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{Patterns: []string{"ok", "(unclosed"}}); err == nil || !strings.Contains(err.Error(), "pattern 1") {
		t.Errorf("error %v", err)
	}
}
