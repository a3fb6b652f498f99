package rag

import (
	"bytes"
	"strings"

	"golang.org/x/net/html"
)

// extractHTML writes an HTML page's text as markdown: h1-h6 become ATX
// headings, block elements end lines, script and style are dropped.
func extractHTML(b *bytes.Buffer, s string) {
	z := html.NewTokenizer(strings.NewReader(s))
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch tag := string(name); tag {
			case "script", "style", "noscript", "svg", "head":
				skip++
			case "h1", "h2", "h3", "h4", "h5", "h6":
				b.WriteString("\n\n" + strings.Repeat("#", int(tag[1]-'0')) + " ")
			case "p", "div", "section", "article", "li", "tr", "pre", "br", "table", "ul", "ol", "blockquote":
				b.WriteString("\n")
				if tag == "li" {
					b.WriteString("- ")
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch tag := string(name); tag {
			case "script", "style", "noscript", "svg", "head":
				if skip > 0 {
					skip--
				}
			case "h1", "h2", "h3", "h4", "h5", "h6":
				b.WriteString("\n")
			case "p", "div", "pre", "table", "ul", "ol", "blockquote":
				b.WriteString("\n\n")
			case "td", "th":
				b.WriteString(" ")
			}
		case html.TextToken:
			if skip == 0 {
				t := string(z.Text())
				if strings.TrimSpace(t) != "" {
					b.WriteString(strings.Join(strings.Fields(t), " "))
					if strings.HasSuffix(t, " ") || strings.HasSuffix(t, "\n") {
						b.WriteString(" ")
					}
				}
			}
		}
	}
}
