package slack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks/chatfmt"
)

// Group is a group of findings: its summary message heads a thread holding
// the findings. It lives in the KV bucket, not in memory, so every replica
// and a restarted medic add to the same thread. The key
// group.<sink>.<group> points at the open group of a channel and group_by
// values; each group's members are kept under its own key (instanceKey),
// so a member resolving after its group closed still updates the summary.
type Group struct {
	Channel string        `json:"channel,omitempty"`
	TS      string        `json:"ts,omitempty"`
	Started time.Time     `json:"started"`
	Values  []string      `json:"values"`
	Members []GroupMember `json:"members"`
	// Pending is set while one delivery posts the summary; others wait.
	Pending bool `json:"pending,omitempty"`
}

// maxGroupMembers bounds what a group remembers; the summary counts them.
const maxGroupMembers = 500

// pendingTimeout is how long a summary being posted holds others back
// before one of them takes over (the poster crashed).
const pendingTimeout = 2 * time.Minute

type groupJoin struct{ key, channel, ts string }

func member(f *event.Finding) GroupMember {
	return GroupMember{FindingID: f.ID, Title: f.Title, Severity: string(f.Severity), Resolved: chatfmt.Resolved(f)}
}

// groupValues are the finding's values of the group_by keys.
func (s *Sink) groupValues(f *event.Finding) []string {
	ev := &f.Event
	out := make([]string, len(s.p.GroupBy))
	for i, k := range s.p.GroupBy {
		switch k {
		case "namespace":
			out[i] = firstNonEmpty(ev.Subject.Namespace, ev.Labels["namespace"])
		case "alertname":
			out[i] = firstNonEmpty(ev.Labels["alertname"], string(ev.Kind))
		case "workload":
			for _, fact := range chatfmt.Subject(f, s.cluster) {
				if fact.Name == "Workload" {
					out[i] = fact.Value
				}
			}
		case "severity":
			out[i] = string(f.Severity)
		case "cluster":
			out[i] = firstNonEmpty(ev.Labels["cluster"], s.cluster)
		case "labels":
			keys := make([]string, 0, len(ev.Labels))
			for k := range ev.Labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var kv []string
			for _, k := range keys {
				kv = append(kv, k+"="+ev.Labels[k])
			}
			out[i] = strings.Join(kv, ",")
		default:
			out[i] = ev.Labels[strings.TrimPrefix(k, "labels.")]
		}
	}
	return out
}

// joinGroup returns the thread f goes in, opening a group (and posting its
// summary) when none is open for f's group in channel.
func (s *Sink) joinGroup(ctx context.Context, f *event.Finding, channel string) (*groupJoin, error) {
	values := s.groupValues(f)
	key := "group." + s.name + "." + hashKey(append([]string{channel}, values...)...)
	for range 5 {
		g, rev, err := getJSON[Group](ctx, s.store, key)
		if err != nil {
			return nil, fmt.Errorf("read group state: %w", err)
		}
		now := s.now()
		if g != nil && !g.Pending && now.Sub(g.Started) < s.p.Interval {
			return &groupJoin{key: instanceKey(key, g.TS), channel: g.Channel, ts: g.TS}, nil
		}
		if g != nil && g.Pending && now.Sub(g.Started) < pendingTimeout {
			return nil, fmt.Errorf("the summary of finding %s's group is being posted by another delivery; will retry", f.ID)
		}
		// Open a new group: reserve the key, post the summary, record it.
		ng := Group{Pending: true, Started: now.UTC(), Values: values, Members: []GroupMember{member(f)}}
		var nrev uint64
		if g == nil {
			nrev, err = s.store.create(ctx, key, mustJSON(ng))
		} else {
			nrev, err = s.store.update(ctx, key, mustJSON(ng), rev)
		}
		if errors.Is(err, errExists) || errors.Is(err, errConflict) {
			continue // another delivery got there first: look again
		}
		if err != nil {
			return nil, fmt.Errorf("open group: %w", err)
		}
		summary := RenderGroupSummary(s.p.GroupBy, values, ng.Members, chatfmt.Duration(s.p.Interval))
		chID, ts, err := s.poster.Post(ctx, channel, summary, "")
		if err != nil {
			// Release the reservation at once so the retry opens the group.
			released := ng
			released.Started = time.Time{}
			_, _ = s.store.update(ctx, key, mustJSON(released), nrev)
			return nil, err
		}
		ng.Pending, ng.Channel, ng.TS = false, chID, ts
		inst := instanceKey(key, ts)
		if err := s.store.put(ctx, inst, mustJSON(ng)); err != nil {
			return nil, fmt.Errorf("record group: %w", err)
		}
		ng.Members = nil // the open-group pointer does not keep them
		if _, err := s.store.update(ctx, key, mustJSON(ng), nrev); err != nil {
			return nil, fmt.Errorf("record group: %w", err)
		}
		return &groupJoin{key: inst, channel: chID, ts: ts}, nil
	}
	return nil, fmt.Errorf("group state of finding %s kept changing; will retry", f.ID)
}

// instanceKey names one group's own state.
func instanceKey(openKey, ts string) string {
	return "members" + strings.TrimPrefix(openKey, "group") + "." + safeToken(ts)
}

// addToGroup records f in its group and updates the summary.
func (s *Sink) addToGroup(ctx context.Context, key string, f *event.Finding) error {
	return s.changeGroup(ctx, key, func(g *Group) bool {
		if slices.ContainsFunc(g.Members, func(m GroupMember) bool { return m.FindingID == f.ID }) {
			return false
		}
		if len(g.Members) < maxGroupMembers {
			g.Members = append(g.Members, member(f))
		}
		return true
	})
}

// resolveInGroup marks a member resolved and updates the summary.
func (s *Sink) resolveInGroup(ctx context.Context, key, findingID string) error {
	return s.changeGroup(ctx, key, func(g *Group) bool {
		for i := range g.Members {
			if g.Members[i].FindingID == findingID && !g.Members[i].Resolved {
				g.Members[i].Resolved = true
				return true
			}
		}
		return false
	})
}

// changeGroup applies change with compare-and-set and updates the summary
// when something changed.
func (s *Sink) changeGroup(ctx context.Context, key string, change func(*Group) bool) error {
	for range 5 {
		g, rev, err := getJSON[Group](ctx, s.store, key)
		if err != nil || g == nil || g.Pending {
			return err
		}
		if !change(g) {
			return nil
		}
		if _, err := s.store.update(ctx, key, mustJSON(g), rev); errors.Is(err, errConflict) {
			continue
		} else if err != nil {
			return err
		}
		return s.poster.Update(ctx, g.Channel, g.TS, RenderGroupSummary(s.p.GroupBy, g.Values, g.Members, chatfmt.Duration(s.p.Interval)))
	}
	return errors.New("group state kept changing")
}
