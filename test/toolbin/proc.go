package toolbin

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc is a real server a test started (etcd, kube-apiserver, Alertmanager,
// Weaviate, Ollama): the tail of its output, its end, and one way to wait
// for it and to stop it, so each server's package says only how to run it.
type Proc struct {
	name string
	cmd  *exec.Cmd
	out  *Tail
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
	stop sync.Once
}

// StartProc starts cmd with its output in a Tail of tail bytes. Where the
// platform allows, the kernel kills the server when the test process dies
// without running its cleanups (a go test timeout, a SIGKILL).
func StartProc(name string, cmd *exec.Cmd, tail int) (*Proc, error) {
	p := &Proc{name: name, cmd: cmd, out: &Tail{Max: tail}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = dieWithParent()
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Output is the tail of the server's output.
func (p *Proc) Output() string { return p.out.String() }

// Done is closed when the server has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// WaitHTTP polls url until it answers 200 OK, and fails when the server
// exits first or timeout passes. hc nil is a client with a 2s timeout.
func (p *Proc) WaitHTTP(url string, hc *http.Client, timeout time.Duration) error {
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Second}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %v", p.name, p.err)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not ready after %v", p.name, url, timeout)
		case <-p.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits for the server to exit, killing it after
// grace. It may be called more than once, and before a test's cleanup (for
// tests of what medic does when the server goes away).
func (p *Proc) Stop(grace time.Duration) {
	p.stop.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}
