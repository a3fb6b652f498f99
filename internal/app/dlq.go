package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/sources/httpauth"
)

// The dead-letter API (`medic dlq`): list, show, replay and purge what
// every delivery failed for. It is guarded like the other write endpoints
// (webhook.bearer_token or basic auth), reads included: an event's dead
// letter holds the alert or object as it was received, before redaction.

// defaultDLQLimit is how many dead letters GET /api/dlq returns without ?limit.
const defaultDLQLimit = 100

// DLQList is the answer of GET /api/dlq.
type DLQList struct {
	DeadLetters []bus.DeadLetter `json:"dead_letters"`
	// Limit is the limit applied (0: none); len(DeadLetters) == Limit
	// means there may be older ones.
	Limit int `json:"limit"`
}

// DLQDetail is the answer of GET /api/dlq/{seq}: the dead letter with its
// headers and its payload, as JSON when it is JSON (findings and events
// are), else base64 in data.
type DLQDetail struct {
	bus.DeadLetter
	Payload json.RawMessage `json:"payload,omitempty"`
}

// DLQPurged is the answer of the DELETE endpoints.
type DLQPurged struct {
	Purged uint64 `json:"purged"`
}

func (a *App) dlqRoutes(mux *http.ServeMux, auth httpauth.Auth) error {
	if err := a.registry.Register(deadLettersHeld{a.bus}); err != nil {
		return fmt.Errorf("register the dead-letter gauge: %w", err)
	}
	mux.HandleFunc("GET /api/dlq", a.dlqHandler(auth, a.dlqList))
	mux.HandleFunc("GET /api/dlq/{seq}", a.dlqHandler(auth, a.dlqShow))
	mux.HandleFunc("POST /api/dlq/{seq}/replay", a.dlqHandler(auth, a.dlqReplayOne))
	mux.HandleFunc("POST /api/dlq/replay", a.dlqHandler(auth, a.dlqReplay))
	mux.HandleFunc("DELETE /api/dlq/{seq}", a.dlqHandler(auth, a.dlqDeleteOne))
	mux.HandleFunc("DELETE /api/dlq", a.dlqHandler(auth, a.dlqPurge))
	return nil
}

// deadLettersHeld reports the dead letters waiting in the stream, by
// consumer, read from JetStream at each scrape: medic_dead_letters_total
// only rises, this one falls when they are replayed or purged, so an alert
// on it clears once the on-call person dealt with them.
type deadLettersHeld struct{ bus *bus.Bus }

var deadLettersHeldDesc = prometheus.NewDesc("medic_dead_letters_held",
	"Dead letters waiting in MEDIC_DEADLETTER to be replayed or purged (medic dlq), by the consumer that gave up on them.",
	[]string{"consumer"}, nil)

func (deadLettersHeld) Describe(ch chan<- *prometheus.Desc) { ch <- deadLettersHeldDesc }

func (d deadLettersHeld) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	dl, err := d.bus.DeadLetters(ctx)
	var held map[string]uint64
	if err == nil {
		held, err = dl.Held(ctx)
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(deadLettersHeldDesc, err)
		return
	}
	for consumer, n := range held {
		ch <- prometheus.MustNewConstMetric(deadLettersHeldDesc, prometheus.GaugeValue, float64(n), consumer)
	}
}

// dlqError is an error with the status it is answered with.
type dlqError struct {
	status int
	err    error
}

func (e dlqError) Error() string { return e.err.Error() }
func (e dlqError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return dlqError{http.StatusBadRequest, fmt.Errorf(format, args...)}
}

// dlqHandler checks credentials, opens the dead-letter stream and answers
// h's result or error as JSON.
func (a *App) dlqHandler(auth httpauth.Auth, h func(*http.Request, *bus.DeadLetters) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !auth.Check(r) {
			auth.Challenge(w.Header())
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
			return
		}
		if r.Method == http.MethodPost {
			// As on the intake: a browser cannot send application/json
			// cross-site without asking first, so a page cannot make a
			// logged-in browser replay dead letters.
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{
					"error": fmt.Sprintf("Content-Type %q is not application/json", r.Header.Get("Content-Type"))})
				return
			}
		}
		dl, err := a.bus.DeadLetters(r.Context())
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		status, body, err := h(r, dl)
		if err != nil {
			var de dlqError
			switch {
			case errors.As(err, &de):
				status = de.status
			case errors.Is(err, bus.ErrDeadLetterNotFound):
				status = http.StatusNotFound
			case errors.Is(err, bus.ErrNoReader):
				status = http.StatusConflict
			case errors.Is(err, bus.ErrStreamFull):
				status = http.StatusServiceUnavailable
				w.Header().Set("Retry-After", "5")
			default:
				status = http.StatusInternalServerError
			}
			if status >= 500 {
				a.logger.Warn("dead-letter request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			answer := map[string]any{"error": err.Error()}
			if body != nil {
				answer["done"] = body // what a replay by filter did before it stopped
			}
			writeJSON(w, status, answer)
			return
		}
		writeJSON(w, status, body)
	}
}

func (a *App) dlqList(r *http.Request, dl *bus.DeadLetters) (int, any, error) {
	q := r.URL.Query()
	f, err := dlqFilter(q)
	if err != nil {
		return 0, nil, err
	}
	limit := defaultDLQLimit
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 0 {
			return 0, nil, badRequest("limit %q: want a number, 0 for no limit", s)
		}
	}
	list, err := dl.List(r.Context(), f, limit)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, DLQList{DeadLetters: list, Limit: limit}, nil
}

func (a *App) dlqShow(r *http.Request, dl *bus.DeadLetters) (int, any, error) {
	seq, err := dlqSeq(r)
	if err != nil {
		return 0, nil, err
	}
	d, err := dl.Get(r.Context(), seq)
	if err != nil {
		return 0, nil, err
	}
	out := DLQDetail{DeadLetter: d}
	if json.Valid(d.Data) {
		out.Payload, out.Data = d.Data, nil
	}
	return http.StatusOK, out, nil
}

func (a *App) dlqReplayOne(r *http.Request, dl *bus.DeadLetters) (int, any, error) {
	seq, err := dlqSeq(r)
	if err != nil {
		return 0, nil, err
	}
	if err := dl.Replay(r.Context(), seq); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, bus.ReplayResult{Replayed: 1, Seqs: []uint64{seq}}, nil
}

func (a *App) dlqReplay(r *http.Request, dl *bus.DeadLetters) (int, any, error) {
	f, err := dlqFilterOrAll(r.URL.Query(), "replay")
	if err != nil {
		return 0, nil, err
	}
	res, err := dl.ReplayMatching(r.Context(), f)
	if err != nil {
		return 0, res, err
	}
	return http.StatusOK, res, nil
}

func (a *App) dlqDeleteOne(r *http.Request, dl *bus.DeadLetters) (int, any, error) {
	seq, err := dlqSeq(r)
	if err != nil {
		return 0, nil, err
	}
	if err := dl.Delete(r.Context(), seq); err != nil {
		return 0, nil, err
	}
	a.logger.Info("dead letter deleted", "seq", seq)
	return http.StatusOK, DLQPurged{Purged: 1}, nil
}

func (a *App) dlqPurge(r *http.Request, dl *bus.DeadLetters) (int, any, error) {
	f, err := dlqFilterOrAll(r.URL.Query(), "purge")
	if err != nil {
		return 0, nil, err
	}
	n, err := dl.Purge(r.Context(), f)
	if err != nil {
		return 0, nil, err
	}
	a.logger.Info("dead letters purged", "purged", n, "consumer", f.Consumer, "sink", f.Sink, "subject", f.Subject, "since", f.Since)
	return http.StatusOK, DLQPurged{Purged: n}, nil
}

func dlqSeq(r *http.Request) (uint64, error) {
	s := r.PathValue("seq")
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		return 0, badRequest("%q is not a dead-letter sequence (a positive number, as GET /api/dlq lists)", s)
	}
	return seq, nil
}

// dlqFilter reads ?consumer=, ?sink=, ?subject= and ?since= (RFC 3339, or a
// duration back from now such as 2h).
func dlqFilter(q url.Values) (bus.DeadLetterFilter, error) {
	f := bus.DeadLetterFilter{Consumer: q.Get("consumer"), Sink: q.Get("sink"), Subject: q.Get("subject")}
	if s := q.Get("since"); s != "" {
		var err error
		if f.Since, err = parseSince(s, time.Now()); err != nil {
			return f, badRequest("since: %w", err)
		}
	}
	if err := f.Validate(); err != nil {
		return f, badRequest("%w", err)
	}
	return f, nil
}

// dlqFilterOrAll is dlqFilter for the requests that act on many dead
// letters: without a filter they act on every one, which must be asked
// for with ?all=true.
func dlqFilterOrAll(q url.Values, verb string) (bus.DeadLetterFilter, error) {
	f, err := dlqFilter(q)
	if err != nil {
		return f, err
	}
	all, _ := strconv.ParseBool(q.Get("all"))
	if f.Empty() && !all {
		return f, badRequest("%s every dead letter? Say so with all=true, or give consumer, sink, subject or since", verb)
	}
	return f, nil
}

// parseSince reads a point in time as RFC 3339 or as a duration before now
// ("90m", "2h"); `medic dlq --since` takes the same.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration back from now must not be negative", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-12-04T07:00:00Z) or a duration before now (2h)", strings.TrimSpace(s))
	}
	return t, nil
}
