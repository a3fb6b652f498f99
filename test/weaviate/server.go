//go:build linux

// Package weaviatetest runs a real Weaviate server for medic's knowledge-base
// tests.
//
// The server is built from its Go module by test/tools/build-weaviate.sh into
// weaviate-<Version>/ in the per-user tools cache (toolbin.ToolsDir) and
// reused afterwards; Binary runs the script when the binary is missing (about
// 3.5 minutes cold on 2 cores).
//
// Weaviate binds its gRPC (50051), gossip (7947) and profiling ports on every
// interface, and gRPC cannot be told otherwise. So the server runs in a
// private network namespace that has nothing but loopback, and so must its
// client: InNamespace re-executes the test binary under `unshare -n` (root
// or user namespaces needed) with loopback up, and the tests then run in
// there, next to the server. Nothing listens beyond the namespace.
package weaviatetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/toolbin"
)

// Version is the Weaviate release the tests run against (v1.39.7 needs a
// dependency version the module proxy refuses).
const Version = "v1.39.3"

// netnsEnv marks the re-executed test binary.
const netnsEnv = "MEDIC_WEAVIATE_NETNS"

var weaviateTool = toolbin.Tool{
	Name:    "weaviate",
	Version: Version,
	Script:  "test/tools/build-weaviate.sh",
	Files:   []string{"weaviate-server"},
	Takes:   "about 3.5 minutes",
}

// Binary returns the weaviate-server binary, building it when missing.
func Binary() (string, error) {
	dir, err := weaviateTool.Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "weaviate-server"), nil
}

// InNamespace reports whether this process is the re-executed one.
func InNamespace() bool { return os.Getenv(netnsEnv) == "1" }

// ReexecInNamespace runs this test binary again, with the same arguments,
// in a new network namespace with loopback up, and returns its exit code.
// It returns an error when namespaces are not available.
func ReexecInNamespace() (int, error) {
	cmd, err := CommandInNamespace(os.Args[1:]...)
	if err != nil {
		return 0, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// CommandInNamespace returns a command that runs this executable with args
// in a new network namespace with loopback up, InNamespace true there; the
// caller sets its input and outputs. It returns an error when namespaces
// are not available.
func CommandInNamespace(args ...string) (*exec.Cmd, error) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return nil, fmt.Errorf("unshare not found: %w", err)
	}
	if out, err := exec.Command(unshare, "-n", "true").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("unshare -n is not permitted here (%v: %s)", err, bytes.TrimSpace(out))
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	script := `ip link set lo up 2>/dev/null || true; exec "$0" "$@"`
	cmd := exec.Command(unshare, append([]string{"-n", "sh", "-c", script, self}, args...)...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	return cmd, nil
}

// Server is a running Weaviate.
type Server struct {
	URL  string
	proc *toolbin.Proc
}

// Start runs Weaviate on a free loopback port with no vectorizer module,
// anonymous access and data under dir, and waits until it is ready.
func Start(bin, dir string) (*Server, error) {
	ports, err := testkit.FreePorts(1)
	if err != nil {
		return nil, err
	}
	port := ports[0]
	s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port)}
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--scheme", "http")
	cmd.Env = append(os.Environ(),
		"AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true",
		"DEFAULT_VECTORIZER_MODULE=none",
		"ENABLE_MODULES=",
		"PERSISTENCE_DATA_PATH="+dir,
		"CLUSTER_HOSTNAME=node1",
		"CLUSTER_BIND_ADDR=127.0.0.1",
		"CLUSTER_ADVERTISE_ADDR=127.0.0.1",
		"RAFT_BOOTSTRAP_EXPECT=1",
		"DISABLE_TELEMETRY=true",
		"GO_PROFILING_DISABLE=true",
		"LOG_LEVEL=warning",
	)
	if s.proc, err = toolbin.StartProc("weaviate", cmd, 64<<10); err != nil {
		return nil, err
	}
	if err := s.proc.WaitHTTP(s.URL+"/v1/.well-known/ready", nil, 90*time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w:\n%s", err, s.Output())
	}
	return s, nil
}

// Output is the tail of the server's logs.
func (s *Server) Output() string { return s.proc.Output() }

// Stop ends the server.
func (s *Server) Stop() { s.proc.Stop(10 * time.Second) }

// Ready checks the server answers.
func (s *Server) Ready(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/v1/.well-known/ready", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ready: %s", resp.Status)
	}
	return nil
}
