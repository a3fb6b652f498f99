package webhook

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/medichq/medic/event/webhookevent"
	"github.com/medichq/medic/sources/alertmanager"
)

// FuzzMapping feeds arbitrary bodies to every preset and to a mapping that
// uses every field: Parse never panics, refuses with 400 (not JSON) or 422
// (the mapping cannot take it), and an event it returns has an ID and a
// title.
func FuzzMapping(f *testing.F) {
	for name := range Presets {
		if b, err := os.ReadFile(filepath.Join("testdata", name+".json")); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{`{}`, `null`, `[]`, `"x"`, `{"involvedObject": {}}`, `{"app": 1}`, `{"text": 5}`, `{"a": 1} {"b": 2}`} {
		f.Add([]byte(s))
	}
	var mappings []*Mapping
	for name := range Presets {
		src := SourceConfig{Name: name, Preset: name}
		m, err := compileSource(&src)
		if err != nil {
			f.Fatal(err)
		}
		mappings = append(mappings, m)
	}
	custom, err := Compile(map[string]string{
		"title": `has(body.t) ? string(body.t) : "untitled"`, "labels": `body.?labels.orValue({})`,
		"starts_at": `body.?at`, "status": `body.?s.orValue("firing")`, "subject.name": `body.?name.orValue("")`,
	})
	if err != nil {
		f.Fatal(err)
	}
	mappings = append(mappings, custom)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, m := range mappings {
			ev, err := Parse(m, "webhook/fuzz", body, received)
			if err != nil {
				var re *alertmanager.RequestError
				if !errors.As(err, &re) || (re.Status != 0 && re.Status != http.StatusUnprocessableEntity) {
					t.Fatalf("error %v is not a 400 or 422 request error", err)
				}
				continue
			}
			if ev.ID == "" || ev.Title == "" || ev.Kind != webhookevent.Kind {
				t.Fatalf("event without ID, title or kind: %+v", ev)
			}
		}
	})
}
