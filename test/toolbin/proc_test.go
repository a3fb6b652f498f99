package toolbin

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A server that exits before it is ready is reported with its output, and
// Stop ends one that runs, SIGTERM first, however often it is called.
func TestProc(t *testing.T) {
	t.Parallel()
	p, err := StartProc("quitter", exec.Command("sh", "-c", "echo no config >&2; exit 3"), 0)
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitHTTP("http://127.0.0.1:1/ready", nil, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "quitter exited before it was ready: exit status 3") {
		t.Errorf("WaitHTTP = %v, want the exit", err)
	}
	if out := p.Output(); out != "no config\n" {
		t.Errorf("output %q", out)
	}

	p, err = StartProc("sleeper", exec.Command("sleep", "60"), 0)
	if err != nil {
		t.Fatal(err)
	}
	p.Stop(10 * time.Second)
	p.Stop(10 * time.Second)
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	if _, err := StartProc("missing", exec.Command("/nonexistent/server"), 0); err == nil {
		t.Error("a missing binary started")
	}
}
