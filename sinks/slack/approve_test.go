package slack

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/medichq/medic/event"
)

// A proposed remediation renders as an Approve button behind a
// confirmation dialog, whatever the buttons parameter says; at most five.
func TestRenderApproveButtons(t *testing.T) {
	t.Parallel()
	f := &event.Finding{ID: "f1", Title: "cart crash looping", Severity: event.SeverityCritical}
	for i := range 7 {
		f.Proposed = append(f.Proposed, event.ProposedAction{ID: "p" + string(rune('0'+i)), Action: "delete_pod",
			Summary: "delete pod shop/cart-" + string(rune('0'+i))})
	}
	r := Render(f, RenderOptions{})
	b, err := json.Marshal(r.Main.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	if n := strings.Count(js, `"action_id":"`+ActionApprovePrefix); n != 5 {
		t.Fatalf("%d Approve buttons, want 5:\n%s", n, js)
	}
	for _, want := range []string{`"action_id":"medic_approve.p0"`, `"value":"f1"`, `"style":"danger"`, `"text":"✅ Approve: delete pod shop/cart-0"`, `"confirm":{`, `"text":"Run it"`} {
		if !strings.Contains(js, want) {
			t.Errorf("no %s in %s", want, js)
		}
	}
	if strings.Contains(js, "medic_approve.p5") {
		t.Error("a sixth button was rendered")
	}
	if err := CheckLimits(r.Main); err != nil {
		t.Errorf("over Slack's limits: %v", err)
	}
}
