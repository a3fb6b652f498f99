package vendortest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// The vendors' endpoints, as their documentation describes the requests
// and answers. Each checks the method, path, authentication and the JSON
// shape and limits the vendor enforces, and answers a bad request the way
// the vendor does.

func jsonError(status int, body string) (int, string) { return status, body }

// MattermostWebhook is a Mattermost incoming webhook at /hooks/<id>; it
// answers "ok" as text.
func MattermostWebhook(t testing.TB, hookID string) *Fake {
	return NewFake(t, func(r *http.Request, body []byte) (int, string) {
		if r.Method != http.MethodPost || r.URL.Path != "/hooks/"+hookID {
			return jsonError(http.StatusNotFound, `{"id":"web.incoming_webhook.invalid.app_error","message":"Invalid webhook.","status_code":404}`)
		}
		m, bad := JSONBody(body)
		if bad != "" {
			return jsonError(http.StatusBadRequest, `{"id":"web.incoming_webhook.parse.app_error","message":"Unable to parse incoming data.","status_code":400}`)
		}
		att, _ := m["attachments"].([]any)
		if m["text"] == nil && len(att) == 0 {
			return jsonError(http.StatusBadRequest, `{"id":"web.incoming_webhook.text.app_error","message":"No text specified.","status_code":400}`)
		}
		return mattermostLimits(m)
	}, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	})
}

// MattermostAPI is Mattermost's REST API: POST /api/v4/posts with a bearer
// token, answering 201 with the created post, and
// GET /api/v4/teams/name/<team>/channels/name/<channel> answering the
// channel (its ID is channelID).
func MattermostAPI(t testing.TB, token, channelID, team, channel string) *Fake {
	return NewFake(t, func(r *http.Request, body []byte) (int, string) {
		if r.Method == http.MethodGet && r.Header.Get("Authorization") == "Bearer "+token {
			if r.URL.Path == "/api/v4/teams/name/"+team+"/channels/name/"+channel {
				return 0, ""
			}
			return jsonError(http.StatusNotFound, `{"id":"app.channel.get_by_name.missing.app_error","message":"Channel does not exist.","status_code":404}`)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/api/v4/posts" {
			return jsonError(http.StatusNotFound, `{"id":"api.context.404.app_error","message":"Sorry, we could not find the page.","status_code":404}`)
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			return jsonError(http.StatusUnauthorized, `{"id":"api.context.session_expired.app_error","message":"Invalid or expired session, please login again.","status_code":401}`)
		}
		m, bad := JSONBody(body)
		if bad != "" || m["channel_id"] != channelID {
			return jsonError(http.StatusBadRequest, `{"id":"api.context.invalid_body_param.app_error","message":"Invalid or missing post in request body.","status_code":400}`)
		}
		props, _ := m["props"].(map[string]any)
		return mattermostLimits(props)
	}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, `{"id":"`+channelID+`","name":"`+channel+`","type":"O"}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"q7xw5o3bgjfs9ptbi5eyam1pdh","channel_id":"`+channelID+`","message":""}`)
	})
}

func mattermostLimits(m map[string]any) (int, string) {
	att, _ := m["attachments"].([]any)
	for _, a := range att {
		am, _ := a.(map[string]any)
		if s, _ := am["text"].(string); utf8.RuneCountInString(s) > 16383 {
			return jsonError(http.StatusBadRequest, `{"id":"model.post.is_valid.msg.app_error","message":"Invalid Message.","status_code":400}`)
		}
	}
	return 0, ""
}

// DiscordWebhook is a Discord webhook at /api/webhooks/<id>/<token>. With
// ?wait=true it answers 200 with the message, otherwise 204. It enforces
// Discord's limits: content 2000, 10 embeds, title 256, description 4096,
// 25 fields of name 256 and value 1024, footer 2048, 6000 in all embeds.
func DiscordWebhook(t testing.TB, id, token string) *Fake {
	return NewFake(t, func(r *http.Request, body []byte) (int, string) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/webhooks/"+id+"/"+token {
			return jsonError(http.StatusUnauthorized, `{"message": "Invalid Webhook Token", "code": 50027}`)
		}
		m, bad := JSONBody(body)
		if bad != "" {
			return jsonError(http.StatusBadRequest, `{"message": "Cannot send an empty message", "code": 50006}`)
		}
		var errs []string
		limit := func(field string, v any, n int) int {
			s, _ := v.(string)
			c := utf8.RuneCountInString(s)
			if c > n {
				errs = append(errs, fmt.Sprintf("%s: Must be %d or fewer in length.", field, n))
			}
			return c
		}
		limit("content", m["content"], 2000)
		embeds, _ := m["embeds"].([]any)
		if m["content"] == nil && len(embeds) == 0 {
			return jsonError(http.StatusBadRequest, `{"message": "Cannot send an empty message", "code": 50006}`)
		}
		if len(embeds) > 10 {
			errs = append(errs, "embeds: Must be 10 or fewer in length.")
		}
		total := 0
		for i, e := range embeds {
			em, _ := e.(map[string]any)
			p := fmt.Sprintf("embeds.%d.", i)
			total += limit(p+"title", em["title"], 256) + limit(p+"description", em["description"], 4096)
			if ft, ok := em["footer"].(map[string]any); ok {
				total += limit(p+"footer.text", ft["text"], 2048)
			}
			fields, _ := em["fields"].([]any)
			if len(fields) > 25 {
				errs = append(errs, p+"fields: Must be 25 or fewer in length.")
			}
			for j, fl := range fields {
				fm, _ := fl.(map[string]any)
				if fm["name"] == "" || fm["value"] == "" {
					errs = append(errs, fmt.Sprintf("%sfields.%d: This field is required", p, j))
				}
				total += limit(fmt.Sprintf("%sfields.%d.name", p, j), fm["name"], 256) + limit(fmt.Sprintf("%sfields.%d.value", p, j), fm["value"], 1024)
			}
		}
		if total > 6000 {
			errs = append(errs, "embeds: Embed size exceeds maximum size of 6000")
		}
		if len(errs) > 0 {
			return jsonError(http.StatusBadRequest, fmt.Sprintf(`{"message": "Invalid Form Body", "code": 50035, "errors": %q}`, strings.Join(errs, "; ")))
		}
		return 0, ""
	}, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") != "true" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"1290021540218421349","type":0,"channel_id":"1290021540218421300"}`)
	})
}

// DiscordRateLimited is the answer Discord gives a webhook over its rate
// limit: 429, Retry-After and the JSON body with retry_after.
var DiscordRateLimited = Failure{Status: http.StatusTooManyRequests, RetryAfter: "2",
	Body: `{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}`}

// TelegramBot is the Telegram Bot API: POST /bot<token>/sendMessage
// answering {"ok":true,"result":{…}}; errors are {"ok":false,
// "error_code":…,"description":…}. It checks parse_mode HTML's tags are
// balanced the way Telegram's parser refuses unbalanced ones, and the
// 4096-character limit on the text once entities are parsed.
func TelegramBot(t testing.TB, token string) *Fake {
	return NewFake(t, func(r *http.Request, body []byte) (int, string) {
		if r.Method != http.MethodPost || r.URL.Path != "/bot"+token+"/sendMessage" {
			return jsonError(http.StatusNotFound, `{"ok":false,"error_code":404,"description":"Not Found"}`)
		}
		m, bad := JSONBody(body)
		if bad != "" {
			return jsonError(http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: message text is empty"}`)
		}
		if m["chat_id"] == nil || m["chat_id"] == "" {
			return jsonError(http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`)
		}
		text, _ := m["text"].(string)
		if strings.TrimSpace(text) == "" {
			return jsonError(http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: message text is empty"}`)
		}
		if m["parse_mode"] == "HTML" {
			plain, err := TelegramHTML(text)
			if err != "" {
				return jsonError(http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities: `+err+`"}`)
			}
			text = plain
		}
		if utf8.RuneCountInString(text) > 4096 {
			return jsonError(http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: message is too long"}`)
		}
		return 0, ""
	}, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"result":{"message_id":42,"chat":{"id":-1001234567890,"type":"supergroup"},"date":1741944413,"text":"…"}}`)
	})
}

// TelegramRateLimited is Telegram's 429 as documented: the wait is in the
// body's parameters.retry_after, not promised in a Retry-After header.
var TelegramRateLimited = Failure{Status: http.StatusTooManyRequests,
	Body: `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}`}

// TelegramHTML parses Telegram's HTML subset the way the Bot API does:
// only <b>, <i>, <code>, <pre>, <a href="…"> (and a few more) are tags,
// they must nest, and &lt; &gt; &amp; &quot; are the entities. It returns
// the text without tags, or why it cannot be parsed.
func TelegramHTML(s string) (string, string) {
	allowed := map[string]bool{"b": true, "strong": true, "i": true, "em": true, "u": true, "s": true, "code": true, "pre": true, "a": true, "blockquote": true, "tg-spoiler": true}
	var stack []string
	var out strings.Builder
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				return "", fmt.Sprintf("unclosed start tag at byte offset %d", i)
			}
			tag := s[i+1 : i+end]
			if strings.HasPrefix(tag, "/") {
				name := tag[1:]
				if len(stack) == 0 || stack[len(stack)-1] != name {
					return "", fmt.Sprintf("unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", i, last(stack), name)
				}
				stack = stack[:len(stack)-1]
			} else {
				name, attrs, _ := strings.Cut(tag, " ")
				if !allowed[name] {
					return "", fmt.Sprintf("unsupported start tag \"%s\" at byte offset %d", name, i)
				}
				if name == "a" && !strings.HasPrefix(attrs, `href="`) {
					return "", fmt.Sprintf("tag \"a\" must have href at byte offset %d", i)
				}
				stack = append(stack, name)
			}
			i += end + 1
		case '&':
			end := strings.IndexByte(s[i:], ';')
			if end < 0 {
				return "", fmt.Sprintf("character entity expected at byte offset %d", i)
			}
			ent := s[i : i+end+1]
			rep, ok := map[string]string{"&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": `"`}[ent]
			if !ok {
				return "", fmt.Sprintf("unsupported entity %s at byte offset %d", ent, i)
			}
			out.WriteString(rep)
			i += end + 1
		case '>':
			return "", fmt.Sprintf("unexpected > at byte offset %d", i)
		default:
			out.WriteByte(s[i])
			i++
		}
	}
	if len(stack) > 0 {
		return "", fmt.Sprintf("can't find end tag corresponding to start tag \"%s\"", last(stack))
	}
	return out.String(), ""
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

var gchatMessageID = regexp.MustCompile(`^client-[a-z0-9-]{1,56}$`)

// GoogleChat is a Google Chat space's incoming webhook:
// POST /v1/spaces/<space>/messages?key=…&token=…, answering the created
// message with its thread. A messageId already used in the space is
// refused with 409 ALREADY_EXISTS, as Google Chat does; a threadKey always
// is the thread's name (GoogleChatThreads counts them). Errors are Google's JSON error object.
func GoogleChat(t testing.TB, space, key, token string) *Fake {
	var mu sync.Mutex
	ids := map[string]bool{}
	gerr := func(code int, status, msg string) (int, string) {
		return code, fmt.Sprintf(`{"error": {"code": %d, "message": %q, "status": %q}}`, code, msg, status)
	}
	return NewFake(t, func(r *http.Request, body []byte) (int, string) {
		q := r.URL.Query()
		if r.Method != http.MethodPost || r.URL.Path != "/v1/spaces/"+space+"/messages" {
			return gerr(http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.")
		}
		if q.Get("key") != key || q.Get("token") != token {
			return gerr(http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
		}
		m, bad := JSONBody(body)
		if bad != "" {
			return gerr(http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
		}
		cards, _ := m["cardsV2"].([]any)
		if m["text"] == nil && len(cards) == 0 {
			return gerr(http.StatusBadRequest, "INVALID_ARGUMENT", "Message cannot be empty.")
		}
		if len(body) > 32000 {
			return gerr(http.StatusBadRequest, "INVALID_ARGUMENT", "Message too large.")
		}
		if id := q.Get("messageId"); id != "" {
			if !gchatMessageID.MatchString(id) {
				return gerr(http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid custom message ID.")
			}
			mu.Lock()
			dup := ids[id]
			ids[id] = true
			mu.Unlock()
			if dup {
				return gerr(http.StatusConflict, "ALREADY_EXISTS", "Message with the same client-assigned message ID already exists.")
			}
		}
		if th, ok := m["thread"].(map[string]any); ok && th["threadKey"] != nil && q.Get("messageReplyOption") == "" {
			return gerr(http.StatusBadRequest, "INVALID_ARGUMENT", "thread.threadKey needs messageReplyOption.")
		}
		return 0, ""
	}, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_, _ = fmt.Fprintf(w, `{"name": "spaces/%s/messages/m%d"}`, space, len(ids))
	})
}

// GoogleChatThreads maps each accepted request's threadKey to the number of
// messages posted with it.
func GoogleChatThreads(f *Fake) map[string]int {
	out := map[string]int{}
	for _, r := range f.Accepted() {
		var m struct {
			Thread struct {
				ThreadKey string `json:"threadKey"`
			} `json:"thread"`
		}
		_ = json.Unmarshal(r.Body, &m)
		out[m.Thread.ThreadKey]++
	}
	return out
}

// Webex is the Webex messages API: POST /v1/messages with a bearer token,
// answering the created message; errors carry message, errors and
// trackingId. It enforces the 7439-byte limit on markdown and text.
func Webex(t testing.TB, token, roomID string) *Fake {
	werr := func(code int, msg string) (int, string) {
		return code, fmt.Sprintf(`{"message": %q, "errors": [{"description": %q}], "trackingId": "ROUTER_6745A1B2-9C3D"}`, msg, msg)
	}
	return NewFake(t, func(r *http.Request, body []byte) (int, string) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
			return werr(http.StatusNotFound, "The requested resource could not be found.")
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			return werr(http.StatusUnauthorized, "The request requires a valid access token set in the Authorization request header.")
		}
		m, bad := JSONBody(body)
		if bad != "" {
			return werr(http.StatusBadRequest, "Unable to parse the request body.")
		}
		if m["roomId"] != roomID {
			return werr(http.StatusNotFound, "Could not find a room with provided ID.")
		}
		md, _ := m["markdown"].(string)
		text, _ := m["text"].(string)
		if md == "" && text == "" {
			return werr(http.StatusBadRequest, "Message must contain text, markdown, files or attachments.")
		}
		if len(md) > 7439 || len(text) > 7439 {
			return werr(http.StatusBadRequest, "Message exceeds the maximum length of 7439 bytes.")
		}
		return 0, ""
	}, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"id": "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvOTJkYjNiZTAtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk", "roomId": %q, "roomType": "group"}`, roomID)
	})
}
