package kubernetes

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/medichq/medic/event/kubeevent"
)

// Bounds of the diff an update event carries: a rollout that rewrites a
// whole pod template must not turn into a megabyte event.
const (
	// MaxChanges is how many changed fields one event lists; the rest are
	// counted in a last "… N more" entry.
	MaxChanges = 20
	// MaxChangeValue is how many characters of an old or new value are kept.
	MaxChangeValue = 120
)

// ignoredMetadata never counts as a change: bookkeeping, and the
// last-applied annotation that repeats the whole object (and a Secret's
// values).
var ignoredMetadata = map[string]bool{"resourceVersion": true, "managedFields": true, "generation": true}

// DiffObjects is diffObjects for evidence actions that compare two
// versions of an object themselves (a Deployment's ReplicaSets).
func DiffObjects(old, cur map[string]any, secret bool) []kubeevent.Change {
	return diffObjects(old, cur, secret)
}

// diffObjects lists what changed from old to cur, spec and data first,
// status only when nothing else changed, at most MaxChanges. secret keeps
// values out: a Secret's data tells only which keys changed.
func diffObjects(old, cur map[string]any, secret bool) []kubeevent.Change {
	w := &differ{secret: secret}
	keys := unionKeys(old, cur)
	for _, k := range keys {
		if k == "status" {
			continue
		}
		w.walk(k, k, old[k], cur[k])
	}
	if len(w.out) == 0 {
		w.walk("status", "status", old["status"], cur["status"])
	}
	if len(w.out) > MaxChanges {
		more := len(w.out) - MaxChanges + 1
		w.out = append(w.out[:MaxChanges-1], kubeevent.Change{Op: kubeevent.ChangeMore, New: fmt.Sprintf("and %d more", more)})
	}
	return w.out
}

type differ struct {
	secret bool
	out    []kubeevent.Change
}

func (w *differ) walk(path, label string, a, b any) {
	if reflect.DeepEqual(a, b) {
		return
	}
	switch path {
	case "metadata":
		a, b = stripMeta(a), stripMeta(b)
	case "metadata.annotations":
		a, b = stripLastApplied(a), stripLastApplied(b)
	}
	if w.secret && (path == "data" || path == "stringData") {
		w.secretKeys(path, a, b)
		return
	}
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		for _, k := range unionKeys(am, bm) {
			w.walk(joinKey(path, k), joinKey(label, k), am[k], bm[k])
		}
		return
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok {
		w.walkList(path, label, al, bl)
		return
	}
	if reflect.DeepEqual(a, b) {
		return
	}
	c := kubeevent.Change{Path: path, Label: shortLabel(label), Op: kubeevent.ChangeChanged, Old: render(a), New: render(b)}
	switch {
	case a == nil:
		c.Op, c.Old = kubeevent.ChangeAdded, ""
	case b == nil:
		c.Op, c.New = kubeevent.ChangeRemoved, ""
	}
	w.out = append(w.out, c)
}

// walkList matches items by name when every item has one (containers,
// env, ports, volumes), else by index when the length is the same; else
// the list changed as a whole.
func (w *differ) walkList(path, label string, a, b []any) {
	an, aok := names(a)
	bn, bok := names(b)
	if aok && bok {
		at := map[string]int{}
		for i, n := range an {
			at[n] = i
		}
		for i, n := range bn {
			p, l := fmt.Sprintf("%s[%d]", path, i), label+"["+n+"]"
			if j, ok := at[n]; ok {
				w.walk(p, l, a[j], b[i])
				delete(at, n)
				continue
			}
			w.walk(p, l, nil, b[i])
		}
		for i, n := range an {
			if _, gone := at[n]; gone {
				w.walk(fmt.Sprintf("%s[%d]", path, i), label+"["+n+"]", a[i], nil)
			}
		}
		return
	}
	if len(a) == len(b) {
		for i := range a {
			w.walk(fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("%s[%d]", label, i), a[i], b[i])
		}
		return
	}
	w.out = append(w.out, kubeevent.Change{Path: path, Label: shortLabel(label), Op: kubeevent.ChangeChanged, Old: render(a), New: render(b)})
}

func (w *differ) secretKeys(path string, a, b any) {
	am, _ := a.(map[string]any)
	bm, _ := b.(map[string]any)
	for _, k := range unionKeys(am, bm) {
		x, inA := am[k]
		y, inB := bm[k]
		c := kubeevent.Change{Path: joinKey(path, k), Label: joinKey(path, k), Op: kubeevent.ChangeChanged}
		switch {
		case !inA:
			c.Op = kubeevent.ChangeAdded
		case !inB:
			c.Op = kubeevent.ChangeRemoved
		case reflect.DeepEqual(x, y):
			continue
		}
		w.out = append(w.out, c)
	}
}

// names returns the "name" of every item, or false when one has none.
func names(l []any) ([]string, bool) {
	if len(l) == 0 {
		return nil, true
	}
	out := make([]string, len(l))
	for i, x := range l {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, false
		}
		n, ok := m["name"].(string)
		if !ok || n == "" {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

func stripMeta(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		if !ignoredMetadata[k] {
			out[k] = x
		}
	}
	return out
}

func stripLastApplied(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		if !skippedAnnotations[k] {
			out[k] = x
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// joinKey appends a map key to a path, quoting keys that are not plain
// identifiers (labels such as app.kubernetes.io/name).
func joinKey(path, k string) string {
	if !plainKey.MatchString(k) {
		return path + "[" + strconv.Quote(k) + "]"
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

// shortLabel drops the prefixes every workload shares.
func shortLabel(l string) string {
	for _, p := range []string{"spec.template.spec.", "spec.jobTemplate.spec.template.spec.", "spec."} {
		if strings.HasPrefix(l, p) {
			return strings.TrimPrefix(l, p)
		}
	}
	return l
}

func unionKeys(a, b map[string]any) []string {
	out := make([]string, 0, len(a)+len(b))
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// render shows a value compactly: strings as they are, the rest as JSON,
// cut to MaxChangeValue characters.
func render(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		s = x
	default:
		b, _ := json.Marshal(x)
		s = string(b)
	}
	if utf8.RuneCountInString(s) > MaxChangeValue {
		r := []rune(s)
		s = string(r[:MaxChangeValue-1]) + "…"
	}
	return s
}
