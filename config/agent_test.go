package config

import (
	"strings"
	"testing"
)

// TestAgentValidationNamesTheField: every bad ai.agent / ai.language value
// is refused with the field's path.
func TestAgentValidationNamesTheField(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"ai: {agent: {max_steps: 0}}", "ai.agent.max_steps: must be between 1 and 50"},
		{"ai: {agent: {max_tool_output: 10}}", "ai.agent.max_tool_output: must be at least 500"},
		{"ai: {agent: {max_total_tokens: 5}}", "ai.agent.max_total_tokens: must be at least 1000"},
		{"ai: {agent: {timeout: -1s}}", "ai.agent.timeout: must be positive"},
		{"ai: {agent: {namespaces: {deny: [kube-system, 'team-[']}}}", `ai.agent.namespaces.deny[1]: "team-[" is not a glob pattern`},
		{"ai: {language: 'Deutsch!'}", `ai.language: "Deutsch!" is not a language tag`},
		{"ai: {agent: {mcp_servers: [{name: 'a b', url: 'http://x'}]}}", `ai.agent.mcp_servers[0].name: "a b" must be`},
		{"ai: {agent: {mcp_servers: [{name: a, url: 'http://x'}, {name: a, command: [x]}]}}", `ai.agent.mcp_servers[1].name: "a" is used twice`},
		{"ai: {agent: {mcp_servers: [{name: a}]}}", "ai.agent.mcp_servers[0]: set command or url, not both"},
		{"ai: {agent: {mcp_servers: [{name: a, url: 'ftp://x'}]}}", `ai.agent.mcp_servers[0].url: "ftp://x" is not an http(s) URL`},
	} {
		p := writeConfig(t, c.yaml+"\n")
		if _, err := Load(p, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.yaml, err, c.want)
		}
	}
	p := writeConfig(t, "ai: {language: zh-CN, agent: {namespaces: {allow: ['team-*']}}}\n")
	if _, err := Load(p, nil); err != nil {
		t.Errorf("valid settings refused: %v", err)
	}
}

func TestAgentEnvironment(t *testing.T) {
	cfg, err := Load("", []string{"MEDIC_AI_LANGUAGE=de", "MEDIC_AI_AGENT_MAX_STEPS=4", "MEDIC_AI_AGENT_ENABLED=false"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AI.Language != "de" || cfg.AI.Agent.MaxSteps != 4 || cfg.AI.Agent.Enabled {
		t.Errorf("ai %+v", cfg.AI)
	}
}
