// Package stdout is the `stdout` sink: it prints each finding for a person
// watching `medic serve`, as readable text (optionally colored) or as one
// JSON line per finding for piping into jq.
//
// It keeps no record of what it printed: a finding redelivered after a crash
// is printed again, which is harmless on a terminal.
package stdout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
)

// Type is the sink type name used in configuration.
const Type = "stdout"

// Formats and color modes accepted by the parameters.
const (
	FormatText = "text"
	FormatJSON = "json"

	ColorAuto   = "auto"
	ColorAlways = "always"
	ColorNever  = "never"
)

// Params are the parameters of the stdout sink.
type Params struct {
	// Format is "text" (readable) or "json" (one JSON object per line).
	Format string `yaml:"format"`
	// Color is "auto" (only when writing to a terminal and NO_COLOR is
	// unset), "always" or "never". JSON is never colored.
	Color string `yaml:"color"`
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params { return &Params{Format: FormatText, Color: ColorAuto} }

// Validate checks the parameters after decoding.
func (p *Params) Validate() error {
	switch p.Format {
	case FormatText, FormatJSON:
	default:
		return fmt.Errorf("format must be %q or %q, got %q", FormatText, FormatJSON, p.Format)
	}
	switch p.Color {
	case ColorAuto, ColorAlways, ColorNever:
	default:
		return fmt.Errorf("color must be %q, %q or %q, got %q", ColorAuto, ColorAlways, ColorNever, p.Color)
	}
	return nil
}

// Register adds the stdout sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Prints each finding to medic's standard output: readable text with its enrichments (colored on a terminal), or one JSON line per finding.",
		Defaults, New)
}

// Sink prints findings to a writer. It is safe for concurrent use.
type Sink struct {
	json  bool
	color bool

	mu sync.Mutex
	w  io.Writer
}

// Deps is what a stdout sink uses of sinks.Deps.
type Deps interface {
	Stdout() io.Writer
}

// New starts a stdout sink writing to deps' Stdout.
func New(_ context.Context, _ string, p Params, deps Deps) (*Sink, error) {
	return NewWriter(p, deps.Stdout())
}

// NewWriter returns a sink writing to w, or to os.Stdout when w is nil.
func NewWriter(p Params, w io.Writer) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if w == nil {
		w = os.Stdout
	}
	s := &Sink{json: p.Format == FormatJSON, w: w}
	switch p.Color {
	case ColorAlways:
		s.color = true
	case ColorAuto:
		// NO_COLOR (https://no-color.org) lets a user turn color off
		// without editing medic's configuration.
		s.color = isTerminal(w) && os.Getenv("NO_COLOR") == ""
	}
	return s, nil
}

// isTerminal reports whether w is a character device such as a terminal.
// golang.org/x/term would also rule out /dev/null and the like, but it is
// not a dependency of medic and a character-device check is close enough.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Send prints f with a single Write, so concurrent findings do not mix.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("stdout sink: nil finding")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Render outside the lock; only the Write is serialised.
	var buf bytes.Buffer
	if s.json {
		b, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("encode finding %s: %w", f.ID, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	} else if err := Render(&buf, f, s.color); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write finding %s to stdout: %w", f.ID, err)
	}
	return nil
}

// Close does nothing: the sink does not own its writer.
func (s *Sink) Close() error { return nil }
