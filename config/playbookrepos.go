package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/params"
)

// PlaybookRepo is one Git repository medic follows for playbooks:
//
//	playbook_repos:
//	  - name: team-playbooks
//	    url: https://github.com/acme/medic-playbooks.git
//	    branch: main
//	    path: playbooks
//	    poll_interval: 1m
//	    auth: {token_file: /var/run/secrets/medic/git-token}
//
// A new commit is fetched, parsed and validated as a whole before it
// replaces the running playbooks; an invalid commit is rejected and the last
// good set keeps running.
type PlaybookRepo struct {
	// Name identifies the repository in errors, versions and findings
	// (default: the last element of the URL without .git).
	Name string `yaml:"name"`
	// URL is https://…, http://… (loopback or test servers), ssh://…,
	// git@host:org/repo.git or file://….
	URL string `yaml:"url"`
	// Branch is followed (default main).
	Branch string `yaml:"branch"`
	// Path is the folder inside the repository holding the playbooks
	// (default ".": the whole repository).
	Path string `yaml:"path"`
	// PollInterval is how often the branch is fetched; 0 turns polling off
	// (the webhook and POST /api/playbooks/reload still work).
	PollInterval time.Duration    `yaml:"poll_interval"`
	Auth         PlaybookRepoAuth `yaml:"auth"`

	pollSet bool // poll_interval was given (0 then means off, not the default)
}

// UnmarshalYAML decodes strictly (an unknown key is an error with its line)
// and remembers whether poll_interval was given.
func (r *PlaybookRepo) UnmarshalYAML(node *yaml.Node) error {
	type plain PlaybookRepo
	var p plain
	if err := params.Decode(node, &p); err != nil {
		return err
	}
	*r = PlaybookRepo(p)
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == "poll_interval" {
			r.pollSet = true
		}
	}
	return nil
}

// PlaybookRepoAuth are the credentials of a playbook repository. HTTPS uses
// a token (from an environment variable or a file, read at every fetch so a
// rotated token is picked up); SSH uses a deploy key and checks the server
// against known_hosts.
type PlaybookRepoAuth struct {
	// Username goes with the token over HTTPS (default "x-access-token",
	// which GitHub, GitLab and Gitea accept with a token) or is the SSH user
	// (default "git").
	Username  string `yaml:"username"`
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`
	// SSHKeyFile is a private key (a deploy key) in OpenSSH or PEM format.
	SSHKeyFile string `yaml:"ssh_key_file"`
	// SSHKeyPassphraseEnv names the variable holding the key's passphrase.
	SSHKeyPassphraseEnv string `yaml:"ssh_key_passphrase_env"`
	// KnownHostsFile is required for SSH: the server's host key is checked
	// against it.
	KnownHostsFile string `yaml:"known_hosts_file"`
	// InsecureIgnoreHostKey turns host key checking off. It must be set
	// explicitly, and medic warns about it at every start.
	InsecureIgnoreHostKey bool `yaml:"insecure_ignore_host_key"`
}

// Defaults of a playbook repository.
const (
	DefaultPlaybookRepoBranch       = "main"
	DefaultPlaybookRepoPollInterval = time.Minute
	DefaultGitTokenUsername         = "x-access-token"
	DefaultGitSSHUsername           = "git"
)

var (
	repoNameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	scpLikeRE   = regexp.MustCompile(`^(?:([A-Za-z0-9_.-]+)@)?([A-Za-z0-9.-]+):([^/].*)$`)
	badBranchRE = regexp.MustCompile(`(^[-/.])|(\.\.)|([\s~^:?*\[\\])|(@\{)|(/$)|(\.lock$)|(\.$)`)
)

// IsSSHURL reports whether a repository URL is reached over SSH
// (ssh://… or the scp-like git@host:path).
func IsSSHURL(u string) bool {
	if strings.HasPrefix(u, "ssh://") {
		return true
	}
	return !strings.Contains(u, "://") && scpLikeRE.MatchString(u)
}

// repoNameFromURL derives a default name: the last path element without .git.
func repoNameFromURL(u string) string {
	s := strings.TrimSuffix(strings.TrimRight(u, "/"), ".git")
	if i := strings.LastIndexAny(s, "/:"); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// setPlaybookRepoDefaults fills what a repository entry leaves out.
func (c *Config) setPlaybookRepoDefaults() {
	for i := range c.PlaybookRepos {
		r := &c.PlaybookRepos[i]
		if r.Name == "" {
			r.Name = repoNameFromURL(r.URL)
		}
		if r.Branch == "" {
			r.Branch = DefaultPlaybookRepoBranch
		}
		if r.Path == "" {
			r.Path = "."
		}
		r.Path = path.Clean(strings.TrimPrefix(r.Path, "./"))
		if r.PollInterval == 0 && !r.pollSet {
			r.PollInterval = DefaultPlaybookRepoPollInterval
		}
		if r.Auth.Username == "" {
			if IsSSHURL(r.URL) {
				r.Auth.Username = DefaultGitSSHUsername
			} else if r.Auth.TokenEnv != "" || r.Auth.TokenFile != "" {
				r.Auth.Username = DefaultGitTokenUsername
			}
		}
	}
}

// validatePlaybookRepos checks playbook_repos and the Git-related playbooks
// keys; errors name the field (playbook_repos[1].url: …).
func (c *Config) validatePlaybookRepos() error {
	seen := map[string]int{}
	for i := range c.PlaybookRepos {
		r := &c.PlaybookRepos[i]
		field := func(name string) string { return fmt.Sprintf("playbook_repos[%d].%s", i, name) }
		if strings.TrimSpace(r.URL) == "" {
			return fmt.Errorf("%s: must not be empty", field("url"))
		}
		if !repoNameRE.MatchString(r.Name) {
			return fmt.Errorf("%s: %q must be 1-63 letters, digits, '.', '_' or '-' (it names the clone folder)", field("name"), r.Name)
		}
		if j, dup := seen[r.Name]; dup {
			return fmt.Errorf("%s: %q is already the name of playbook_repos[%d]; give each repository its own name", field("name"), r.Name, j)
		}
		seen[r.Name] = i
		if badBranchRE.MatchString(r.Branch) || r.Branch == "" {
			return fmt.Errorf("%s: %q is not a valid branch name", field("branch"), r.Branch)
		}
		if path.IsAbs(r.Path) || r.Path == ".." || strings.HasPrefix(r.Path, "../") {
			return fmt.Errorf("%s: %q must be a relative folder inside the repository", field("path"), r.Path)
		}
		if r.PollInterval < 0 {
			return fmt.Errorf("%s: must not be negative (0 turns polling off)", field("poll_interval"))
		}
		if r.PollInterval > 0 && r.PollInterval < time.Second {
			return fmt.Errorf("%s: %s is too short; use at least 1s, or a webhook", field("poll_interval"), r.PollInterval)
		}
		if err := r.validateURLAndAuth(field); err != nil {
			return err
		}
	}
	if c.Playbooks.AdminSink != "" {
		found := false
		var names []string
		for _, s := range c.Sinks {
			names = append(names, s.Name)
			found = found || s.Name == c.Playbooks.AdminSink
		}
		if !found {
			return fmt.Errorf("playbooks.admin_sink: %q is not a configured sink (configured: %s)", c.Playbooks.AdminSink, strings.Join(names, ", "))
		}
	}
	return nil
}

func (r *PlaybookRepo) validateURLAndAuth(field func(string) string) error {
	a := &r.Auth
	hasToken := a.TokenEnv != "" || a.TokenFile != ""
	if a.TokenEnv != "" && a.TokenFile != "" {
		return fmt.Errorf("%s and %s: set one, not both", field("auth.token_env"), field("auth.token_file"))
	}
	if IsSSHURL(r.URL) {
		if hasToken {
			return fmt.Errorf("%s: a token is for HTTPS; an SSH URL needs auth.ssh_key_file", field("auth"))
		}
		if a.SSHKeyFile == "" {
			return fmt.Errorf("%s: required for the SSH URL %s (a deploy key)", field("auth.ssh_key_file"), r.URL)
		}
		if a.KnownHostsFile == "" && !a.InsecureIgnoreHostKey {
			return fmt.Errorf("%s: required for the SSH URL %s so the server is verified (ssh-keyscan HOST > known_hosts); "+
				"auth.insecure_ignore_host_key: true turns checking off", field("auth.known_hosts_file"), r.URL)
		}
		if a.KnownHostsFile != "" && a.InsecureIgnoreHostKey {
			return fmt.Errorf("%s: cannot be combined with %s", field("auth.insecure_ignore_host_key"), field("auth.known_hosts_file"))
		}
		return nil
	}
	if a.SSHKeyFile != "" || a.KnownHostsFile != "" || a.SSHKeyPassphraseEnv != "" || a.InsecureIgnoreHostKey {
		return fmt.Errorf("%s: SSH settings need an SSH URL (ssh://… or git@host:org/repo.git), not %s", field("auth"), r.URL)
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return fmt.Errorf("%s: %v", field("url"), err)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("%s: %q has no host", field("url"), r.URL)
		}
	case "http":
		if u.Host == "" {
			return fmt.Errorf("%s: %q has no host", field("url"), r.URL)
		}
		if hasToken && !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("%s: a token must not travel over plain http to %s; use https", field("url"), u.Host)
		}
	case "file":
		if hasToken {
			return fmt.Errorf("%s: a file:// repository takes no token", field("auth"))
		}
	default:
		return fmt.Errorf("%s: %q: use https://, ssh://, git@host:path or file:// (http:// for loopback test servers)", field("url"), r.URL)
	}
	if u.User != nil {
		if _, hasPass := u.User.Password(); hasPass {
			return fmt.Errorf("%s: do not put a password in the URL; use auth.token_file or auth.token_env", field("url"))
		}
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// checkPlaybookRepoSecrets checks at load time that the secrets the
// repositories name exist, so a typo fails the start rather than the first
// fetch. The values are read again at every fetch.
func (c *Config) checkPlaybookRepoSecrets(environ []string) error {
	env := map[string]bool{}
	for _, kv := range environ {
		if k, _, ok := strings.Cut(kv, "="); ok {
			env[k] = true
		}
	}
	for i := range c.PlaybookRepos {
		a := &c.PlaybookRepos[i].Auth
		field := func(name string) string { return fmt.Sprintf("playbook_repos[%d].auth.%s", i, name) }
		if a.TokenEnv != "" && !env[a.TokenEnv] {
			return fmt.Errorf("%s: environment variable %s is not set", field("token_env"), a.TokenEnv)
		}
		if a.SSHKeyPassphraseEnv != "" && !env[a.SSHKeyPassphraseEnv] {
			return fmt.Errorf("%s: environment variable %s is not set", field("ssh_key_passphrase_env"), a.SSHKeyPassphraseEnv)
		}
		for name, p := range map[string]string{"token_file": a.TokenFile, "ssh_key_file": a.SSHKeyFile, "known_hosts_file": a.KnownHostsFile} {
			if p == "" {
				continue
			}
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("%s: %w", field(name), err)
			}
		}
		if a.InsecureIgnoreHostKey {
			c.Warnings = append(c.Warnings, fmt.Sprintf(
				"playbook_repos[%d] (%s): auth.insecure_ignore_host_key is true: the SSH server's identity is NOT checked, "+
					"so anyone on the network path can serve playbooks; set auth.known_hosts_file instead",
				i, c.PlaybookRepos[i].Name))
		}
		if u, err := url.Parse(c.PlaybookRepos[i].URL); err == nil && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
			c.Warnings = append(c.Warnings, fmt.Sprintf(
				"playbook_repos[%d] (%s): %s is plain http: playbooks travel unencrypted and unauthenticated; use https",
				i, c.PlaybookRepos[i].Name, c.PlaybookRepos[i].URL))
		}
	}
	return nil
}
