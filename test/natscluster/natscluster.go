// Package natscluster runs a real NATS JetStream cluster for medic's tests:
// nats-server processes routed to each other on loopback, each with its own
// store, so that a node can be killed with SIGKILL as a real server dies
// (an in-process server cannot be).
//
// The binary is built by test/tools/build-nats.sh from the nats-server
// module medic's go.mod pins (the server medic embeds) into the per-user
// tools cache, nats-server-<Version>/ (toolbin.ToolsDir; or
// $MEDIC_TOOLS_DIR), and reused afterwards. When it is missing, Binary runs
// the script itself, so `go test` works on a clean checkout.
package natscluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/toolbin"
)

// Version is the nats-server release the cluster runs: the one go.mod
// requires (TestVersionIsGoMods holds them together; the build script
// refuses a mismatch).
const Version = "v2.15.2"

var natsTool = toolbin.Tool{
	Name:    "nats-server",
	Version: Version,
	Script:  "test/tools/build-nats.sh",
	Files:   []string{"nats-server"},
	Env:     []string{"NATS_VERSION=" + Version},
	Takes:   "about a minute",
}

// Binary returns the absolute path of nats-server, building it first when
// it is absent.
func Binary() (string, error) {
	dir, err := natsTool.Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "nats-server"), nil
}

// Built reports whether nats-server is built already, so that -short runs
// can skip rather than build it.
func Built() bool { return natsTool.Built() }

// Node is one nats-server process of a Cluster.
type Node struct {
	Name string
	// URL is the node's client URL, nats://127.0.0.1:<port>.
	URL string

	cmd    *exec.Cmd
	out    *toolbin.Tail
	exited chan struct{}
	err    error
}

// Cluster is a JetStream cluster of nats-server processes on loopback.
type Cluster struct {
	Nodes []*Node
}

// Start starts a cluster of n nodes (n ≥ 3 for replicated streams to keep
// a quorum when one dies) and waits until JetStream answers on every node,
// that is, until the nodes found each other and elected a meta leader. The
// processes are killed when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ports, err := testkit.FreePorts(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	clientPorts, routePorts := ports[:n], ports[n:]
	routes := make([]string, n)
	for i, p := range routePorts {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	c := &Cluster{}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		conf := filepath.Join(dir, name+".conf")
		// JSON is valid NATS configuration; %q quotes paths safely.
		text := fmt.Sprintf(`{
  "server_name": %q,
  "listen": "127.0.0.1:%d",
  "max_payload": 8388608,
  "jetstream": {"store_dir": %q, "max_memory_store": 67108864, "max_file_store": 2147483648},
  "cluster": {"name": "medic-test", "listen": "127.0.0.1:%d", "routes": [%s]}
}
`, name, clientPorts[i], filepath.Join(dir, name), routePorts[i], quoteAll(routes))
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		node := &Node{Name: name, URL: fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]), out: &toolbin.Tail{}, exited: make(chan struct{})}
		node.cmd = exec.Command(bin, "--config", conf)
		node.cmd.Stdout, node.cmd.Stderr = node.out, node.out
		if err := node.cmd.Start(); err != nil {
			t.Fatalf("start nats-server %s: %v", name, err)
		}
		go func() { node.err = node.cmd.Wait(); close(node.exited) }()
		t.Cleanup(func() {
			_ = node.cmd.Process.Kill()
			<-node.exited
		})
		c.Nodes = append(c.Nodes, node)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, node := range c.Nodes {
		if err := node.waitJetStream(ctx); err != nil {
			t.Fatalf("nats-server %s: %v\n%s", node.Name, err, node.out.String())
		}
	}
	return c
}

// URLs returns every node's client URL, comma-separated: what a client
// (medic's bus.url) is given to fail over between them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL
	}
	return strings.Join(urls, ",")
}

// Node returns the node named name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// StreamLeader returns the node that leads stream, asking any live node.
func (c *Cluster) StreamLeader(ctx context.Context, stream string) (*Node, error) {
	var errs []error
	for _, n := range c.Nodes {
		if n.Exited() {
			continue
		}
		leader, err := n.streamLeader(ctx, stream)
		if err == nil {
			if node := c.Node(leader); node != nil {
				return node, nil
			}
			err = fmt.Errorf("leader %q is not a node of this cluster", leader)
		}
		errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
	}
	return nil, fmt.Errorf("leader of stream %s: %w", stream, errors.Join(errs...))
}

func (n *Node) streamLeader(ctx context.Context, stream string) (string, error) {
	nc, err := nats.Connect(n.URL, nats.Timeout(2*time.Second))
	if err != nil {
		return "", err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", errors.New("no leader")
	}
	return info.Cluster.Leader, nil
}

// Kill ends the node with SIGKILL, no shutdown, and waits for the process.
func (n *Node) Kill() error {
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill nats-server %s: %w", n.Name, err)
	}
	<-n.exited
	return nil
}

// Exited reports whether the process has ended.
func (n *Node) Exited() bool {
	select {
	case <-n.exited:
		return true
	default:
		return false
	}
}

// Output is the tail of the node's log, for a failure message.
func (n *Node) Output() string { return n.out.String() }

// waitJetStream polls until the node answers a JetStream account info
// request, which needs a meta leader, hence a quorum of routed nodes.
func (n *Node) waitJetStream(ctx context.Context) error {
	var last error
	for {
		if n.Exited() {
			return fmt.Errorf("exited before JetStream was ready: %v", n.err)
		}
		if last = n.accountInfo(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("JetStream not ready: %w", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (n *Node) accountInfo(ctx context.Context) error {
	nc, err := nats.Connect(n.URL, nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(actx)
	return err
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
