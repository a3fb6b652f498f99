package rag

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// TerminalProgress draws a one-line progress bar (for a terminal) or, with
// bar false, prints one plain line per changed file (for logs and pipes).
type TerminalProgress struct {
	W   io.Writer
	Bar bool

	mu    sync.Mutex
	root  string
	total int
	done  int
}

// Start implements Progress.
func (p *TerminalProgress) Start(root string, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.root, p.total, p.done = root, total, 0
	if !p.Bar {
		fmt.Fprintf(p.W, "ingesting %s: %d files\n", root, total)
	}
}

// Step implements Progress.
func (p *TerminalProgress) Step(source, action string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if !p.Bar {
		if action != "unchanged" {
			fmt.Fprintf(p.W, "%s %s\n", action, source)
		}
		return
	}
	const width = 30
	filled := width
	if p.total > 0 {
		filled = min(width, p.done*width/p.total)
	}
	name := source
	if len(name) > 40 {
		name = "…" + name[len(name)-39:]
	}
	fmt.Fprintf(p.W, "\r\033[K[%s%s] %d/%d %s %s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		p.done, p.total, action, name)
}

// Done implements Progress.
func (p *TerminalProgress) Done(r IngestReport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Bar {
		fmt.Fprint(p.W, "\r\033[K")
	}
	fmt.Fprintln(p.W, r.String())
}
