//go:build linux

// Package ollamatest runs a real Ollama server for medic's AI tests, serving
// the tiny random-weight models of internal/fixtures/testdata/models (their text is
// meaningless: the tests check the plumbing, never the words).
//
// Ollama is built by test/tools/build-ollama.sh into the ignored folder
// ollama-<Version>/ in the per-user tools cache (toolbin.ToolsDir) and reused afterwards;
// Binary runs the script when the binary is missing (about 7-8 minutes cold
// on 2 cores). The server binds 127.0.0.1 only, and keeps its key and models
// in a temporary folder.
package ollamatest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/medichq/medic/internal/fixtures"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/toolbin"
)

// Version is the Ollama release the tests run against.
const Version = "v0.17.4"

// The tiny models and the names they get.
const (
	ChatModel  = "tiny-chat"
	EmbedModel = "tiny-embed"
	// ModelsDirEnv overrides where the models are (default
	// internal/fixtures/testdata/models).
	ModelsDirEnv = "MEDIC_TEST_MODELS_DIR"
)

var ollamaTool = toolbin.Tool{
	Name:    "ollama",
	Version: Version,
	Script:  "test/tools/build-ollama.sh",
	Files:   []string{"ollama"},
	Takes:   "about 7-8 minutes",
}

// Binary returns the ollama binary, building it when missing.
func Binary() (string, error) {
	dir, err := ollamaTool.Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "ollama"), nil
}

// ModelsDir finds the tiny models: $MEDIC_TEST_MODELS_DIR, else the
// module's internal/fixtures/testdata/models.
func ModelsDir() (string, error) {
	if d := os.Getenv(ModelsDirEnv); d != "" {
		return d, nil
	}
	d := fixtures.Path("models")
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
	proc *toolbin.Proc
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
	ports, err := testkit.FreePorts(1)
	if err != nil {
		return nil, err
	}
	port := ports[0]
	host := "127.0.0.1:" + strconv.Itoa(port)
	s := &Server{URL: "http://" + host, bin: bin, host: host}
	s.env = append(os.Environ(),
		"HOME="+dir,
		"OLLAMA_HOST="+host,
		"OLLAMA_MODELS="+filepath.Join(dir, "models"),
		"OLLAMA_NOPRUNE=1",
	)
	cmd := exec.Command(bin, "serve")
	cmd.Env = s.env
	if s.proc, err = toolbin.StartProc("ollama", cmd, 64<<10); err != nil {
		return nil, err
	}
	if err := s.proc.WaitHTTP(s.URL+"/api/version", nil, 60*time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w:\n%s", err, s.Output())
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

// Output is the tail of the server's logs.
func (s *Server) Output() string { return s.proc.Output() }

// Stop ends the server.
func (s *Server) Stop() { s.proc.Stop(10 * time.Second) }
