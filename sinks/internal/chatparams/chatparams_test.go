package chatparams_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/discord"
	"github.com/medichq/medic/sinks/googlechat"
	"github.com/medichq/medic/sinks/internal/incident/incidenttest"
	"github.com/medichq/medic/sinks/mattermost"
	"github.com/medichq/medic/sinks/telegram"
	"github.com/medichq/medic/sinks/webex"
)

// The shared parameters are keys of each chat sink like its own, with the
// same names, defaults and bounds as before they were shared.
// registered holds the chat sinks whose parameters chatparams gives.
var registered = sinks.NewRegistry(discord.Register, googlechat.Register, mattermost.Register, telegram.Register, webex.Register)

func TestChatSinksShareTheKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ, own    string
		lines, most int
	}{
		{"discord", "webhook_url: https://discord.com/api/webhooks/1/x", 10, 50},
		{"telegram", "bot_token: t, chat_id: '@oncall'", 10, 50},
		{"webex", "bot_token: t, room_id: r", 10, 50},
		{"google_chat", "webhook_url: https://chat.googleapis.com/v1/spaces/x", 15, 100},
		{"mattermost", "webhook_url: https://mm.example.com/hooks/x", 15, 100},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			t.Parallel()
			specs := map[string]string{}
			for keys, want := range map[string]string{
				"": "",
				fmt.Sprintf("inline_log_lines: %d, max_retry_after: 0s", tc.most): "",
				"inline_log_lines: 0":                          "inline_log_lines: must be between 1 and " + fmt.Sprint(tc.most),
				fmt.Sprintf("inline_log_lines: %d", tc.most+1): "inline_log_lines",
				"max_retry_after: -1s":                         "max_retry_after: must not be negative",
				"inline_log_line: 3":                           `unknown parameter "inline_log_line"`,
			} {
				conf := fmt.Sprintf("{name: c, type: %s, %s", tc.typ, tc.own)
				if keys != "" {
					conf += ", " + keys
				}
				specs[conf+"}"] = want
			}
			incidenttest.CheckSpecs(t, registered, specs)
			found := false
			for _, d := range registered.Definitions() {
				if d.Name != tc.typ {
					continue
				}
				found = true
				got := fmt.Sprintf("%+v", d.NewParams())
				if want := fmt.Sprintf("Common:{InlineLogLines:%d MaxRetryAfter:1m0s}", tc.lines); !strings.Contains(got, want) {
					t.Errorf("defaults %s, want %s", got, want)
				}
			}
			if !found {
				t.Errorf("sink type %s is not registered", tc.typ)
			}
		})
	}
}
