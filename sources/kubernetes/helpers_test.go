package kubernetes

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/bus/triggerstate"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/triggers"
	kubetrig "github.com/medichq/medic/triggers/kubernetes"
)

// memPublisher stores events like JetStream does: an ID already stored is a
// duplicate and is not stored again.
type memPublisher struct {
	mu     sync.Mutex
	events []event.Event
	ids    map[string]bool
	dups   int
}

func (p *memPublisher) Publish(_ context.Context, evs []event.Event) (event.PublishResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ids == nil {
		p.ids = map[string]bool{}
	}
	var res event.PublishResult
	for _, ev := range evs {
		if p.ids[ev.ID] {
			p.dups++
			res.Duplicates++
			continue
		}
		p.ids[ev.ID] = true
		p.events = append(p.events, ev)
		res.Stored++
	}
	return res, nil
}

func (p *memPublisher) all() []event.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]event.Event(nil), p.events...)
}

// duplicates counts the events published again under a stored ID.
func (p *memPublisher) duplicates() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dups
}

// of returns the stored events of kind about the named subject.
func (p *memPublisher) of(kind event.Kind, name string) []event.Event {
	var out []event.Event
	for _, ev := range p.all() {
		if ev.Kind == kind && (name == "" || ev.Subject.Name == name) {
			out = append(out, ev)
		}
	}
	return out
}

// kubeTriggers builds the triggers of a playbook file the way medic loads
// playbooks, so parameters go through the same strict decoding.
func kubeTriggers(t *testing.T, yamlText string) []triggers.Trigger {
	t.Helper()
	set, err := playbooks.Build([]playbooks.File{{Path: "test.yaml", Data: []byte(yamlText)}}, playbooks.Options{Plugins: testPlugins()})
	if err != nil {
		t.Fatalf("playbooks: %v", err)
	}
	return set.Triggers()
}

// The Kubernetes triggers are what the detector serves.
var _ Want = (*kubetrig.Trigger)(nil)

// kubeInterest is the detector's interest in a playbook file's triggers.
func kubeInterest(t *testing.T, yamlText string) *Interest {
	t.Helper()
	return InterestOf(kubeTriggers(t, yamlText))
}

// matcher is the side the detector's events reach in medic serve: the
// playbooks.Engine over the same playbooks, applying the triggers' rate
// limits (triggers.Limited) with claims in memory, on the test's clock.
type matcher struct {
	t      *testing.T
	engine *playbooks.Engine
}

// newMatcher builds the engine over playbookYAML; now is the clock the
// rate-limit windows are measured on.
func newMatcher(t *testing.T, playbookYAML string, now func() time.Time) *matcher {
	t.Helper()
	store, err := playbooks.NewStore(func(context.Context) ([]playbooks.File, error) {
		return []playbooks.File{{Path: "test.yaml", Data: []byte(playbookYAML)}}, nil
	}, playbooks.Options{Plugins: testPlugins()}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	e, err := playbooks.NewEngine(store, &actions.Env{Logger: slog.New(slog.DiscardHandler)}, 10*time.Second, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.LimitRates(clockedLimiter{triggerstate.NewMemory(24 * time.Hour), now})
	return &matcher{t: t, engine: e}
}

// clockedLimiter measures windows on the test's clock, not the engine's.
type clockedLimiter struct {
	*triggerstate.Memory
	now func() time.Time
}

func (l clockedLimiter) Admit(ctx context.Context, key, eventID string, window time.Duration, _ time.Time) (bool, error) {
	return l.Memory.Admit(ctx, key, eventID, window, l.now())
}

// run hands evs to the engine in order, as the bus delivers them, and
// returns the finding of each (nil: no playbook ran).
func (m *matcher) run(evs ...event.Event) []*event.Finding {
	m.t.Helper()
	out := make([]*event.Finding, len(evs))
	for i := range evs {
		res, err := m.engine.Run(context.Background(), &evs[i])
		if err != nil {
			m.t.Fatal(err)
		}
		out[i] = res.Finding
	}
	return out
}

type harness struct {
	t     *testing.T
	kube  *fake.Clientset
	dyn   *dynamicfake.FakeDynamicClient
	pub   event.Publisher
	mem   *memPublisher
	clock *clocktesting.FakeClock
	state State
	det   *Detector
	logs  *testkit.SyncBuffer
	opts  Options

	obsMu    sync.Mutex
	observed map[string]any // "<type>/<namespace>/<name>" → the last object a handler looked at
	handled  map[string]int // how many times handlers looked at it
}

func (h *harness) observe(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	h.obsMu.Lock()
	key := fmt.Sprintf("%T/%s/%s", obj, m.GetNamespace(), m.GetName())
	h.observed[key] = obj
	h.handled[key]++
	h.obsMu.Unlock()
}

// timesHandled counts the handler calls for the object of typ's type ns/name.
func (h *harness) timesHandled(typ any, ns, name string) int {
	h.obsMu.Lock()
	defer h.obsMu.Unlock()
	return h.handled[fmt.Sprintf("%T/%s/%s", typ, ns, name)]
}

func (h *harness) lastSeen(typ any, ns, name string) any {
	h.obsMu.Lock()
	defer h.obsMu.Unlock()
	return h.observed[fmt.Sprintf("%T/%s/%s", typ, ns, name)]
}

// waitHandled waits until a detector handler has looked at the object of
// typ's type named ns/name in a state where cond holds, then until the
// detector has processed what that queued. Negative assertions after it
// are sound: the change was seen and handled.
func waitHandled[T any](h *harness, ns, name string, cond func(T) bool) {
	h.t.Helper()
	var zero T
	testkit.Eventually(h.t, 20*time.Second, fmt.Sprintf("%T %s/%s to be handled", zero, ns, name), func() bool {
		v, ok := h.lastSeen(zero, ns, name).(T)
		return ok && cond(v)
	})
	h.settle()
}

type harnessOption func(*harness)

func withState(s State) harnessOption { return func(h *harness) { h.state = s } }
func withPublisher(p event.Publisher) harnessOption {
	return func(h *harness) { h.pub = p }
}
func withKube(k *fake.Clientset) harnessOption { return func(h *harness) { h.kube = k } }
func withDynamic(d *dynamicfake.FakeDynamicClient) harnessOption {
	return func(h *harness) { h.dyn = d }
}
func withClock(c *clocktesting.FakeClock) harnessOption { return func(h *harness) { h.clock = c } }
func withOptions(f func(*Options)) harnessOption {
	return func(h *harness) { f(&h.opts) }
}

// start runs a detector over a fake API for the triggers of playbookYAML.
func start(t *testing.T, playbookYAML string, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, mem: &memPublisher{}, logs: &testkit.SyncBuffer{}, observed: map[string]any{}, handled: map[string]int{}}
	for _, o := range opts {
		o(h)
	}
	if h.kube == nil {
		h.kube = fake.NewClientset()
	}
	if h.clock == nil {
		h.clock = clocktesting.NewFakeClock(time.Now())
	}
	if h.pub == nil {
		h.pub = h.mem
	}
	logger := newLogger(io.MultiWriter(h.logs, testLog{t}))
	o := h.opts
	o.Kube = h.kube
	if h.dyn != nil {
		o.Dynamic = h.dyn
	}
	o.Publisher = h.pub
	o.State = h.state
	o.Logger = logger
	o.Clock = h.clock
	o.OnHandled = h.observe
	det, err := NewDetector(o)
	if err != nil {
		t.Fatal(err)
	}
	det.SetInterest(kubeInterest(t, playbookYAML))
	ctx, cancel := context.WithCancel(context.Background())
	if err := det.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		det.Stop()
	})
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	if err := det.WaitForSync(sctx); err != nil {
		t.Fatal(err)
	}
	h.det = det
	return h
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// settle waits until the detector has nothing queued or running. Informer
// delivery is asynchronous, so callers first wait for a visible effect.
func (h *harness) settle() {
	h.t.Helper()
	testkit.Eventually(h.t, 20*time.Second, "the detector to be idle", h.det.Idle)
}

// waitPod is waitHandled for pods.
func (h *harness) waitPod(ns, name string, cond func(*corev1.Pod) bool) {
	h.t.Helper()
	waitHandled(h, ns, name, cond)
}

func (h *harness) ctx() context.Context { return context.Background() }

func (h *harness) createPod(p *corev1.Pod) *corev1.Pod {
	h.t.Helper()
	out, err := h.kube.CoreV1().Pods(p.Namespace).Create(h.ctx(), p, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) updatePodStatus(p *corev1.Pod) *corev1.Pod {
	h.t.Helper()
	out, err := h.kube.CoreV1().Pods(p.Namespace).UpdateStatus(h.ctx(), p, metav1.UpdateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// openBus starts an embedded JetStream in dir (the same dir twice is a
// restart).
func openBus(t *testing.T, dir string) *bus.Bus {
	t.Helper()
	cfg := bus.Config{
		StoreDir:       filepath.Join(dir, "js"),
		Replicas:       1,
		DedupWindow:    10 * time.Minute,
		Retention:      time.Hour,
		MaxBytes:       64 << 20,
		MaxDeliver:     3,
		AckWait:        5 * time.Second,
		PublishTimeout: 5 * time.Second,
		Compression:    "s2",
	}
	b, err := bus.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func streamMsgs(t *testing.T, b *bus.Bus) uint64 {
	t.Helper()
	s, err := b.JetStream().Stream(context.Background(), bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

var widgetGVR = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

func newDynamic(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{widgetGVR: "WidgetList"}, objs...)
}

// testPlugins are what the test playbooks need: the Kubernetes triggers and
// package actions' own actions (create_finding).
func testPlugins() playbooks.Plugins {
	r := actions.NewRegistry()
	actions.Register(r)
	return playbooks.Plugins{Triggers: triggers.NewRegistry(kubetrig.Register), Actions: r}
}
