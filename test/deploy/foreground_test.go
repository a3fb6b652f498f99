package deploy_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/deploy"
)

// `make run` runs medic through hack/foreground.sh. However it is stopped,
// medic shuts down gracefully, finishes what it accepted, and the run ends
// with medic's status (0), not make's "Interrupt" or a medic left running.
func TestMakeRunStopsCleanly(t *testing.T) {
	bin := medicBinary(t)
	script := filepath.Join(must(deploy.RepoRoot()), "hack", "foreground.sh")

	for _, tc := range []struct {
		name string
		// start starts the script and returns a function that stops it the
		// way a person or a supervisor would.
		start func(t *testing.T, cmd *exec.Cmd) (stop func())
	}{
		{
			name: "Ctrl-C on a terminal",
			start: func(t *testing.T, cmd *exec.Cmd) func() {
				tty, err := pty.Start(cmd) // its own session, the pty as controlling terminal
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { tty.Close() })
				go drain(tty)
				// ^C typed on the terminal: the line discipline sends SIGINT to the
				// terminal's foreground process group, which must be medic's alone.
				return func() {
					if _, err := tty.Write([]byte{0x03}); err != nil {
						t.Errorf("typing ^C: %v", err)
					}
				}
			},
		},
		{
			name: "SIGTERM without a terminal",
			start: func(t *testing.T, cmd *exec.Cmd) func() {
				var out testkit.SyncBuffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("output:\n%s", out.String())
					}
				})
				return func() { _ = cmd.Process.Signal(syscall.SIGTERM) }
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			port := testkit.FreePort(t)
			server := fmt.Sprintf("http://127.0.0.1:%d", port)
			cmd := exec.Command("bash", script, bin, "serve")
			cmd.Dir = data
			cmd.Env = append(os.Environ(),
				fmt.Sprintf("MEDIC_HTTP_ADDR=127.0.0.1:%d", port),
				"MEDIC_DATA_DIR="+data,
				"HOME="+data,
			)
			stop := tc.start(t, cmd)
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

			testkit.Eventually(t, 90*time.Second, "medic to be ready", func() bool { return httpStatus(server+"/readyz", "") == http.StatusOK })
			body := `{"trigger":"prometheus_alert","params":{"alert_name":"KubePodCrashLooping","namespace":"shop","pod_name":"cart-7d9"}}`
			if code := httpPost(server+"/api/trigger", "", body); code/100 != 2 {
				t.Fatalf("POST /api/trigger: %d", code)
			}
			stop()
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("the run ended with %v; want status 0 after medic's graceful shutdown", err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("medic did not stop within 60 s")
			}
			// What was accepted before the stop is not lost: medic finished it
			// before exiting, or (when the stop came first) it is still in the
			// data folder's stream and the next start delivers it.
			findings := filepath.Join(data, "findings.jsonl")
			written := func() bool {
				b, err := os.ReadFile(findings)
				return err == nil && bytes.Contains(b, []byte("KubePodCrashLooping"))
			}
			if !written() {
				again := exec.Command(bin, "serve")
				again.Dir, again.Env = data, cmd.Env
				var out testkit.SyncBuffer
				again.Stdout, again.Stderr = &out, &out
				if err := again.Start(); err != nil {
					t.Fatal(err)
				}
				testkit.Eventually(t, 90*time.Second, "the accepted finding after a restart", written)
				_ = again.Process.Signal(syscall.SIGTERM)
				if err := again.Wait(); err != nil {
					t.Errorf("the restarted medic exited with %v\n%s", err, out.String())
				}
			}
			// And no medic is left behind, listening.
			if code := httpStatus(server+"/readyz", ""); code != 0 {
				t.Errorf("something still answers on %s after the run ended: %d", server, code)
			}
		})
	}
}

func drain(f *os.File) {
	buf := make([]byte, 4096)
	for {
		if _, err := f.Read(buf); err != nil {
			return
		}
	}
}
