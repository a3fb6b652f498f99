package email

import (
	"bytes"
	"fmt"
	"html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/chatfmt"
	"github.com/medichq/medic/sinks/internal/incident"
)

// Composer renders findings as mail messages. The message depends only on
// the finding and the settings (its Date is the finding's creation time),
// so a redelivery produces the same bytes under the same Message-ID.
type Composer struct {
	Sink          string
	From          *mail.Address
	To            []*mail.Address
	SubjectPrefix string
	Cluster       string
	// PageURL links to medic's finding page; nil or "" for none.
	PageURL func(id string) string
}

// maxTitle bounds the subject's title; mail clients show far less.
const maxTitle = 200

// Subject is the message's subject, before MIME encoding.
func (c Composer) Subject(f *event.Finding) string {
	s := fmt.Sprintf("%s %s %s: %s", c.SubjectPrefix, chatfmt.Status(f), chatfmt.Severity(f), incident.Title(f, maxTitle))
	return strings.TrimSpace(s)
}

// MessageID is the Message-ID for f, without angle brackets.
func (c Composer) MessageID(f *event.Finding) string {
	return sinks.IdempotencyKey(c.Sink, f.ID) + "@" + c.domain()
}

func (c Composer) domain() string {
	if i := strings.LastIndexByte(c.From.Address, '@'); i >= 0 && i < len(c.From.Address)-1 {
		return c.From.Address[i+1:]
	}
	return "medic.invalid"
}

// Message renders f as an RFC 5322 message with CRLF line ends.
func (c Composer) Message(f *event.Finding) ([]byte, error) {
	links := c.links(f)
	var html bytes.Buffer
	if err := htmlTmpl.Execute(&html, c.view(f, links)); err != nil {
		return nil, fmt.Errorf("render HTML: %w", err)
	}
	text := incident.Text(f, 0)
	if len(links) > 0 {
		text += "\n\n"
		for _, l := range links {
			text += l.Label + ": " + l.URL + "\n"
		}
	}

	var b bytes.Buffer
	boundary := "medic-" + sinks.IdempotencyKey(c.Sink, f.ID)
	to := make([]string, len(c.To))
	for i, a := range c.To {
		to[i] = a.String()
	}
	date := f.CreatedAt
	if date.IsZero() {
		date = time.Now()
	}
	header := [][2]string{
		{"From", c.From.String()},
		{"To", strings.Join(to, ", ")},
		{"Subject", mime.QEncoding.Encode("utf-8", c.Subject(f))},
		{"Date", date.UTC().Format(time.RFC1123Z)},
		{"Message-ID", "<" + c.MessageID(f) + ">"},
		// One thread per alert lifetime: the firing and the resolved
		// message (different findings) refer to the same root.
		{"References", "<" + incident.LifetimeKey(c.Sink, f) + "@" + c.domain() + ">"},
		{"Auto-Submitted", "auto-generated"}, // RFC 3834: no vacation replies
		{"X-Medic-Finding-Id", headerSafe(f.ID)},
		{"MIME-Version", "1.0"},
		{"Content-Type", `multipart/alternative; boundary="` + boundary + `"`},
	}
	for _, h := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	b.WriteString("\r\n")
	mw := multipart.NewWriter(&b)
	if err := mw.SetBoundary(boundary); err != nil {
		return nil, err
	}
	for _, part := range []struct{ typ, body string }{{"text/plain", text}, {"text/html", html.String()}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(strings.ReplaceAll(part.body, "\n", "\r\n"))); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// headerSafe keeps a value from the finding to one header line: no line
// breaks or other control characters can add a header (or a recipient).
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func (c Composer) links(f *event.Finding) []event.Link {
	var links []event.Link
	if c.PageURL != nil {
		if u := c.PageURL(f.ID); u != "" {
			links = append(links, event.Link{Label: "Finding page", URL: u})
		}
	}
	return append(links, chatfmt.AlertLinks(&f.Event)...)
}

// view is what the HTML template shows.
type view struct {
	Status, Severity, Color, Title, Description string
	Facts                                       []chatfmt.Fact
	Enrichments                                 []enrichmentView
	Links                                       []event.Link
	ID                                          string
}

type enrichmentView struct {
	Title  string
	Blocks []event.Block
}

func (c Composer) view(f *event.Finding, links []event.Link) view {
	v := view{
		Status: chatfmt.Status(f), Severity: chatfmt.Severity(f), Title: f.Title, Description: f.Description,
		Facts: chatfmt.Subject(f, c.Cluster), Links: links, ID: f.ID, Color: "#d0342c",
	}
	switch {
	case chatfmt.Resolved(f):
		v.Color = "#2e7d32"
	case f.Severity == event.SeverityWarning:
		v.Color = "#e6a700"
	case f.Severity == event.SeverityInfo || f.Severity == event.SeverityNone || f.Severity == "":
		v.Color = "#1565c0"
	}
	if d, ok := chatfmt.ResolvedAfter(f); ok && chatfmt.Resolved(f) {
		v.Facts = append(v.Facts, chatfmt.Fact{Name: "Resolved after", Value: chatfmt.Duration(d)})
	}
	for _, e := range f.Enrichments {
		ev := enrichmentView{Title: e.Title, Blocks: e.Blocks}
		if ev.Title == "" {
			ev.Title = e.Source
		}
		v.Enrichments = append(v.Enrichments, ev)
	}
	return v
}

// htmlTmpl keeps to what mail clients render: tables and inline styles, no
// CSS blocks, no scripts, no remote images. html/template escapes
// everything that came from the cluster; links are only http(s).
var htmlTmpl = template.Must(template.New("email").Funcs(template.FuncMap{
	"weburl":  chatfmt.IsWebURL,
	"imgsize": func(n int) string { return chatfmt.Bytes(n) },
}).Parse(`<!doctype html>
<html><body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#1f2328">
<div style="border-left:4px solid {{.Color}};padding:4px 12px">
<p style="margin:0;font-size:12px;color:{{.Color}};font-weight:bold">{{.Status}} · {{.Severity}}</p>
<h2 style="margin:4px 0 8px 0;font-size:18px">{{.Title}}</h2>
{{- if .Facts}}
<table style="border-collapse:collapse;font-size:13px">
{{- range .Facts}}
<tr><td style="padding:1px 12px 1px 0;color:#59636e">{{.Name}}</td><td style="padding:1px 0">{{.Value}}</td></tr>
{{- end}}
</table>
{{- end}}
{{- if .Description}}
<p style="white-space:pre-wrap">{{.Description}}</p>
{{- end}}
</div>
{{- range .Enrichments}}
<h3 style="font-size:15px;margin:16px 0 6px 0">{{.Title}}</h3>
{{- range .Blocks}}
{{- if eq .Kind "markdown"}}
<p style="white-space:pre-wrap;margin:4px 0">{{.Markdown}}</p>
{{- else if and (eq .Kind "table") .Table}}
<table style="border-collapse:collapse;font-size:13px">
{{- if .Table.Headers}}
<tr>{{range .Table.Headers}}<th style="text-align:left;border-bottom:1px solid #d1d9e0;padding:2px 8px">{{.}}</th>{{end}}</tr>
{{- end}}
{{- range .Table.Rows}}
<tr>{{range .}}<td style="padding:2px 8px;vertical-align:top">{{.}}</td>{{end}}</tr>
{{- end}}
</table>
{{- else if and (eq .Kind "log") .Log}}
<p style="margin:4px 0;color:#59636e;font-size:12px">{{.Log.Source}}{{if .Log.Truncated}} (truncated){{end}}</p>
<pre style="background:#f6f8fa;padding:8px;font-size:12px;overflow:auto">{{.Log.Text}}</pre>
{{- else if eq .Kind "links"}}
<ul>{{range .Links}}{{if weburl .URL}}<li><a href="{{.URL}}">{{if .Label}}{{.Label}}{{else}}{{.URL}}{{end}}</a></li>{{end}}{{end}}</ul>
{{- else if and (eq .Kind "image") .Image}}
<p style="color:#59636e">[image {{.Image.Name}}, {{imgsize (len .Image.PNG)}}: on the finding page]</p>
{{- end}}
{{- end}}
{{- end}}
{{- if .Links}}
<p style="margin-top:16px">{{range $i, $l := .Links}}{{if $i}} · {{end}}<a href="{{$l.URL}}">{{$l.Label}}</a>{{end}}</p>
{{- end}}
<p style="color:#59636e;font-size:11px">medic finding {{.ID}}</p>
</body></html>
`))
