package slack

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Grouping is Robusta's per-sink grouping block, read as an alternative to
// group_by and interval:
//
//	grouping:
//	  group_by: [namespace, identifier, {labels: [app]}]
//	  interval: 1800            # seconds, or a duration: 30m
//	  notification_mode:
//	    summary: {threaded: true, by: [identifier, severity]}
//
// The summary mode is medic's grouping: one summary message per group and
// interval, each finding in its thread. Robusta's regular mode and an
// unthreaded summary are refused rather than silently changed.
type Grouping struct {
	GroupBy          []GroupKey        `yaml:"group_by"`
	Interval         GroupingInterval  `yaml:"interval"`
	NotificationMode *NotificationMode `yaml:"notification_mode"`
}

// GroupKey is one group_by entry: a key (namespace, identifier, …) or
// Robusta's {labels: [name, …]}.
type GroupKey struct{ keys []string }

// UnmarshalYAML reads a key or {labels: [...]} / {attributes: [...]}.
func (g *GroupKey) UnmarshalYAML(node *yaml.Node) error {
	switch node.Kind {
	case yaml.ScalarNode:
		k := node.Value
		if k == "identifier" { // Robusta's name for the alert name
			k = "alertname"
		}
		g.keys = []string{k}
		return nil
	case yaml.MappingNode:
		var m map[string][]string
		if err := node.Decode(&m); err != nil {
			return err
		}
		for kind, names := range m {
			for _, n := range names {
				switch kind {
				case "labels":
					g.keys = append(g.keys, "labels."+n)
				case "attributes":
					if n == "identifier" {
						n = "alertname"
					}
					g.keys = append(g.keys, n)
				default:
					return fmt.Errorf("group_by: {%s: …} is not labels or attributes", kind)
				}
			}
		}
		return nil
	}
	return errors.New("group_by: expected a key or {labels: [names]}")
}

// GroupingInterval is whole seconds (Robusta) or a duration ("30m").
type GroupingInterval time.Duration

// UnmarshalYAML reads seconds or a duration.
func (d *GroupingInterval) UnmarshalYAML(node *yaml.Node) error {
	if n, err := strconv.Atoi(node.Value); err == nil {
		*d = GroupingInterval(time.Duration(n) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(node.Value)
	if err != nil {
		return fmt.Errorf("interval: %q is neither seconds nor a duration like 30m", node.Value)
	}
	*d = GroupingInterval(v)
	return nil
}

// NotificationMode is Robusta's summary/regular choice.
type NotificationMode struct {
	Summary *struct {
		Threaded *bool    `yaml:"threaded"`
		By       []string `yaml:"by"`
	} `yaml:"summary"`
	Regular *yaml.Node `yaml:"regular"`
}

// apply sets p's group_by and interval from the grouping block.
func (g *Grouping) apply(p *Params) error {
	if len(p.GroupBy) > 0 {
		return errors.New("grouping: set either grouping or group_by, not both")
	}
	if nm := g.NotificationMode; nm != nil {
		switch {
		case nm.Regular != nil:
			return errors.New("grouping.notification_mode.regular: not supported; medic groups as summary (one summary message, each finding in its thread)")
		case nm.Summary != nil && nm.Summary.Threaded != nil && !*nm.Summary.Threaded:
			return errors.New("grouping.notification_mode.summary.threaded: false is not supported; medic puts each finding in the summary's thread")
		}
	}
	for _, k := range g.GroupBy {
		p.GroupBy = append(p.GroupBy, k.keys...)
	}
	if len(p.GroupBy) == 0 {
		return errors.New("grouping.group_by: required (namespace, identifier, workload, severity, cluster, {labels: [name]})")
	}
	if g.Interval != 0 {
		p.Interval = time.Duration(g.Interval)
	}
	return nil
}

func groupingKeysDoc() string {
	return strings.Join(append(groupKeys, "identifier", "labels.<name>"), ", ")
}
