package gittest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// SSHServer serves git-upload-pack over SSH on loopback, accepting one
// client key, so tests can check deploy keys and host key verification.
type SSHServer struct {
	// Addr is host:port.
	Addr string
	// HostKey is the server's public host key.
	HostKey ssh.PublicKey
	// ClientKeyFile is a private key (OpenSSH format) the server accepts.
	ClientKeyFile string
	// KnownHosts is a known_hosts file naming this server and its key.
	KnownHosts string
	// WrongKnownHosts names this server with another key.
	WrongKnownHosts string
}

// URL is the ssh:// URL of a repository under the served root.
func (s *SSHServer) URL(bare string) string {
	return "ssh://git@" + s.Addr + bare
}

// ServeSSH starts the server until the test ends.
func ServeSSH(t testing.TB) *SSHServer {
	t.Helper()
	NeedGit(t)
	dir := t.TempDir()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(clientPriv, "medic test deploy key")
	if err != nil {
		t.Fatal(err)
	}
	s := &SSHServer{HostKey: hostSigner.PublicKey(), ClientKeyFile: filepath.Join(dir, "deploy_key")}
	if err := os.WriteFile(s.ClientKeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	allowed, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(allowed.Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("unknown key")
		},
	}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	host, port, _ := net.SplitHostPort(s.Addr)
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(s.HostKey))
	if err := os.WriteFile(s.KnownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewSignerFromKey(otherPriv)
	s.WrongKnownHosts = filepath.Join(dir, "wrong_known_hosts")
	wrong := fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(other.PublicKey()))
	if err := os.WriteFile(s.WrongKnownHosts, []byte(wrong), 0o600); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serveSSHConn(c, cfg) })
		}
	})
	return s
}

func serveSSHConn(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			defer ch.Close()
			for req := range requests {
				if req.Type != "exec" {
					_ = req.Reply(req.Type == "env", nil)
					continue
				}
				var payload struct{ Command string }
				if ssh.Unmarshal(req.Payload, &payload) != nil {
					_ = req.Reply(false, nil)
					return
				}
				_ = req.Reply(true, nil)
				code := runGitCommand(payload.Command, ch)
				status := make([]byte, 4)
				binary.BigEndian.PutUint32(status, uint32(code))
				_, _ = ch.SendRequest("exit-status", false, status)
				return
			}
		}()
	}
}

// runGitCommand runs "git-upload-pack '/path'" with the channel as stdio.
func runGitCommand(command string, ch ssh.Channel) int {
	name, arg, _ := strings.Cut(command, " ")
	if name != "git-upload-pack" {
		fmt.Fprintf(ch.Stderr(), "only git-upload-pack is served\n")
		return 1
	}
	cmd := exec.Command("git", "upload-pack", strings.Trim(arg, "'\""))
	cmd.Stdout, cmd.Stderr = ch, io.Discard
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 1
	}
	// Not cmd.Stdin = ch: Wait would wait for the client to close its side.
	go func() { _, _ = io.Copy(stdin, ch); _ = stdin.Close() }()
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return 1
	}
	return 0
}
