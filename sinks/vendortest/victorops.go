package vendortest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"unicode/utf8"
)

// VictorOpsPath is the path of Splunk On-Call's REST endpoint integration
// for an API key and a routing key.
func VictorOpsPath(apiKey, routingKey string) string {
	return "/integrations/generic/20131114/alert/" + apiKey + "/" + routingKey
}

// VictorOpsMessageTypes are the REST endpoint's message types.
var VictorOpsMessageTypes = []string{"CRITICAL", "WARNING", "ACKNOWLEDGEMENT", "INFO", "RECOVERY"}

// VictorOps is Splunk On-Call's (VictorOps') REST endpoint integration at
// VictorOpsPath(apiKey, routingKey). It takes what Splunk On-Call documents:
// a POST of one flat JSON object with a message_type among
// VictorOpsMessageTypes and a state_message of at most 20480 characters,
// and answers 200 {"result":"success","entity_id":…}; a bad message is
// 400 {"result":"failure","message":…}. An unknown API key or routing key
// is a 404 here (Splunk On-Call does not document that answer; the double
// only has to refuse it). Custom fields must be strings, numbers or
// booleans: the double refuses nested values, which Splunk On-Call would
// show as text, so a sink does not rely on them. VictorOpsIncidents reads
// the incidents the accepted messages make.
func VictorOps(t testing.TB, apiKey, routingKey string) *Fake {
	fail := func(status int, msg string) (int, string) {
		return status, fmt.Sprintf(`{"result":"failure","message":%q}`, msg)
	}
	// The Fake calls check and then answer under its lock, one request at
	// a time: answer echoes the entity_id check saw.
	var entityID string
	return NewFake(t, func(r *http.Request, body []byte) (int, string) {
		if r.Method != http.MethodPost || r.URL.Path != VictorOpsPath(apiKey, routingKey) {
			return fail(http.StatusNotFound, "Not Found")
		}
		m, bad := JSONBody(body)
		if bad != "" {
			return fail(http.StatusBadRequest, "Could not parse JSON: "+bad)
		}
		mt, _ := m["message_type"].(string)
		if !slices.Contains(VictorOpsMessageTypes, mt) {
			return fail(http.StatusBadRequest, "Missing fields: message_type")
		}
		if sm, _ := m["state_message"].(string); utf8.RuneCountInString(sm) > 20480 {
			return fail(http.StatusBadRequest, "state_message exceeds 20480 characters")
		}
		for k, v := range m {
			switch v.(type) {
			case map[string]any, []any:
				return fail(http.StatusBadRequest, "field "+k+" is not a string, a number or a boolean")
			}
		}
		entityID, _ = m["entity_id"].(string)
		return 0, ""
	}, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"result":"success","entity_id":%q}`, entityID)
	})
}

// VictorOpsIncident is one incident as Splunk On-Call keeps it from the
// REST endpoint's messages.
type VictorOpsIncident struct {
	EntityID string
	// Criticals counts the CRITICAL messages it holds (1 when none was
	// repeated).
	Criticals int
	Resolved  bool
	// First is the CRITICAL message that opened it.
	First json.RawMessage
}

// VictorOpsIncidents replays the messages f accepted, in order, the way
// Splunk On-Call keeps incidents by entity_id: a CRITICAL opens one, or
// joins the open one of its entity_id without paging again; a RECOVERY
// resolves it. WARNING and INFO messages only go on the timeline.
func VictorOpsIncidents(f *Fake) []VictorOpsIncident {
	var out []VictorOpsIncident
	open := func(id string) *VictorOpsIncident {
		for i := range out {
			if out[i].EntityID == id && !out[i].Resolved {
				return &out[i]
			}
		}
		return nil
	}
	for _, r := range f.Accepted() {
		var m struct {
			MessageType string `json:"message_type"`
			EntityID    string `json:"entity_id"`
		}
		if json.Unmarshal(r.Body, &m) != nil || m.EntityID == "" {
			continue
		}
		switch in := open(m.EntityID); {
		case m.MessageType == "CRITICAL" && in != nil:
			in.Criticals++
		case m.MessageType == "CRITICAL":
			out = append(out, VictorOpsIncident{EntityID: m.EntityID, Criticals: 1, First: r.Body})
		case m.MessageType == "RECOVERY" && in != nil:
			in.Resolved = true
		}
	}
	return out
}

// VictorOpsResolvedOnce counts the incidents opened once and resolved by
// the string field (a custom field such as "pod") of the message that
// opened them; an incident still open, or paged more than once, is counted
// under "open or paged again: <value>", for a test to report as a loss or
// a duplicate.
func VictorOpsResolvedOnce(f *Fake, field string) map[string]int {
	out := map[string]int{}
	for _, in := range VictorOpsIncidents(f) {
		var m map[string]any
		_ = json.Unmarshal(in.First, &m)
		v, _ := m[field].(string)
		if in.Resolved && in.Criticals == 1 {
			out[v]++
		} else {
			out["open or paged again: "+v]++
		}
	}
	return out
}
