//go:build linux

// Package ollamatest runs a real Ollama server for medic's AI tests, serving
// the tiny random-weight models of ../shared/data/models (their text is
// meaningless: the tests check the plumbing, never the words).
//
// Ollama is built by test/tools/build-ollama.sh into the ignored folder
// .tools/ollama-<Version>/ (or $MEDIC_TOOLS_DIR) and reused afterwards;
// Binary runs the script when the binary is missing (about 7-8 minutes cold
// on 2 cores). The server binds 127.0.0.1 only, and keeps its key and models
// in a temporary folder.
package ollamatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/medichq/medic/test/realam"
)

// Version is the Ollama release the tests run against.
const Version = "v0.17.4"

// The tiny models and the names they get.
const (
	ChatModel  = "tiny-chat"
	EmbedModel = "tiny-embed"
	// ModelsDirEnv overrides where the models are (default
	// ../shared/data/models next to the repository).
	ModelsDirEnv = "MEDIC_TEST_MODELS_DIR"
)

const buildRel = "test/tools/build-ollama.sh"

// Binary returns the ollama binary, building it when missing.
func Binary() (string, error) {
	tools, err := realam.ToolsDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(tools, "ollama-"+Version, "ollama")
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(tools, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(filepath.Join(tools, ".ollama-"+Version+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExecutable(bin) {
		return bin, nil
	}
	root, err := realam.RepoRoot()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "ollamatest: %s missing; building it with %s (about 7-8 minutes)\n", bin, buildRel)
	cmd := exec.Command("bash", filepath.Join(root, buildRel))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), realam.ToolsDirEnv+"="+tools, "MEDIC_TOOLS_LOCK_HELD=1")
	cmd.Stdout = io.Discard
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w", buildRel, err)
	}
	if !isExecutable(bin) {
		return "", fmt.Errorf("%s succeeded but %s is missing", buildRel, bin)
	}
	return bin, nil
}

// ModelsDir finds the tiny models.
func ModelsDir() (string, error) {
	if d := os.Getenv(ModelsDirEnv); d != "" {
		return d, nil
	}
	root, err := realam.RepoRoot()
	if err != nil {
		return "", err
	}
	d := filepath.Join(root, "..", "shared", "data", "models")
	if _, err := os.Stat(filepath.Join(d, "Modelfile.chat")); err != nil {
		return "", fmt.Errorf("tiny models not found in %s (set %s): %w", d, ModelsDirEnv, err)
	}
	return d, nil
}

// Server is a running Ollama with both tiny models created.
type Server struct {
	// URL is the server's root; the OpenAI-compatible API is URL + "/v1".
	URL  string
	bin  string
	host string
	env  []string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

// BaseURL is what ai.base_url should be.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Start runs `ollama serve` on a free loopback port with its home and model
// store under dir, and creates tiny-chat and tiny-embed.
func Start(bin, dir string) (*Server, error) {
	models, err := ModelsDir()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	host := "127.0.0.1:" + strconv.Itoa(port)
	s := &Server{URL: "http://" + host, bin: bin, host: host, done: make(chan struct{})}
	s.env = append(os.Environ(),
		"HOME="+dir,
		"OLLAMA_HOST="+host,
		"OLLAMA_MODELS="+filepath.Join(dir, "models"),
		"OLLAMA_NOPRUNE=1",
	)
	s.cmd = exec.Command(bin, "serve")
	s.cmd.Env = s.env
	s.cmd.Stdout = s
	s.cmd.Stderr = s
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(60 * time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	for _, m := range []struct{ name, file string }{{ChatModel, "Modelfile.chat"}, {EmbedModel, "Modelfile.embed"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, bin, "create", m.name, "-f", filepath.Join(models, m.file))
		cmd.Env = s.env
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("ollama create %s: %w\n%s", m.name, err, out)
		}
	}
	return s, nil
}

func (s *Server) waitReady(timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("ollama exited before it was ready:\n%s", s.Output())
		default:
		}
		if resp, err := hc.Get(s.URL + "/api/version"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("ollama not ready after " + timeout.String() + ":\n" + s.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Write collects the server's output (the last 64 KiB).
func (s *Server) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.Write(p)
	if over := s.out.Len() - 64<<10; over > 0 {
		s.out.Next(over)
	}
	return len(p), nil
}

// Output is the tail of the server's logs.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// Stop ends the server.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
}
