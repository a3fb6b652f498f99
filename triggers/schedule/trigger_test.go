package schedule

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/triggers"
)

// registered is a registry with this package's trigger, the one the tests
// build it from.
var registered = triggers.NewRegistry(Register)

func TestParamsAreCheckedAtLoad(t *testing.T) {
	t.Parallel()
	tests := []struct{ params, err string }{
		{"fixed_delay_repeat: {repeat: 3, seconds_delay: 60}", ""},
		{"fixed_delay_repeat: {repeat: -1, seconds_delay: 1}", ""},
		{"dynamic_delay_repeat: {delay_periods: [0, 60]}", ""},
		{`cron: "*/5 * * * *"`, ""},
		{`cron: "CRON_TZ=Europe/Paris 0 9 * * 1-5"`, ""},
		{`cron: "@every 90s"`, ""},
		{"fixed_delay_repeat: {repeat: 0, seconds_delay: 60}", "fixed_delay_repeat.repeat"},
		{"fixed_delay_repeat: {repeat: 2, seconds_delay: 0}", "fixed_delay_repeat.seconds_delay"},
		{"dynamic_delay_repeat: {delay_periods: []}", "dynamic_delay_repeat.delay_periods"},
		{"dynamic_delay_repeat: {delay_periods: [60, -1]}", "delay_periods[1]"},
		{`cron: "61 * * * *"`, "cron"},
		{`cron: "* * * *"`, "cron"},
		{"{}", "exactly one"},
		{`{cron: "@hourly", fixed_delay_repeat: {repeat: 1, seconds_delay: 5}}`, "exactly one"},
		{"fixed_delay_repeat: {repeat: 1, seconds_dealy: 5}", "seconds_dealy"},
	}
	for _, tt := range tests {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(tt.params), &node); err != nil {
			t.Fatal(err)
		}
		_, err := registered.Build(TriggerName, node.Content[0])
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.params, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want one naming %q", tt.params, err, tt.err)
		}
	}
}
