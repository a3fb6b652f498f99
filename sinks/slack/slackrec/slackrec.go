// Package slackrec is a Slack Web API for tests: slack-go's slacktest
// server, extended with recording handlers for chat.postMessage,
// chat.update, chat.postEphemeral and the files upload v2 calls
// (files.getUploadURLExternal, the upload itself, files.completeUploadExternal),
// failures on demand (429 with Retry-After, 500, ok:false errors), and a
// Socket Mode websocket that delivers envelopes a test writes and records
// the client's acknowledgements.
package slackrec

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
)

// Method names recorded (the upload itself is "upload").
const (
	PostMessage   = "chat.postMessage"
	Update        = "chat.update"
	PostEphemeral = "chat.postEphemeral"
	GetUploadURL  = "files.getUploadURLExternal"
	UploadFile    = "upload"
	CompleteFiles = "files.completeUploadExternal"
)

// Call is one recorded request.
type Call struct {
	Method   string
	Form     url.Values
	Channel  string // as requested (a name or an ID)
	TS       string // chat.update: the message updated; chat.postMessage: the ts answered
	ThreadTS string
	Text     string
	Blocks   json.RawMessage
	// Header holds the request's headers (Authorization carries the token).
	Header http.Header
	// File and FileName are the uploaded content (method "upload").
	File     []byte
	FileName string
}

// BlocksJSON returns the call's blocks as a string, "" when none.
func (c Call) BlocksJSON() string { return string(c.Blocks) }

// Message is a message as it stands in the fake workspace.
type Message struct {
	Channel  string // the channel ID
	TS       string
	ThreadTS string
	Text     string
	Blocks   json.RawMessage
	Updates  int
}

// Failure is an answer given instead of the real one.
type Failure struct {
	Status     int    // HTTP status (429, 500, …); 0 means 200 with ok:false
	RetryAfter int    // seconds, for 429
	SlackError string // with Status 0: the ok:false error code
}

// Server is a recording Slack API.
type Server struct {
	*slacktest.Server

	mu       sync.Mutex
	calls    []Call
	failures map[string][]Failure
	messages map[string]*Message // channel ID + "/" + ts
	channels map[string]string   // name → ID
	seq      int
	files    int
	changed  chan struct{}

	envelopes chan []byte
	acks      []json.RawMessage
	sockets   int
	groups    map[string][]string // user-group ID → member IDs (usergroups.go)
}

// New starts a server and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		failures:  map[string][]Failure{},
		messages:  map[string]*Message{},
		channels:  map[string]string{},
		changed:   make(chan struct{}),
		envelopes: make(chan []byte, 64),
	}
	s.Server = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", s.postMessage)
		c.Handle("/chat.update", s.update)
		c.Handle("/chat.postEphemeral", s.postEphemeral)
		c.Handle("/files.getUploadURLExternal", s.getUploadURL)
		c.Handle("/upload/", s.upload)
		c.Handle("/files.completeUploadExternal", s.completeUpload)
		c.Handle("/ws", s.socket)
		c.Handle("/usergroups.users.list", s.userGroupMembers)
	})
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// APIURL is the base URL to give slack-go (slack.api_url, a sink's api_url).
func (s *Server) APIURL() string { return s.GetAPIURL() }

// Fail makes the next n calls of method answer f.
func (s *Server) Fail(method string, n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures[method] = append(s.failures[method], f)
	}
}

// Calls returns the recorded calls of method ("" for all), in order.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Messages returns the messages of the fake workspace in posting order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.messages))
	for _, m := range s.messages {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Message) int { return strings.Compare(a.TS, b.TS) })
	return out
}

// Message returns one message.
func (s *Server) Message(channelID, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[channelID+"/"+ts]
	if !ok {
		return Message{}, false
	}
	return *m, true
}

// ChannelID is the ID the server gives a channel name.
func (s *Server) ChannelID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channelID(name)
}

// Wait polls until cond holds or the timeout passes (the test then fails).
func (s *Server) Wait(t testing.TB, timeout time.Duration, what string, cond func(*Server) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond(s) {
		if time.Now().After(deadline) {
			t.Fatalf("slackrec: %s did not happen within %s; calls: %s", what, timeout, s.summary())
		}
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) summary() string {
	var parts []string
	for _, c := range s.Calls("") {
		parts = append(parts, fmt.Sprintf("%s(%s %s %q)", c.Method, c.Channel, c.ThreadTS, trim(c.Text, 60)))
	}
	return strings.Join(parts, ", ")
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// record stores a call and wakes waiters; the caller holds mu.
func (s *Server) record(c Call) {
	s.calls = append(s.calls, c)
	close(s.changed)
	s.changed = make(chan struct{})
}

// fail answers a queued failure, if any; the caller holds mu.
func (s *Server) fail(w http.ResponseWriter, method string) bool {
	q := s.failures[method]
	if len(q) == 0 {
		return false
	}
	f := q[0]
	s.failures[method] = q[1:]
	switch {
	case f.Status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		w.WriteHeader(f.Status)
	case f.Status != 0:
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, "<html>server error</html>")
	default:
		writeJSON(w, map[string]any{"ok": false, "error": f.SlackError})
	}
	return true
}

func (s *Server) channelID(name string) string {
	if name == "" {
		return ""
	}
	if isID(name) {
		return name
	}
	if id, ok := s.channels[name]; ok {
		return id
	}
	id := fmt.Sprintf("C%08d", len(s.channels)+1)
	s.channels[name] = id
	return id
}

func isID(s string) bool {
	if len(s) < 9 || !strings.ContainsRune("CDG", rune(s[0])) {
		return false
	}
	for _, r := range s[1:] {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func readForm(r *http.Request) (url.Values, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		v := url.Values{}
		for k, x := range m {
			switch x := x.(type) {
			case string:
				v.Set(k, x)
			default:
				b, _ := json.Marshal(x)
				v.Set(k, string(b))
			}
		}
		return v, nil
	}
	return url.ParseQuery(string(body))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) call(method string, r *http.Request, form url.Values) Call {
	c := Call{
		Method: method, Form: form, Channel: form.Get("channel"), ThreadTS: form.Get("thread_ts"),
		Text: form.Get("text"), Header: r.Header.Clone(),
	}
	if b := form.Get("blocks"); b != "" {
		c.Blocks = json.RawMessage(b)
	}
	return c
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.call(PostMessage, r, form)
	if s.fail(w, PostMessage) {
		s.record(c)
		return
	}
	if c.Channel == "" {
		s.record(c)
		writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	s.seq++
	ts := fmt.Sprintf("%d.%06d", 1700000000+s.seq, s.seq)
	id := s.channelID(c.Channel)
	c.TS = ts
	s.messages[id+"/"+ts] = &Message{Channel: id, TS: ts, ThreadTS: c.ThreadTS, Text: c.Text, Blocks: c.Blocks}
	s.record(c)
	writeJSON(w, map[string]any{"ok": true, "channel": id, "ts": ts, "message": map[string]any{"text": c.Text, "ts": ts}})
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.call(Update, r, form)
	c.TS = form.Get("ts")
	if s.fail(w, Update) {
		s.record(c)
		return
	}
	s.record(c)
	m, ok := s.messages[c.Channel+"/"+c.TS]
	if !ok {
		writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
		return
	}
	m.Text, m.Blocks = c.Text, c.Blocks
	m.Updates++
	writeJSON(w, map[string]any{"ok": true, "channel": c.Channel, "ts": c.TS, "text": c.Text})
}

func (s *Server) postEphemeral(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.call(PostEphemeral, r, form)
	if s.fail(w, PostEphemeral) {
		s.record(c)
		return
	}
	s.record(c)
	s.seq++
	writeJSON(w, map[string]any{"ok": true, "message_ts": fmt.Sprintf("%d.%06d", 1700000000+s.seq, s.seq)})
}

func (s *Server) getUploadURL(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.call(GetUploadURL, r, form)
	c.FileName = form.Get("filename")
	if s.fail(w, GetUploadURL) {
		s.record(c)
		return
	}
	s.record(c)
	s.files++
	id := fmt.Sprintf("F%08d", s.files)
	writeJSON(w, map[string]any{"ok": true, "upload_url": "http://" + r.Host + "/upload/" + id, "file_id": id})
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	c := Call{Method: UploadFile, Header: r.Header.Clone(), Form: url.Values{"file_id": {strings.TrimPrefix(r.URL.Path, "/upload/")}}}
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && params["boundary"] != "" {
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			if p.FormName() == "file" {
				c.FileName = p.FileName()
				c.File, _ = io.ReadAll(p)
			}
		}
	} else {
		c.File, _ = io.ReadAll(r.Body)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail(w, UploadFile) {
		s.record(c)
		return
	}
	s.record(c)
	_, _ = io.WriteString(w, "OK - "+strconv.Itoa(len(c.File)))
}

func (s *Server) completeUpload(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.call(CompleteFiles, r, form)
	c.Channel = form.Get("channel_id")
	if s.fail(w, CompleteFiles) {
		s.record(c)
		return
	}
	s.record(c)
	var files []goslack.FileSummary
	_ = json.Unmarshal([]byte(form.Get("files")), &files)
	writeJSON(w, map[string]any{"ok": true, "files": files})
}

// Socket Mode.

// SendEnvelope queues a Socket Mode envelope (type interactive,
// events_api, …) for the connected client; payload is marshalled as the
// envelope's payload.
func (s *Server) SendEnvelope(t testing.TB, envelopeID, typ string, payload any) {
	t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := json.Marshal(map[string]any{
		"envelope_id": envelopeID, "type": typ, "payload": json.RawMessage(raw),
		"accepts_response_payload": false,
	})
	s.envelopes <- env
}

// Acks returns the envelope IDs the client acknowledged.
func (s *Server) Acks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, a := range s.acks {
		var m struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if json.Unmarshal(a, &m) == nil && m.EnvelopeID != "" {
			ids = append(ids, m.EnvelopeID)
		}
	}
	return ids
}

// SocketConnections counts Socket Mode connections made.
func (s *Server) SocketConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sockets
}

func (s *Server) socket(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	s.mu.Lock()
	s.sockets++
	s.record(Call{Method: "socket", Header: r.Header.Clone()})
	s.mu.Unlock()

	var wmu sync.Mutex
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		return conn.WriteMessage(websocket.TextMessage, b)
	}
	if err := write([]byte(`{"type":"hello","num_connections":1,"connection_info":{"app_id":"A0TEST"},"debug_info":{"host":"slackrec"}}`)); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.acks = append(s.acks, json.RawMessage(msg))
			s.record(Call{Method: "ack", Text: string(msg)})
			s.mu.Unlock()
		}
	}()
	for {
		select {
		case env := <-s.envelopes:
			if err := write(env); err != nil {
				s.envelopes <- env // for the next connection
				return
			}
		case <-done:
			return
		}
	}
}
