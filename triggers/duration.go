package triggers

import (
	"fmt"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/params"
)

// Duration is a trigger parameter that takes whole seconds, as Robusta's
// playbooks write them (rate_limit: 3600), or a Go duration ("4h", "90s").
type Duration time.Duration

// UnmarshalYAML accepts an integer number of seconds or a duration string.
func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return params.Errorf(node, "expected seconds (3600) or a duration (\"1h\")")
	}
	if n, err := strconv.ParseInt(node.Value, 10, 64); err == nil {
		if n < 0 {
			return params.Errorf(node, "%d: must not be negative", n)
		}
		*d = Duration(time.Duration(n) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(node.Value)
	if err != nil {
		return params.Errorf(node, "%q is neither seconds (3600) nor a duration (\"1h\")", node.Value)
	}
	if v < 0 {
		return params.Errorf(node, "%q: must not be negative", node.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration in Go's notation.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// GoString keeps %#v readable in test failures.
func (d Duration) GoString() string { return fmt.Sprintf("Duration(%s)", time.Duration(d)) }
