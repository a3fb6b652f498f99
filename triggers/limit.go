package triggers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
)

// Limited is a trigger with a rate limit: after it fired for an event, it
// does not fire again for another event with the same LimitKey within
// RateLimit. The engine applies it when the trigger matched (one claim per
// key in the shared trigger state, bus/triggerstate), so the limit holds for
// every source, across replicas and restarts.
type Limited interface {
	// RateLimit is the window; 0 means no limit.
	RateLimit() time.Duration
	// LimitKey names what the limit counts: the trigger's ID and the part of
	// ev it limits by (alertname and namespace, a webhook's subject, …). It
	// must be KV-safe (letters, digits, '-', '_', '.').
	LimitKey(ev *event.Event) string
}

// ParamsID identifies a trigger by its name and parameters: the same
// trigger with the same parameters (in any playbook, on any replica, after a
// restart) gets the same ID, so its rate-limit state is shared; changing a
// parameter starts afresh.
func ParamsID(name string, params any) (string, error) {
	canon, err := yaml.Marshal(params)
	if err != nil {
		return "", fmt.Errorf("encode parameters of %s: %w", name, err)
	}
	sum := sha256.Sum256(append([]byte(name+"\x00"), canon...))
	return hex.EncodeToString(sum[:8]), nil
}

// LimitKeyOf is a LimitKey: the trigger's id and a KV-safe hash of parts.
func LimitKeyOf(id string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return id + "." + hex.EncodeToString(h.Sum(nil)[:12])
}
