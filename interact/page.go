package interact

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/chatfmt"
)

//go:embed page.html.tmpl
var pageFS embed.FS

var pageTmpl = template.Must(template.New("page.html.tmpl").Funcs(template.FuncMap{
	"webURL": func(s string) bool { return chatfmt.IsWebURL(s) },
	"png": func(b []byte) template.URL {
		// Only bytes that are a PNG become a data: URL; anything else is
		// left out rather than handed to the browser.
		if len(b) < 8 || string(b[:8]) != "\x89PNG\r\n\x1a\n" {
			return ""
		}
		return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b))
	},
	"lastLines": func(s string, n int) string { t, _ := chatfmt.LastLines(s, n); return t },
	"lines":     chatfmt.CountLines,
	"cell": func(row []string, i int) string {
		if i < len(row) {
			return row[i]
		}
		return ""
	},
	"cols": func(t *event.TableBlock) []int {
		n := len(t.Headers)
		for _, r := range t.Rows {
			n = max(n, len(r))
		}
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	},
}).ParseFS(pageFS, "page.html.tmpl"))

// pageLogLines bounds the lines a log shows on the page.
const pageLogLines = 2000

type pageData struct {
	F         *event.Finding
	Status    string
	Severity  string
	Resolved  bool
	Duration  string
	Subject   []chatfmt.Fact
	Labels    []chatfmt.Fact
	Links     []event.Link
	AskURL    template.URL
	AnswerURL template.URL
	Nonce     string
	LogLines  int
}

// RegisterRoutes adds the Slack endpoints and the finding page to mux.
func (s *Service) RegisterRoutes(mux *http.ServeMux) {
	mux.Handle("POST /slack/interactions", s.InteractionsHandler())
	mux.Handle("POST /slack/events", s.EventsHandler())
	mux.HandleFunc("GET /findings/{id}", s.page)
	mux.HandleFunc("POST /findings/{id}/ask", s.pageAsk)
	mux.HandleFunc("GET /findings/{id}/answer", s.pageAnswer)
}

// checkLink verifies the request's signed link; it answers the error.
func (s *Service) checkLink(w http.ResponseWriter, r *http.Request, html bool) (string, bool) {
	id := r.PathValue("id")
	if s.o.Links == nil {
		http.NotFound(w, r)
		return "", false
	}
	err := s.o.Links.Check(id, r.URL.Query())
	if err == nil {
		return id, true
	}
	msg := "This link is not valid."
	if errors.Is(err, ErrLinkExpired) {
		msg = "This link has expired. Open the finding again from its latest message."
	}
	if html {
		errorPage(w, http.StatusForbidden, msg)
	} else {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": msg})
	}
	return "", false
}

// securityHeaders keep the page to itself: nothing loads from elsewhere,
// only its own script runs, the signed URL is not sent as a referrer.
func securityHeaders(w http.ResponseWriter, nonce string) {
	h := w.Header()
	csp := "default-src 'none'; img-src data:; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if nonce != "" {
		csp += "; script-src 'nonce-" + nonce + "'"
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

func errorPage(w http.ResponseWriter, status int, msg string) {
	securityHeaders(w, "")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><meta charset=utf-8><title>medic</title><p>%s</p>\n", template.HTMLEscapeString(msg))
}

func (s *Service) page(w http.ResponseWriter, r *http.Request) {
	id, ok := s.checkLink(w, r, true)
	if !ok {
		return
	}
	f, err := s.o.Findings.Get(r.Context(), id)
	if errors.Is(err, sinks.ErrFindingNotFound) {
		errorPage(w, http.StatusNotFound, "This finding is no longer stored (medic keeps findings for a while after delivering them).")
		return
	}
	if err != nil {
		s.logger.Error("finding page: read finding", "finding", id, "err", err)
		errorPage(w, http.StatusServiceUnavailable, "The finding could not be read; try again.")
		return
	}
	nb := make([]byte, 16)
	_, _ = rand.Read(nb)
	q := r.URL.Query()
	signed := "?exp=" + q.Get("exp") + "&sig=" + q.Get("sig")
	d := pageData{
		F: f, Status: chatfmt.Status(f), Severity: chatfmt.Severity(f), Resolved: chatfmt.Resolved(f),
		Subject: chatfmt.Subject(f, ""), Labels: chatfmt.ExtraLabels(&f.Event), Links: chatfmt.AlertLinks(&f.Event),
		// Relative to /findings/<id>, so a path prefix in front of medic works.
		AskURL:    template.URL(id + "/ask" + signed),
		AnswerURL: template.URL(id + "/answer" + signed),
		Nonce:     base64.RawStdEncoding.EncodeToString(nb),
		LogLines:  pageLogLines,
	}
	if dd, ok := chatfmt.ResolvedAfter(f); ok && d.Resolved {
		d.Duration = chatfmt.Duration(dd)
	}
	securityHeaders(w, d.Nonce)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, d); err != nil {
		s.logger.Error("finding page: render", "finding", id, "err", err)
	}
}

// pageAsk starts (or joins) the finding's Ask AI; the page then polls
// pageAnswer.
func (s *Service) pageAsk(w http.ResponseWriter, r *http.Request) {
	id, ok := s.checkLink(w, r, false)
	if !ok {
		return
	}
	securityHeaders(w, "")
	if st, err := s.AskState(r.Context(), id); err == nil && st != nil {
		switch {
		case st.Status == AskRunning && s.now().Sub(st.StartedAt) < s.o.AskTimeout:
			// Join the running answer rather than start a second one.
			writeJSON(w, http.StatusAccepted, map[string]string{"status": AskRunning, "request": st.RequestID})
			return
		case st.Status == AskDone && !st.Failed:
			writeJSON(w, http.StatusOK, map[string]string{"status": AskDone, "request": st.RequestID})
			return
		}
	}
	rb := make([]byte, 8)
	_, _ = rand.Read(rb)
	j := Job{Kind: KindAskAI, FindingID: id, Origin: OriginPage, RequestID: "page-" + base64.RawURLEncoding.EncodeToString(rb), At: s.now().UTC()}
	if err := publish(r.Context(), s.js, j); err != nil {
		s.logger.Error("finding page: queue Ask AI", "finding", id, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "could not ask; try again"})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": AskRunning, "request": j.RequestID})
}

// pageAnswerBody is what the page's script reads.
type pageAnswerBody struct {
	Status  string       `json:"status"` // none, running, done
	Request string       `json:"request,omitempty"`
	Texts   []string     `json:"texts,omitempty"`
	Links   []event.Link `json:"links,omitempty"`
	Asked   time.Time    `json:"asked,omitzero"`
}

func (s *Service) pageAnswer(w http.ResponseWriter, r *http.Request) {
	id, ok := s.checkLink(w, r, false)
	if !ok {
		return
	}
	securityHeaders(w, "")
	st, err := s.AskState(r.Context(), id)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "could not read the answer; try again"})
		return
	}
	body := pageAnswerBody{Status: "none"}
	if st != nil {
		body.Status, body.Request, body.Asked = st.Status, st.RequestID, st.StartedAt
		if st.Answer != nil && st.Status == AskDone {
			for _, b := range st.Answer.Blocks {
				switch b.Kind {
				case event.BlockMarkdown:
					body.Texts = append(body.Texts, strings.TrimSpace(b.Markdown))
				case event.BlockLinks:
					for _, l := range b.Links {
						if chatfmt.IsWebURL(l.URL) {
							body.Links = append(body.Links, l)
						}
					}
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
