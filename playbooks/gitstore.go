package playbooks

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Rejection describes content the store refused to run.
type Rejection struct {
	// Hash identifies the refused content; the same content is refused
	// (and reported) once.
	Hash string
	// Version is what the set's version would have been.
	Version string
	// Sources are the Git commits in the refused content.
	Sources []Origin
	// Errors is every problem, in file and line order.
	Errors Errors
	// Running is the version of the set that keeps running ("" when none).
	Running string
}

// Culprits are the commits whose files have errors; when the errors name
// no Git file (a local file, playbooks.disabled), the commits in the
// refused content that the running set does not have.
func (r Rejection) Culprits() []Origin {
	var out []Origin
	for _, o := range r.Sources {
		for _, e := range r.Errors {
			if strings.HasPrefix(e.File, o.pathPrefix()) {
				out = append(out, o)
				break
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, o := range r.Sources {
		if !strings.Contains(r.Running, o.String()) {
			out = append(out, o)
		}
	}
	return out
}

// Title is a one-line summary: "playbook commit abc1234 rejected".
func (r Rejection) Title() string {
	c := r.Culprits()
	switch len(c) {
	case 0:
		return fmt.Sprintf("playbook set %s rejected", r.Version)
	case 1:
		return fmt.Sprintf("playbook commit %s rejected", c[0].Short())
	}
	names := make([]string, len(c))
	for i, o := range c {
		names[i] = o.String()
	}
	return fmt.Sprintf("playbook commits %s rejected", strings.Join(names, ", "))
}

func newRejection(hash string, files []File, err error, running *Set) Rejection {
	r := Rejection{Hash: hash, Version: versionOf(files), Sources: originsOf(files)}
	if running != nil {
		r.Running = running.Version
	}
	if !errors.As(err, &r.Errors) {
		r.Errors = Errors{{File: "playbooks", Msg: err.Error()}}
	}
	return r
}

// OnReject registers fn, called once for each refused content (a new
// commit with errors, a bad local edit). It runs under the reload lock:
// it must return quickly (hand slow work to a goroutine). Call it before
// the first Reload.
func (s *Store) OnReject(fn func(Rejection)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onReject = fn
}

// OnApply subscribes fn to the running set: it is called with every set
// that replaced the running one, in the order of subscription, under the
// reload lock (so quickly: hand slow work to a goroutine). Subscribe before
// the first Reload, or read Current once after subscribing.
func (s *Store) OnApply(fn func(*Set)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onApply = append(s.onApply, fn)
}

// mergeErrors joins a Build error and the source's own errors, sorted.
func mergeErrors(buildErr error, more Errors) Errors {
	var all Errors
	if buildErr != nil && !errors.As(buildErr, &all) {
		all = Errors{{File: "playbooks", Msg: buildErr.Error()}}
	}
	all = append(append(Errors(nil), all...), more...)
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].File != all[j].File {
			return all[i].File < all[j].File
		}
		return all[i].Line < all[j].Line
	})
	return all
}
