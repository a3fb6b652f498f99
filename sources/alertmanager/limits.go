package alertmanager

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
)

// Defaults of the caps the intake decides before it decodes a body; they
// live with the other defaults in package config (docs/configuration.md).
const (
	DefaultMaxAlertsPerRequest     = config.DefaultMaxAlertsPerRequest
	DefaultMaxDecodedBytes         = config.DefaultMaxDecodedBytes
	DefaultMaxInFlightDecodedBytes = config.DefaultMaxInFlightDecodedBytes
)

// decodeCost estimates, from counts a scan can make without decoding, the
// bytes a body takes once decoded into events and encoded for the bus
// (TestDecodeCostCoversTheDecoder holds the estimate above what the decoder
// allocates): per alert its structs, maps and message (measured 2.2 KiB for
// a one-label alert), per string a map entry or field (about 60 bytes over
// a real alert's 35 strings), and per body byte its copy in the encoded
// event.
const (
	costPerAlert  = 2048
	costPerString = 64
	costPerByte   = 2
)

// Caps are the limits an intake decides on a body before decoding it.
type Caps struct {
	// MaxAlerts, when positive, bounds the alerts of one request (the
	// elements of the body's top-level arrays), and MaxDecodedBytes the
	// bytes it is estimated to take decoded (decodeCost); both are decided
	// by a scan of the body, and a request over either is answered 413.
	MaxAlerts       int
	MaxDecodedBytes int64
	// Budget, when set, bounds the estimated bytes of the requests read
	// and worked on at once (503 over it); the endpoints share it.
	Budget *DecodeBudget
}

// bodyScan is what scanBody learned about a body.
type bodyScan struct {
	// Alerts counts the elements of the top-level object's arrays: a
	// webhook's only one is "alerts". Counting every one, whatever its key,
	// leaves nothing to escapes or letter case (encoding/json matches keys
	// case-insensitively).
	Alerts int
	// Cost is decodeCost's estimate.
	Cost int64
}

// scanBody walks body once, without allocating and without checking it is
// valid JSON (the decoder does that), counting what decodeCost needs. It
// stops as soon as the alerts exceed maxAlerts (when positive), so a body
// of a million alerts costs as much to refuse as one of maxAlerts+1.
func scanBody(body []byte, maxAlerts int) bodyScan {
	var (
		s        bodyScan
		strs     int64
		depth    int
		kinds    [2]byte // the containers at depths 1 and 2
		elemNext bool    // the next value starts an element of a top-level array
	)
	topArray := func() bool { return depth == 2 && kinds[0] == '{' && kinds[1] == '[' }
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		if elemNext && c != ']' {
			s.Alerts++
			if maxAlerts > 0 && s.Alerts > maxAlerts {
				break
			}
		}
		elemNext = false
		switch c {
		case '"':
			strs++
			i = stringEnd(body, i)
		case '{', '[':
			depth++
			if depth <= len(kinds) {
				kinds[depth-1] = c
			}
			elemNext = topArray()
		case '}', ']':
			depth--
		case ',':
			elemNext = topArray()
		}
	}
	s.Cost = int64(s.Alerts)*costPerAlert + strs*costPerString + int64(len(body))*costPerByte
	return s
}

// stringEnd returns the index of the quote closing the string that opens
// at body[open], or len(body). Strings are most of a webhook's bytes, so it
// jumps from quote to quote (IndexByte is vectorised) and counts the
// backslashes before each to tell an escaped one.
func stringEnd(body []byte, open int) int {
	i := open
	for {
		j := bytes.IndexByte(body[i+1:], '"')
		if j < 0 {
			return len(body)
		}
		i += 1 + j
		k := i - 1
		for body[k] == '\\' { // stops at the opening quote at the latest
			k--
		}
		if (i-1-k)%2 == 0 {
			return i
		}
	}
}

// DecodeBudget bounds the estimated decoded bytes (decodeCost) of the
// intake requests worked on at once, across both endpoints. InFlight bounds
// their number, but one request of 5,000 alerts takes what a thousand of
// five take; this bounds the memory. A request that does not fit within the
// wait is answered 503 with Retry-After. A nil *DecodeBudget bounds nothing.
type DecodeBudget struct {
	max  int64
	wait time.Duration

	mu    sync.Mutex
	used  int64
	freed chan struct{} // closed and replaced whenever bytes are released
}

// NewDecodeBudget allows max estimated bytes at once, a request waiting up
// to wait for room; max 0 means no bound (nil).
func NewDecodeBudget(max int64, wait time.Duration) *DecodeBudget {
	if max <= 0 {
		return nil
	}
	return &DecodeBudget{max: max, wait: wait, freed: make(chan struct{})}
}

// acquire takes n bytes, waiting up to the wait or until ctx ends. n must
// not exceed the budget's max.
func (b *DecodeBudget) acquire(ctx context.Context, n int64) bool {
	if b == nil {
		return true
	}
	var timer *time.Timer
	for {
		b.mu.Lock()
		if b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return true
		}
		freed := b.freed
		b.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(b.wait)
			defer timer.Stop()
		}
		select {
		case <-freed:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (b *DecodeBudget) release(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// PayloadLimiter is a Publisher that knows the largest message its bus
// takes (bus.Bus, from the server's max_payload). The intake refuses an
// event larger than that with 413 before it stores anything of the request:
// answered 503, the sender would retry it forever.
type PayloadLimiter interface {
	MaxPayload() int64
}

// headerRoom is what an event's message keeps free of the max payload for
// its headers (Nats-Msg-Id: about 60 bytes).
const headerRoom = 512

// eventSizeBound is more than MarshalEvent can make of ev: every string at
// most six times its length (a byte escaped as \u00XX), plus the keys,
// times and punctuation. It lets the intake skip encoding events that
// cannot be too large.
func eventSizeBound(ev *event.Event) int64 {
	n := len(ev.ID) + len(ev.Kind) + len(ev.Source) + len(ev.Status) + len(ev.Severity) + len(ev.Title) +
		len(ev.Description) + len(ev.Subject.Kind) + len(ev.Subject.Namespace) + len(ev.Subject.Name) +
		len(ev.Subject.Container) + len(ev.Subject.Node) + len(ev.Fingerprint) + len(ev.GeneratorURL) +
		len(ev.ExternalURL) + len(ev.Raw)
	for k, v := range ev.Labels {
		n += len(k) + len(v) + 6
	}
	for k, v := range ev.Annotations {
		n += len(k) + len(v) + 6
	}
	return int64(6*n + 1024)
}
