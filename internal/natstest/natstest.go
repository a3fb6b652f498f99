// Package natstest runs an in-process NATS server with JetStream for tests
// that play "the external NATS": a server of its own, apart from medic, with
// its own store folder on a fixed loopback port, so a test can stop it, wipe
// its store and start it again where medic expects to find it.
//
// Tests that need to kill a server with SIGKILL use real processes instead
// (test/natscluster).
package natstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/internal/testkit"
)

// Server is a restartable NATS server. Its methods fail the test on error.
type Server struct {
	t     testing.TB
	port  int
	store string
	opts  func(*server.Options)
	ns    *server.Server
}

// Start starts a server on a free loopback port with a store in a temporary
// folder; opts, when not nil, adjusts its options (limits, max payload)
// before each start. The server stops when the test ends.
func Start(t testing.TB, opts func(*server.Options)) *Server {
	t.Helper()
	s := &Server{t: t, port: testkit.FreePort(t), store: t.TempDir(), opts: opts}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the client URL; it stays the same across restarts.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// StoreDir is the JetStream store folder.
func (s *Server) StoreDir() string { return s.store }

// Start starts the server again after Stop (Start starts it the first time).
func (s *Server) Start() {
	s.t.Helper()
	o := &server.Options{ServerName: "external", Host: "127.0.0.1", Port: s.port, JetStream: true,
		StoreDir: s.store, NoLog: true, NoSigs: true}
	if s.opts != nil {
		s.opts(o)
	}
	ns, err := server.NewServer(o)
	if err != nil {
		s.t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("nats-server not ready in 10s")
	}
	s.ns = ns
}

// Stop shuts the server down and waits until it has; a no-op when stopped.
func (s *Server) Stop() {
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.ns = nil
	}
}

// Wipe stops the server, removes its whole store and starts it again: a
// server that lost its disk.
func (s *Server) Wipe() {
	s.t.Helper()
	s.Stop()
	if err := os.RemoveAll(s.store); err != nil {
		s.t.Fatal(err)
	}
	s.Start()
}

// JetStream connects a client to the server (closed when the test ends):
// a second process, a replica, or the test's own look at the store.
func (s *Server) JetStream() jetstream.JetStream {
	s.t.Helper()
	nc, err := nats.Connect(s.URL())
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	return js
}

// fillerStream is the stream Fill writes to.
const fillerStream = "FILLER"

// insufficientResources is the JetStream API error code of a store that is
// out of room, as the server defines it.
var insufficientResources = jetstream.ErrorCode(server.ApiErrors[server.JSInsufficientResourcesErr].ErrCode)

// Fill exhausts the server's JetStream storage (its max_file_store, or
// the disk) by writing 64 KiB messages to a stream of its own until the
// server refuses them for want of resources, and returns what frees that
// storage again (deletes the stream).
func (s *Server) Fill(ctx context.Context) (free func(context.Context) error) {
	s.t.Helper()
	nc, err := nats.Connect(s.URL())
	if err != nil {
		s.t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: fillerStream, Subjects: []string{"filler"}, Storage: jetstream.FileStorage}); err != nil {
		s.t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for i := 0; ; i++ {
		if i > 1000 {
			s.t.Fatal("the store never filled")
		}
		_, err := js.Publish(ctx, "filler", chunk)
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == insufficientResources {
			break
		}
		if err != nil {
			s.t.Fatalf("fill the store: %v", err)
		}
	}
	return func(ctx context.Context) error {
		defer nc.Close()
		return js.DeleteStream(ctx, fillerStream)
	}
}
