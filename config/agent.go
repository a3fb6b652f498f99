package config

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"time"
)

// AgentConfig bounds the investigation: the tool-calling loop in which the
// model asks for logs, events, status, YAML, PromQL and runbooks itself
// (package agent). Models without tool calling answer in one shot.
type AgentConfig struct {
	// Enabled lets a model that supports tool calling investigate; false
	// keeps every answer one-shot, from the evidence collected beforehand.
	Enabled bool `yaml:"enabled"`
	// MaxSteps is how many times the model may ask for tools before it
	// must answer.
	MaxSteps int `yaml:"max_steps"`
	// MaxToolOutput is how many bytes of one tool's result reach the model
	// (the rest is cut, with a marker).
	MaxToolOutput int `yaml:"max_tool_output"`
	// MaxTotalTokens bounds prompt and answer tokens over one whole
	// investigation, as the server counts them.
	MaxTotalTokens int `yaml:"max_total_tokens"`
	// Timeout bounds one investigation; the model is then asked to answer
	// from what it has.
	Timeout time.Duration `yaml:"timeout"`
	// Namespaces the tools may read: shell globs ("team-*"); deny wins, an
	// empty allow list allows every namespace.
	Namespaces NamespaceLists `yaml:"namespaces"`
	// MCPServers add the tools of MCP servers (another team's deploy
	// history, a ticket system) to the investigation.
	MCPServers []MCPServerConfig `yaml:"mcp_servers"`
}

// MCPServerConfig is an MCP server whose tools the model may call: a
// command speaking MCP on stdio, or a streamable HTTP endpoint.
type MCPServerConfig struct {
	// Name prefixes its tools ("<name>_<tool>").
	Name string `yaml:"name"`
	// Command (with its arguments) starts a stdio server.
	Command []string `yaml:"command"`
	// Env is added to medic's environment for the command.
	Env map[string]string `yaml:"env"`
	// URL is a streamable HTTP endpoint, instead of a command.
	URL string `yaml:"url"`
	// Tools, when set, are the only tools of the server offered.
	Tools []string `yaml:"tools"`
}

// NamespaceLists are allow and deny lists of namespace globs.
type NamespaceLists struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

func defaultAgent() AgentConfig {
	return AgentConfig{
		Enabled:        true,
		MaxSteps:       10,
		MaxToolOutput:  8000,
		MaxTotalTokens: 60000,
		Timeout:        3 * time.Minute,
		// Empty, not nil: the example file's [] decodes to the same.
		Namespaces: NamespaceLists{Allow: []string{}, Deny: []string{}},
		MCPServers: []MCPServerConfig{},
	}
}

// languageRE is a BCP 47-like tag: de, zh-CN, pt-BR, sr-Latn.
var languageRE = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)

func (c *Config) validateAgent() error {
	if l := c.AI.Language; l != "" && !languageRE.MatchString(l) {
		return fmt.Errorf("ai.language: %q is not a language tag (en, de, zh-CN, …)", l)
	}
	a := &c.AI.Agent
	switch {
	case a.MaxSteps < 1 || a.MaxSteps > 50:
		return errors.New("ai.agent.max_steps: must be between 1 and 50")
	case a.MaxToolOutput < 500:
		return errors.New("ai.agent.max_tool_output: must be at least 500 (bytes)")
	case a.MaxTotalTokens < 1000:
		return errors.New("ai.agent.max_total_tokens: must be at least 1000")
	case a.Timeout <= 0:
		return errors.New("ai.agent.timeout: must be positive")
	}
	for field, list := range map[string][]string{"allow": a.Namespaces.Allow, "deny": a.Namespaces.Deny} {
		for i, p := range list {
			if _, err := path.Match(p, ""); err != nil || p == "" {
				return fmt.Errorf("ai.agent.namespaces.%s[%d]: %q is not a glob pattern", field, i, p)
			}
		}
	}
	seen := map[string]bool{}
	for i, m := range a.MCPServers {
		field := fmt.Sprintf("ai.agent.mcp_servers[%d]", i)
		switch {
		case !mcpNameRE.MatchString(m.Name):
			return fmt.Errorf("%s.name: %q must be 1-32 letters, digits, - or _", field, m.Name)
		case seen[m.Name]:
			return fmt.Errorf("%s.name: %q is used twice", field, m.Name)
		case (len(m.Command) == 0) == (m.URL == ""):
			return fmt.Errorf("%s: set command or url, not both", field)
		}
		seen[m.Name] = true
		if m.URL != "" {
			if u, err := url.Parse(m.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%s.url: %q is not an http(s) URL", field, m.URL)
			}
		}
	}
	return nil
}

var mcpNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
