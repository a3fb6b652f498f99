package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profiler fetches medic's pprof profiles (http.pprof: true, set by the
// harness when -profile is given) into a folder, so a run shows where the
// pipeline's time and memory go without a second tool.
type profiler struct {
	dir  string
	base string
}

// cpu starts a CPU profile of d in the background, written to
// dir/name; the returned function waits for it.
func (p *profiler) cpu(name string, d time.Duration) (wait func()) {
	if p == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.base, max(1, int(d.Seconds())))
		if err := p.fetch(url, name, d+30*time.Second); err != nil {
			logf("CPU profile %s: %v", name, err)
		}
	}()
	return func() { <-done }
}

// heap writes the live heap (after a GC) to dir/name.
func (p *profiler) heap(name string) {
	if p == nil {
		return
	}
	if err := p.fetch(p.base+"/debug/pprof/heap?gc=1", name, 30*time.Second); err != nil {
		logf("heap profile %s: %v", name, err)
	}
}

func (p *profiler) fetch(url, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s (is http.pprof on?)", url, resp.Status)
	}
	f, err := os.Create(filepath.Join(p.dir, name))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	logf("wrote %s", f.Name())
	return f.Close()
}
