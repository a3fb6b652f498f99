package alertmanager

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sources/httpauth"
)

// DefaultMaxBodyBytes bounds a request body when no limit is configured.
// Alertmanager groups can be large (hundreds of alerts with long
// annotations), but nothing legitimate comes near this.
const DefaultMaxBodyBytes int64 = 4 << 20

// StreamFullRetryAfter is the Retry-After, in seconds, of the 503 answered
// when the event stream is full: long enough for the pipeline to work off
// some of its backlog, short enough that a retry comes while the alert is
// still news.
const StreamFullRetryAfter = 5

// BusUnavailableRetryAfter is the Retry-After, in seconds, of the 503
// answered when the bus cannot store for another reason (no answer,
// reconnecting, a store being re-created): the healer looks again every
// second, so a retry soon after usually finds it ready.
const BusUnavailableRetryAfter = 2

// Auth is the credential check shared by the intake endpoints.
type Auth = httpauth.Auth

// RequestError is a request body the intake refuses with 400. Reason is the
// label it is counted under in medic_events_rejected_total.
type RequestError struct {
	Reason string
	Err    error
	// Status, when set, answers with this code instead of 400 (the generic
	// webhook's 422: valid JSON its mapping cannot turn into an event).
	Status int
}

func (e *RequestError) Error() string { return e.Err.Error() }
func (e *RequestError) Unwrap() error { return e.Err }

// Intake is the HTTP plumbing every event intake endpoint shares (the
// Alertmanager webhook, the manual trigger): method and credential checks,
// the body limit, publishing, the answers and the metrics. Keeping it in one
// place is what makes "same auth, limits and answers" true rather than hoped.
//
// The answer is 200 only once Publish returned nil, i.e. the bus stored the
// events; when it cannot, the answer is 503 so that Alertmanager retries.
type Intake struct {
	// Source labels metrics and logs ("alertmanager", "manual").
	Source string
	// MaxBodyBytes bounds the body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	Auth         Auth
	// InFlight, when set, bounds the requests worked on at once.
	InFlight *InFlight
	// Caps are decided before the body is decoded.
	Caps
	// BodyTimeout, when positive, is how long reading the body may take
	// from the moment the handler starts it (a per-request read deadline);
	// a sender that trickles its body is answered 408.
	BodyTimeout time.Duration
	Publisher   event.Publisher
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Metrics defaults to an unregistered set.
	Metrics *Metrics
	// Parse turns a body into events. An error is answered with 400 and its
	// message; a *RequestError sets the reason, anything else counts as
	// malformed. receivedAt is the time the body was read.
	Parse func(body []byte, receivedAt time.Time) ([]event.Event, error)
	// VerifyBody, when set, is checked once the body is read, for
	// credentials that sign the body (HMAC); false answers 401 as a failed
	// Auth does, before anything is decoded.
	VerifyBody func(h http.Header, body []byte) bool
	// Accepted returns the JSON value of a 200 answer.
	Accepted func(events []event.Event, res event.PublishResult) any
	// Now defaults to time.Now; tests pin it.
	Now func() time.Time
}

// Handler checks the settings and returns the intake ready to serve, with
// defaults filled in.
func (in Intake) Handler() (http.Handler, error) {
	switch {
	case in.Source == "":
		return nil, errors.New("intake: Source is empty")
	case in.Publisher == nil:
		return nil, errors.New("intake: Publisher is nil")
	case in.Parse == nil || in.Accepted == nil:
		return nil, errors.New("intake: Parse and Accepted are required")
	case in.MaxBodyBytes < 0:
		return nil, fmt.Errorf("intake: MaxBodyBytes is negative (%d)", in.MaxBodyBytes)
	case in.MaxAlerts < 0 || in.MaxDecodedBytes < 0:
		return nil, fmt.Errorf("intake: MaxAlerts (%d) or MaxDecodedBytes (%d) is negative", in.MaxAlerts, in.MaxDecodedBytes)
	}
	if in.MaxBodyBytes == 0 {
		in.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if in.Logger == nil {
		in.Logger = slog.New(slog.DiscardHandler)
	}
	if in.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return nil, err
		}
		in.Metrics = m
	}
	if in.Now == nil {
		in.Now = time.Now
	}
	return &in, nil
}

// ServeHTTP implements http.Handler.
func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := in.serve(w, r)
	in.Metrics.RequestDuration.WithLabelValues(in.Source, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
}

func (in *Intake) serve(w http.ResponseWriter, r *http.Request) int {
	log := in.Logger.With("source", in.Source, "remote", r.RemoteAddr, "path", r.URL.Path)

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return in.reject(w, log, http.StatusMethodNotAllowed, ReasonMethod,
			fmt.Sprintf("method %s is not allowed; send a POST", r.Method))
	}
	if !in.Auth.Check(r) {
		in.Auth.Challenge(w.Header())
		return in.reject(w, log, http.StatusUnauthorized, ReasonUnauthorized, "missing or wrong credentials")
	}
	// Only JSON is read: a form or multipart POST is what a browser can
	// send across origins without a preflight, so refusing it keeps a web
	// page from feeding medic alerts through someone's browser.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return in.reject(w, log, http.StatusUnsupportedMediaType, ReasonMediaType,
			fmt.Sprintf("Content-Type %q is not application/json", r.Header.Get("Content-Type")))
	}
	tooLarge := errorBody{
		Error: fmt.Sprintf("the body is larger than the limit of %d bytes (%s); send fewer alerts per request or raise %[2]s",
			in.MaxBodyBytes, LimitMaxBodyBytes),
		Limit: LimitMaxBodyBytes, Max: in.MaxBodyBytes,
	}
	if r.ContentLength > in.MaxBodyBytes {
		return in.refuse(w, log, http.StatusRequestEntityTooLarge, ReasonTooLarge, tooLarge)
	}
	if in.BodyTimeout > 0 {
		// ErrNotSupported (a recorder in tests, some middlewares) leaves the
		// server's read_timeout as the only bound.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(in.BodyTimeout))
	}
	// The body is read before the request takes an in-flight slot, so a
	// sender that trickles its body holds no slot real webhooks need; the
	// memory it holds is what it sent, charged to the budget as it comes.
	body, charged, err := in.readBody(w, r)
	defer func() { in.Budget.release(charged) }()
	if err != nil {
		if errors.Is(err, errBudget) {
			return in.budgetBusy(w, log, charged)
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return in.refuse(w, log, http.StatusRequestEntityTooLarge, ReasonTooLarge, tooLarge)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return in.reject(w, log, http.StatusRequestTimeout, ReasonTimeout,
				fmt.Sprintf("the body took longer than %s to arrive", in.BodyTimeout))
		}
		return in.reject(w, log, http.StatusBadRequest, ReasonMalformed, fmt.Sprintf("reading the body: %v", err))
	}

	if in.VerifyBody != nil && !in.VerifyBody(r.Header, body) {
		return in.reject(w, log, http.StatusUnauthorized, ReasonUnauthorized, "missing or wrong body signature")
	}
	// The caps are decided on the body as read, before anything of it is
	// decoded: a few MiB of tiny alerts decode to a hundred times that.
	scan := scanBody(body, in.MaxAlerts)
	if code := in.checkCaps(w, log, scan); code != 0 {
		return code
	}
	if !in.InFlight.acquire(r.Context()) {
		log.Warn("request refused: too many webhook requests in progress", "status", http.StatusServiceUnavailable, "reason", ReasonBusy)
		w.Header().Set("Retry-After", "1")
		return in.reject(w, log, http.StatusServiceUnavailable, ReasonBusy,
			"too many requests are being stored right now; retry later")
	}
	defer in.InFlight.release()
	// The body's buffer is charged already; the rest of the estimate now.
	if more := scan.Cost - charged; more > 0 {
		if !in.Budget.acquire(r.Context(), more) {
			return in.budgetBusy(w, log, scan.Cost)
		}
		charged += more
	}

	events, err := in.Parse(body, in.Now())
	if err != nil {
		reason, code := ReasonMalformed, http.StatusBadRequest
		var re *RequestError
		if errors.As(err, &re) {
			if re.Reason != "" {
				reason = re.Reason
			}
			if re.Status != 0 {
				code = re.Status
			}
		}
		return in.reject(w, log, code, reason, err.Error())
	}
	if code := in.checkPayload(w, log, len(body), events); code != 0 {
		return code
	}
	in.Metrics.Received.WithLabelValues(in.Source).Add(float64(len(events)))
	warnSharedIDs(log, events)

	var res event.PublishResult
	if len(events) > 0 {
		res, err = in.Publisher.Publish(r.Context(), events)
		if errors.Is(err, event.ErrStreamFull) {
			// Refused, not lost: the bus keeps the events it already has and
			// takes no more until the pipeline catches up. Events of this
			// request that were stored are deduplicated on the retry.
			log.Warn("events refused: the event stream is full (bus.max_bytes); answering 503 so the sender retries",
				"events", len(events), "stored", res.Stored, "status", http.StatusServiceUnavailable,
				"reason", ReasonStreamFull, "retry_after_s", StreamFullRetryAfter, "error", err)
			w.Header().Set("Retry-After", strconv.Itoa(StreamFullRetryAfter))
			return in.reject(w, log, http.StatusServiceUnavailable, ReasonStreamFull,
				"the event stream is full; retry later")
		}
		if err != nil {
			log.Error("cannot store events; answering 503 so the sender retries",
				"events", len(events), "retry_after_s", BusUnavailableRetryAfter, "error", err)
			w.Header().Set("Retry-After", strconv.Itoa(BusUnavailableRetryAfter))
			return in.reject(w, log, http.StatusServiceUnavailable, ReasonBusUnavailable,
				"the event bus cannot store events right now; retry later")
		}
	}
	in.Metrics.Stored.WithLabelValues(in.Source).Add(float64(res.Stored))
	in.Metrics.Deduplicated.WithLabelValues(in.Source).Add(float64(res.Duplicates))
	log.Info("events accepted", "events", len(events), "stored", res.Stored, "duplicates", res.Duplicates)
	if log.Enabled(r.Context(), slog.LevelDebug) { // the arguments cost even when the line is dropped
		for i := range events {
			ev := &events[i]
			log.Debug("event", "id", ev.ID, "kind", ev.Kind, "status", ev.Status, "title", ev.Title, "subject", ev.Subject.String())
		}
	}
	writeJSON(w, log, http.StatusOK, in.Accepted(events, res))
	return http.StatusOK
}

func (in *Intake) reject(w http.ResponseWriter, log *slog.Logger, code int, reason, msg string) int {
	return in.refuse(w, log, code, reason, errorBody{Error: msg})
}

// refuse answers code with body, which may name the limit that refused the
// request.
func (in *Intake) refuse(w http.ResponseWriter, log *slog.Logger, code int, reason string, body errorBody) int {
	in.Metrics.Rejected.WithLabelValues(in.Source, reason).Inc()
	if code != http.StatusServiceUnavailable { // already logged as an error
		log.Warn("request rejected", "status", code, "reason", reason, "error", body.Error)
	}
	writeJSON(w, log, code, body)
	return code
}

// errorBody is the body of every refusal. A request refused by a limit
// says which one and its value, so the sender's operator knows what to
// change without reading medic's configuration.
type errorBody struct {
	Error string `json:"error"`
	// Limit is the setting that refused the request (webhook.max_body_bytes,
	// or max_payload for the NATS server's), Max its value.
	Limit string `json:"limit,omitempty"`
	Max   int64  `json:"max,omitempty"`
	// Alert is the index of the alert that was refused, when one was.
	Alert *int `json:"alert,omitempty"`
}

// The settings a 413 names.
const (
	LimitMaxBodyBytes            = "webhook.max_body_bytes"
	LimitMaxAlerts               = "webhook.max_alerts_per_request"
	LimitMaxDecodedBytes         = "webhook.max_decoded_bytes"
	LimitMaxInFlightDecodedBytes = "webhook.max_in_flight_decoded_bytes"
	LimitMaxPayload              = "max_payload"
)

// budgetBusy answers 503: the requests in progress hold the budget.
func (in *Intake) budgetBusy(w http.ResponseWriter, log *slog.Logger, bytes int64) int {
	log.Warn("request refused: the intake requests in progress hold their memory budget ("+LimitMaxInFlightDecodedBytes+")",
		"status", http.StatusServiceUnavailable, "reason", ReasonBusy, "decoded_bytes", bytes)
	w.Header().Set("Retry-After", "1")
	return in.reject(w, log, http.StatusServiceUnavailable, ReasonBusy,
		"the requests being stored right now hold the intake's memory budget; retry later")
}

// checkCaps answers 413 when scan shows the request over a cap, and
// returns 0 when it is within them.
func (in *Intake) checkCaps(w http.ResponseWriter, log *slog.Logger, scan bodyScan) int {
	switch {
	case in.MaxAlerts > 0 && scan.Alerts > in.MaxAlerts:
		return in.refuse(w, log, http.StatusRequestEntityTooLarge, ReasonTooManyAlerts, errorBody{
			Error: fmt.Sprintf("the request holds more than %d alerts (%s); have Alertmanager send fewer "+
				"(max_alerts in its webhook_config, or a finer group_by) or raise %[2]s", in.MaxAlerts, LimitMaxAlerts),
			Limit: LimitMaxAlerts, Max: int64(in.MaxAlerts),
		})
	case in.MaxDecodedBytes > 0 && scan.Cost > in.MaxDecodedBytes:
		return in.refuse(w, log, http.StatusRequestEntityTooLarge, ReasonTooLarge, errorBody{
			Error: fmt.Sprintf("decoded, the request would take about %d bytes, more than %d (%s); send fewer alerts "+
				"or labels per request or raise %[3]s", scan.Cost, in.MaxDecodedBytes, LimitMaxDecodedBytes),
			Limit: LimitMaxDecodedBytes, Max: in.MaxDecodedBytes,
		})
	case in.Budget != nil && scan.Cost > in.Budget.max:
		return in.refuse(w, log, http.StatusRequestEntityTooLarge, ReasonTooLarge, errorBody{
			Error: fmt.Sprintf("decoded, the request would take about %d bytes, more than all requests together may (%d, %s); "+
				"send fewer alerts per request or raise %[3]s", scan.Cost, in.Budget.max, LimitMaxInFlightDecodedBytes),
			Limit: LimitMaxInFlightDecodedBytes, Max: in.Budget.max,
		})
	}
	return 0
}

// checkPayload answers 413 when an event is larger than the bus takes, and
// returns 0 when every one fits. Nothing of the request is stored then:
// answered 503, the sender would retry the same alert forever, and storing
// the others would answer it for alerts it will send again.
func (in *Intake) checkPayload(w http.ResponseWriter, log *slog.Logger, bodyLen int, events []event.Event) int {
	pl, ok := in.Publisher.(PayloadLimiter)
	if !ok {
		return 0
	}
	maxPayload := pl.MaxPayload()
	limit := maxPayload - headerRoom
	// An event repeats at most three times each byte of its alert (a label
	// in the subject, an annotation in the title or description), each at
	// most six times over when escaped: a small body cannot hold a large
	// event, and the common request skips the per-event bound.
	if maxPayload <= 0 || int64(bodyLen)*18+64<<10 <= limit {
		return 0
	}
	for i := range events {
		ev := &events[i]
		if eventSizeBound(ev) <= limit {
			continue
		}
		data, err := event.MarshalEvent(ev)
		if err != nil || int64(len(data)) <= limit {
			continue // an encoding error is the publish's to report
		}
		return in.refuse(w, log, http.StatusRequestEntityTooLarge, ReasonEventTooLarge, errorBody{
			Error: fmt.Sprintf("alerts[%d] (alertname %q) is %d bytes as an event, more than the event bus takes (its NATS server's "+
				"max_payload of %d bytes, less %d for headers); nothing of this request was stored. Shorten the alert's "+
				"annotations or labels, or raise max_payload on the NATS server", i, ev.Labels["alertname"], len(data), maxPayload, headerRoom),
			Limit: LimitMaxPayload, Max: maxPayload, Alert: &i,
		})
	}
	return 0
}

func writeJSON(w http.ResponseWriter, log *slog.Logger, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		log.Error("encoding the answer", "error", err)
		code, body = http.StatusInternalServerError, []byte(`{"error":"internal error encoding the answer"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	// A failed write means the client went away; the events are stored
	// either way, so there is nothing to undo.
	_, _ = w.Write(append(body, '\n'))
}

// warnSharedIDs makes a collapse visible: a request that repeats an alert
// (same labels, status and start) yields one event ID twice, and the bus
// keeps only the first. Real Alertmanager never does this; a sender that
// does is worth a log line.
func warnSharedIDs(log *slog.Logger, events []event.Event) {
	if len(events) < 2 {
		return
	}
	seen := make(map[string]int, len(events))
	for i := range events {
		id := events[i].ID
		if j, dup := seen[id]; dup {
			log.Warn("two events in one request share an ID; the bus will keep only the first",
				"id", id, "fingerprint", events[i].Fingerprint, "first", events[j].Title, "dropped", events[i].Title)
			continue
		}
		seen[id] = i
	}
}

// initialBodyBuffer is the most of a body's announced Content-Length
// allocated before it arrives. A webhook of 50 alerts (40 KiB) is read into
// one buffer of its size; a larger body's buffer doubles as it comes, so a
// sender announcing 4 MiB and trickling it holds 64 KiB, not 4 MiB: even
// http.max_connections (512) such senders hold 32 MiB, half the default
// webhook.max_in_flight_decoded_bytes.
const initialBodyBuffer = 64 << 10

// errBudget is readBody's error when the decode budget had no room for the
// body's buffer within its wait.
var errBudget = errors.New("no room in the intake's memory budget")

// readBody reads the whole body, at most MaxBodyBytes, charging its buffer
// to the budget as it grows; charged is what it charged, to be released,
// also when it fails.
func (in *Intake) readBody(w http.ResponseWriter, r *http.Request) (buf []byte, charged int64, err error) {
	body := http.MaxBytesReader(w, r.Body, in.MaxBodyBytes)
	announced := r.ContentLength
	size := int64(initialBodyBuffer)
	if announced >= 0 && announced < size {
		size = announced + 1 // room to read the EOF without growing
	}
	for {
		if len(buf) == cap(buf) {
			grow := max(size-int64(cap(buf)), 512)
			if !in.Budget.acquire(r.Context(), grow) {
				return nil, charged, errBudget
			}
			charged += grow
			nb := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(nb, buf)
			buf = nb
			// Next time double, up to what was announced: net/http stops
			// a body at its Content-Length, but a handler called some other
			// way may get more, which is read (up to the limit) rather than
			// dropped.
			size = 2 * int64(cap(buf))
			if announced > int64(cap(buf)) {
				size = min(size, announced+1)
			}
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case errors.Is(err, io.EOF):
			if int64(len(buf)) < announced {
				return nil, charged, io.ErrUnexpectedEOF
			}
			return buf, charged, nil
		case err != nil:
			return nil, charged, err
		}
	}
}
