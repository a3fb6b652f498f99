package natscluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/test/toolbin"
)

// The cluster runs the nats-server medic embeds: Version is what go.mod
// requires.
func TestVersionIsGoMods(t *testing.T) {
	t.Parallel()
	root, err := toolbin.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "github.com/nats-io/nats-server/v2" {
			if f[1] != Version {
				t.Fatalf("go.mod requires nats-server %s, natscluster.Version is %s", f[1], Version)
			}
			return
		}
	}
	t.Fatal("go.mod does not require github.com/nats-io/nats-server/v2")
}

// A replicated stream keeps its messages and takes new ones when its
// leader is killed with SIGKILL.
func TestStreamSurvivesItsLeadersDeath(t *testing.T) {
	c, ctx := startThree(t)
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	const n = 100
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			for {
				// Each try has its own deadline: a publish sent while the
				// stream has no leader (just created, or its leader just
				// killed) may get no answer at all, and waiting for it on
				// the test's deadline left no time to try again (a loaded
				// cold CI run failed "publish 0: context deadline exceeded").
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := js.Publish(pctx, "t.x", []byte("m"), jetstream.WithMsgID(fmt.Sprintf("m-%d", i)))
				cancel()
				if err == nil {
					break
				} else if ctx.Err() != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	publish(0, n/2)
	leader, err := c.StreamLeader(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	// Published again from the start: the first half is deduplicated by
	// message ID on the new leader.
	publish(0, n)
	s, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Fatalf("stream holds %d messages after its leader %s died, want %d", info.State.Msgs, leader.Name, n)
	}
	if info.Cluster == nil || info.Cluster.Leader == leader.Name || info.Cluster.Leader == "" {
		t.Fatalf("no new leader: %+v", info.Cluster)
	}
}

// Replicas of medic starting together against a fresh cluster all open
// the bus: nats-server answers only the first of several concurrent
// creates of one replicated stream, and the others must retry rather
// than give up (medic would exit and crash-loop).
func TestReplicasOpenTheBusTogether(t *testing.T) {
	c, ctx := startThree(t)
	cfg := config.Default().Bus
	cfg.URL, cfg.Replicas = c.URLs(), 3
	logger := slog.New(slog.DiscardHandler)
	const replicas = 3
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			b, err := bus.Open(ctx, cfg, logger)
			if err == nil {
				_, err = b.Deliveries(ctx)
				b.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
}

// startThree starts a three-node cluster for a test, and its deadline.
func startThree(t *testing.T) (*Cluster, context.Context) {
	t.Helper()
	if testing.Short() && !Built() {
		t.Skip("nats-server is not built (test/tools/build-nats.sh); -short does not build it")
	}
	c := Start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c, ctx
}
