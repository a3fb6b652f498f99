package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/webhook"
	"github.com/medichq/medic/test/natscluster"
)

// replicaHeader names the medic replica that sent a webhook (a header each
// replica's sink configuration adds), so the receiver can tell replicas
// apart.
const replicaHeader = "X-Test-Replica"

// TestClusterKillNodeAndReplica runs medic as it is scaled out: three
// `medic serve` processes against a three-node JetStream cluster (real
// nats-server processes), streams and buckets with three replicas, one
// webhook receiver shared by all. A burst of alerts is spread over the
// three intakes, retried elsewhere on 503 or a refused connection as
// Alertmanager behind a Service would; mid-burst the leader of the events
// stream and one medic replica are killed with SIGKILL. Every alert
// answered 200 must reach the receiver (lost = 0) and none may be
// notified twice (duplicates = 0).
func TestClusterKillNodeAndReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("builds medic and runs a NATS cluster and three medic processes")
	}
	began := time.Now()
	bin := medicBinary(t)
	t.Logf("medic binary built in %.1fs", time.Since(began).Seconds())
	began = time.Now()
	cluster := natscluster.Start(t, 3)
	rec := newHookReceiver()
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)

	const replicas = 3
	procs := make([]*process, replicas)
	for i := range procs {
		dir := t.TempDir()
		configPath := filepath.Join(dir, "medic.yaml")
		// ack_wait (10s) above a NATS leader election (4-9s), so that a
		// message whose progress signals went to the dead leader is not
		// handed to a second replica while the first still works on it,
		// and short enough that the killed replica's work comes back
		// within the test; backoff short for what failed during the
		// election.
		conf := fmt.Sprintf(`data_dir: %q
log: {level: warn}
playbooks: {dirs: [], reload_interval: 0s}
bus: {url: %q, replicas: 3, ack_wait: 10s, backoff: [250ms, 1s, 2s, 4s]}
sinks:
  - {name: hook, type: webhook, url: %q, headers: {%s: r%d}}
`, dir, cluster.URLs(), srv.URL, replicaHeader, i)
		if err := os.WriteFile(configPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		procs[i] = startProcess(t, bin, configPath, testkit.FreeAddr(t))
	}

	nc, err := nats.Connect(cluster.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	assertReplicated(ctx, t, js, replicas)

	// The burst: requests of perRequest alerts, each first sent to replica
	// i%3, and to the next one after a 503 or a connection error.
	const requests, perRequest, senders = 90, 20, 6
	total := requests * perRequest
	var (
		answered   atomic.Int64
		killAt     = int64(requests / 2)
		killed     = make(chan struct{})
		perReplica [replicas]atomic.Int64
		retries    atomic.Int64
		next       atomic.Int64
	)
	deadReplica := 1
	var (
		beforeKill [replicas]int64 // alerts each replica accepted before the kill
		untilKill  time.Duration
		start      = time.Now()
	)
	go func() {
		defer close(killed)
		for answered.Load() < killAt && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		untilKill = time.Since(start)
		for i := range beforeKill {
			beforeKill[i] = perReplica[i].Load()
		}
		leader, err := cluster.StreamLeader(ctx, bus.EventsStream)
		if err != nil {
			t.Errorf("find the events stream's leader: %v", err)
			return
		}
		if err := leader.Kill(); err != nil {
			t.Error(err)
		}
		if err := procs[deadReplica].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Error(err)
		}
		_ = procs[deadReplica].wait()
		t.Logf("killed nats-server %s (leader of %s) and medic r%d after %d of %d requests were answered",
			leader.Name, bus.EventsStream, deadReplica, answered.Load(), requests)
	}()
	var senderWG sync.WaitGroup
	for range senders {
		senderWG.Go(func() {
			for {
				r := int(next.Add(1) - 1)
				if r >= requests {
					return
				}
				body := burst(perRequest, r*perRequest)
				by, tries, err := postRetrying(ctx, procs, r%replicas, body)
				if err != nil {
					t.Errorf("request %d: %v", r, err)
					return
				}
				perReplica[by].Add(perRequest)
				retries.Add(int64(tries - 1))
				answered.Add(1)
			}
		})
	}
	senderWG.Wait()
	burstTime := time.Since(start)
	<-killed
	if t.Failed() {
		return
	}
	// Intake rates: per replica while all three were up, and for the whole
	// burst across the failover.
	accepted := 0
	for i := range perReplica {
		accepted += int(perReplica[i].Load())
		t.Logf("intake before the kill: medic r%d accepted %d alerts in %.1fs, %.0f alerts/s",
			i, beforeKill[i], untilKill.Seconds(), float64(beforeKill[i])/untilKill.Seconds())
	}
	t.Logf("intake over the burst: %d alerts in %d requests accepted in %.1fs, %.0f alerts/s across the cluster (%.0f per replica), %d retries after 503 or a refused connection; accepted by replica %v",
		accepted, requests, burstTime.Seconds(), float64(accepted)/burstTime.Seconds(), float64(accepted)/burstTime.Seconds()/replicas,
		retries.Load(), []int64{perReplica[0].Load(), perReplica[1].Load(), perReplica[2].Load()})

	// Drained: every alert delivered, and nothing pending or in flight on
	// any consumer, so no redelivery can still come.
	pods := make([]string, total)
	for i := range pods {
		pods[i] = fmt.Sprintf("cart-%05d", i)
	}
	drainStart := time.Now()
	for !rec.hasAll(pods) || !drained(ctx, js) {
		if ctx.Err() != nil {
			t.Fatalf("not drained: %d of %d alerts delivered", len(rec.snapshot().byPod), total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("drained %.1fs after the burst", time.Since(drainStart).Seconds())

	got := rec.snapshot()
	for _, err := range got.errs {
		t.Errorf("receiver: %v", err)
	}
	lost := 0
	for _, pod := range pods {
		if len(got.byPod[pod]) == 0 {
			lost++
		}
	}
	// duplicates: alerts notified twice, under two Idempotency-Keys (two
	// findings for one alert), or posted twice under one key where the
	// first post did not come from the killed replica. resent: a finding
	// whose first post came from the killed replica, which died between
	// the receiver's answer and its delivery record: the window
	// Idempotency-Key exists for; the receiver acts once.
	duplicates, resent := 0, 0
	for pod, keys := range got.byPod {
		if len(keys) > 1 {
			duplicates += len(keys) - 1
			t.Errorf("alert %s notified under %d Idempotency-Keys", pod, len(keys))
		}
	}
	for key, from := range got.byKey {
		if len(from) < 2 {
			continue
		}
		if from[0] == fmt.Sprintf("r%d", deadReplica) && len(from) == 2 {
			resent++
			continue
		}
		duplicates += len(from) - 1
		t.Errorf("Idempotency-Key %s posted %d times, by %v", key, len(from), from)
	}
	dead := deadLetters(ctx, t, js)
	t.Logf("accepted %d, delivered %d, lost %d, duplicates %d, resent after the replica's death %d (absorbed by Idempotency-Key), dead letters %d, posts by replica %v",
		accepted, len(got.byPod), lost, duplicates, resent, dead, got.byReplica)
	if accepted != total {
		t.Errorf("accepted %d alerts, want %d", accepted, total)
	}
	if lost != 0 || duplicates != 0 || dead != 0 {
		t.Errorf("lost %d, duplicates %d, dead letters %d; want 0, 0, 0", lost, duplicates, dead)
	}
	// One sink worker per replica (engine.sink_workers: 1) is one send in
	// flight when the replica died: at most one finding can be resent.
	if resent > 1 {
		t.Errorf("%d findings resent after the replica's death, more than its one sink worker had in flight", resent)
	}
	if t.Failed() {
		for i, p := range procs {
			t.Logf("medic r%d's log:\n%s", i, p.out.String())
		}
	}
	for i, p := range procs {
		if i == deadReplica {
			continue
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.wait(); err != nil {
			t.Errorf("r%d graceful shutdown: %v\n%s", i, err, p.out.String())
		}
	}
	t.Logf("cluster, replicas, burst, drain and shutdown took %.1fs", time.Since(began).Seconds())
}

// postRetrying posts body to the replicas, starting with first, until one
// answers 200, as Alertmanager retries a webhook behind a Service: after a
// 503 (waiting its Retry-After, at most a second) or a connection error it
// tries the next replica. It returns the replica that accepted and the
// number of attempts.
func postRetrying(ctx context.Context, procs []*process, first int, body []byte) (by, tries int, err error) {
	client := &http.Client{Timeout: 15 * time.Second}
	for tries = 1; ; tries++ {
		by = (first + tries - 1) % len(procs)
		wait := 100 * time.Millisecond
		status, retryAfter, err := postOnce(ctx, client, procs[by].url+"/api/alerts", body)
		switch {
		case err == nil && status == http.StatusOK:
			return by, tries, nil
		case err == nil && status != http.StatusServiceUnavailable:
			return by, tries, fmt.Errorf("replica r%d answered %d", by, status)
		case retryAfter > 0:
			wait = min(retryAfter, time.Second)
		}
		select {
		case <-ctx.Done():
			return by, tries, fmt.Errorf("not accepted after %d attempts: %w (last: %d, %v)", tries, ctx.Err(), status, err)
		case <-time.After(wait):
		}
	}
}

func postOnce(ctx context.Context, client *http.Client, url string, body []byte) (status int, retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		retryAfter = time.Duration(s) * time.Second
	}
	return resp.StatusCode, retryAfter, nil
}

// hookReceiver is the one webhook endpoint every replica posts to. It
// records each post by Idempotency-Key and by alert (the pod label), in
// arrival order, and always answers 200.
type hookReceiver struct {
	mu        sync.Mutex
	byKey     map[string][]string            // key → replicas that posted it
	byPod     map[string]map[string]struct{} // pod → keys
	byReplica map[string]int
	errs      []error
}

func newHookReceiver() *hookReceiver {
	return &hookReceiver{byKey: map[string][]string{}, byPod: map[string]map[string]struct{}{}, byReplica: map[string]int{}}
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p webhook.Payload
	err := json.NewDecoder(r.Body).Decode(&p)
	key, replica := r.Header.Get(webhook.HeaderIdempotencyKey), r.Header.Get(replicaHeader)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err != nil:
		h.errs = append(h.errs, fmt.Errorf("decode: %w", err))
	case key == "" || p.Finding == nil || p.Finding.Event.Labels["pod"] == "":
		h.errs = append(h.errs, errors.New("a post without Idempotency-Key, finding or pod label"))
	default:
		h.byKey[key] = append(h.byKey[key], replica)
		pod := p.Finding.Event.Labels["pod"]
		if h.byPod[pod] == nil {
			h.byPod[pod] = map[string]struct{}{}
		}
		h.byPod[pod][key] = struct{}{}
		h.byReplica[replica]++
	}
	w.WriteHeader(http.StatusOK)
}

type hookPosts struct {
	byKey     map[string][]string
	byPod     map[string]map[string]struct{}
	byReplica map[string]int
	errs      []error
}

func (h *hookReceiver) snapshot() hookPosts {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := hookPosts{byKey: map[string][]string{}, byPod: map[string]map[string]struct{}{}, byReplica: map[string]int{}, errs: slices.Clone(h.errs)}
	for k, v := range h.byKey {
		s.byKey[k] = slices.Clone(v)
	}
	for k, v := range h.byPod {
		s.byPod[k] = map[string]struct{}{}
		for key := range v {
			s.byPod[k][key] = struct{}{}
		}
	}
	for k, v := range h.byReplica {
		s.byReplica[k] = v
	}
	return s
}

func (h *hookReceiver) hasAll(pods []string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range pods {
		if len(h.byPod[p]) == 0 {
			return false
		}
	}
	return true
}

// assertReplicated checks that every stream medic created, KV buckets
// included, has the configured number of replicas.
func assertReplicated(ctx context.Context, t *testing.T, js jetstream.JetStream, want int) {
	t.Helper()
	var names []string
	l := js.ListStreams(ctx)
	for info := range l.Info() {
		names = append(names, info.Config.Name)
		if info.Config.Replicas != want {
			t.Errorf("stream %s has %d replicas, want %d (bus.replicas)", info.Config.Name, info.Config.Replicas, want)
		}
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{bus.EventsStream, bus.FindingsStream, bus.DeadLetterStream, "KV_" + bus.DeliveriesBucket} {
		if !slices.Contains(names, must) {
			t.Errorf("stream %s missing; medic created %v", must, names)
		}
	}
	t.Logf("streams and buckets, each with %d replicas: %v", want, names)
}

// drained reports whether no message of the events and findings streams is
// pending or unacknowledged on any consumer.
func drained(ctx context.Context, js jetstream.JetStream) bool {
	for _, stream := range []string{bus.EventsStream, bus.FindingsStream} {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		l := s.ListConsumers(ctx)
		for info := range l.Info() {
			if info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
		if l.Err() != nil {
			return false
		}
	}
	return true
}

func deadLetters(ctx context.Context, t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(ctx, bus.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
