package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPlaybookReposDefaults(t *testing.T) {
	p := writeConfig(t, `
playbook_repos:
  - url: https://github.com/acme/medic-playbooks.git
    auth: {token_env: GIT_TOKEN}
  - name: nodes
    url: git@github.com:acme/node-playbooks.git
    branch: release
    path: ./playbooks/
    poll_interval: 0s
    auth: {ssh_key_file: KEY, known_hosts_file: KH}
`)
	dir := t.TempDir()
	key, kh := filepath.Join(dir, "key"), filepath.Join(dir, "known_hosts")
	for _, f := range []string{key, kh} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(p)
	_ = os.WriteFile(p, []byte(strings.NewReplacer("KEY", key, "KH", kh).Replace(string(raw))), 0o600)

	cfg, err := Load(p, []string{"GIT_TOKEN=t"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.PlaybookRepos[0], cfg.PlaybookRepos[1]
	if a.Name != "medic-playbooks" || a.Branch != "main" || a.Path != "." || a.PollInterval != time.Minute || a.Auth.Username != "x-access-token" {
		t.Errorf("https defaults: %+v", a)
	}
	if b.Name != "nodes" || b.Branch != "release" || b.Path != "playbooks" || b.PollInterval != 0 || b.Auth.Username != "git" {
		t.Errorf("ssh entry: %+v", b)
	}
}

func TestPlaybookReposValidationNamesTheField(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, yaml, want string
		env              []string
	}{
		{"missing url", "playbook_repos: [{name: a}]", "playbook_repos[0].url: must not be empty", nil},
		{"bad scheme", "playbook_repos: [{url: 'ftp://x/y.git'}]", "playbook_repos[0].url: \"ftp://x/y.git\": use https://", nil},
		{"duplicate names", "playbook_repos: [{url: 'https://h/a.git'}, {url: 'https://other/a.git'}]", "playbook_repos[1].name: \"a\" is already the name of playbook_repos[0]", nil},
		{"bad name", "playbook_repos: [{name: 'a b', url: 'https://h/a.git'}]", "playbook_repos[0].name:", nil},
		{"bad branch", "playbook_repos: [{url: 'https://h/a.git', branch: 'a..b'}]", "playbook_repos[0].branch:", nil},
		{"path outside", "playbook_repos: [{url: 'https://h/a.git', path: '../x'}]", "playbook_repos[0].path:", nil},
		{"negative poll", "playbook_repos: [{url: 'https://h/a.git', poll_interval: -1s}]", "playbook_repos[0].poll_interval: must not be negative", nil},
		{"too fast poll", "playbook_repos: [{url: 'https://h/a.git', poll_interval: 10ms}]", "playbook_repos[0].poll_interval: 10ms is too short", nil},
		{"unknown key", "playbook_repos: [{url: 'https://h/a.git', pol_interval: 1m}]", `unknown parameter "pol_interval" (did you mean "poll_interval"?)`, nil},
		{"token env and file", "playbook_repos: [{url: 'https://h/a.git', auth: {token_env: T, token_file: " + key + "}}]", "playbook_repos[0].auth.token_env and playbook_repos[0].auth.token_file: set one", []string{"T=x"}},
		{"token env unset", "playbook_repos: [{url: 'https://h/a.git', auth: {token_env: NOPE}}]", "playbook_repos[0].auth.token_env: environment variable NOPE is not set", nil},
		{"token file missing", "playbook_repos: [{url: 'https://h/a.git', auth: {token_file: /nonexistent/token}}]", "playbook_repos[0].auth.token_file:", nil},
		{"token over plain http", "playbook_repos: [{url: 'http://git.example.com/a.git', auth: {token_env: T}}]", "playbook_repos[0].url: a token must not travel over plain http", []string{"T=x"}},
		{"ssh without key", "playbook_repos: [{url: 'git@github.com:acme/a.git'}]", "playbook_repos[0].auth.ssh_key_file: required", nil},
		{"ssh without known_hosts", "playbook_repos: [{url: 'ssh://git@github.com/acme/a.git', auth: {ssh_key_file: " + key + "}}]", "playbook_repos[0].auth.known_hosts_file: required for the SSH URL", nil},
		{"ssh with a token", "playbook_repos: [{url: 'git@github.com:acme/a.git', auth: {token_env: T}}]", "playbook_repos[0].auth: a token is for HTTPS", []string{"T=x"}},
		{"ssh key on https", "playbook_repos: [{url: 'https://h/a.git', auth: {ssh_key_file: " + key + "}}]", "playbook_repos[0].auth: SSH settings need an SSH URL", nil},
		{"password in url", "playbook_repos: [{url: 'https://u:p@h/a.git'}]", "playbook_repos[0].url: do not put a password in the URL", nil},
		{"admin sink unknown", "playbooks: {admin_sink: pager}", `playbooks.admin_sink: "pager" is not a configured sink`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.yaml), tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want error containing %q, got %v", tt.want, err)
			}
		})
	}
}

func TestInsecureHostKeyMustBeExplicitAndWarns(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(writeConfig(t, "playbook_repos: [{url: 'git@github.com:acme/a.git', auth: {ssh_key_file: "+key+", insecure_ignore_host_key: true}}]"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(cfg.Warnings, "\n"), "insecure_ignore_host_key is true") {
		t.Fatalf("no warning: %v", cfg.Warnings)
	}
}

func TestPlaybookWebhookSecretAndAdminSink(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("hook-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(writeConfig(t, `
playbooks: {admin_sink: admins, webhook_secret: inline, webhook_secret_file: `+secret+`}
sinks:
  - {name: admins, type: file, path: admins.jsonl, default: false}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Playbooks.WebhookSecret != "hook-secret" || cfg.Playbooks.AdminSink != "admins" {
		t.Fatalf("playbooks: %+v", cfg.Playbooks)
	}
	cfg, err = Load("", []string{"MEDIC_PLAYBOOKS_WEBHOOK_SECRET=from-env"})
	if err != nil || cfg.Playbooks.WebhookSecret != "from-env" {
		t.Fatalf("from the environment: %v %+v", err, cfg.Playbooks)
	}
}
