package kubernetes

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
)

// Helm keeps one record per release revision: a Secret of type
// helm.sh/release.v1 labelled owner=helm, name=<release>,
// version=<revision>, status=<status>, whose data.release is
// base64(gzip(JSON)). medic reads the few fields it needs from that JSON;
// the Helm SDK is not needed for it.
const (
	HelmSecretType     = "helm.sh/release.v1"
	HelmOwnerSelector  = "owner=helm"
	helmMaxRecordBytes = 4 << 20 // a release record larger than this is not read
)

// HelmRelease is the part of a Helm release record medic reads.
type HelmRelease struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Version   int    `json:"version"`
	Info      struct {
		Status        string    `json:"status"`
		Description   string    `json:"description"`
		FirstDeployed time.Time `json:"first_deployed"`
		LastDeployed  time.Time `json:"last_deployed"`
	} `json:"info"`
	Chart struct {
		Metadata struct {
			Name       string `json:"name"`
			Version    string `json:"version"`
			AppVersion string `json:"appVersion"`
		} `json:"metadata"`
	} `json:"chart"`
}

// ChartRef is "name-version", as helm list shows it.
func (r *HelmRelease) ChartRef() string {
	if r.Chart.Metadata.Version == "" {
		return r.Chart.Metadata.Name
	}
	return r.Chart.Metadata.Name + "-" + r.Chart.Metadata.Version
}

// DecodeHelmRelease reads a Helm release Secret; false when s is not one.
func DecodeHelmRelease(s *corev1.Secret) (*HelmRelease, error) {
	if s.Type != HelmSecretType {
		return nil, fmt.Errorf("secret %s/%s is of type %q, not %s", s.Namespace, s.Name, s.Type, HelmSecretType)
	}
	data := s.Data["release"]
	if len(data) == 0 {
		return nil, fmt.Errorf("secret %s/%s: no release data", s.Namespace, s.Name)
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(data)))
	n, err := base64.StdEncoding.Decode(raw, data)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: decode release: %w", s.Namespace, s.Name, err)
	}
	raw = raw[:n]
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) { // Helm gzips records; very old ones are plain
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("secret %s/%s: gunzip release: %w", s.Namespace, s.Name, err)
		}
		raw, err = io.ReadAll(io.LimitReader(zr, helmMaxRecordBytes+1))
		if err != nil {
			return nil, fmt.Errorf("secret %s/%s: gunzip release: %w", s.Namespace, s.Name, err)
		}
		if len(raw) > helmMaxRecordBytes {
			return nil, fmt.Errorf("secret %s/%s: release record over %d bytes", s.Namespace, s.Name, helmMaxRecordBytes)
		}
	}
	var r HelmRelease
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("secret %s/%s: release JSON: %w", s.Namespace, s.Name, err)
	}
	if r.Namespace == "" {
		r.Namespace = s.Namespace
	}
	if r.Name == "" {
		r.Name = s.Labels["name"]
	}
	return &r, nil
}

const prefixHelm = "helm:"

// reconcileHelm starts the informers over Helm's release Secrets when a
// Helm trigger is loaded and kubernetes.helm_releases allows reading them;
// d.mu is held.
func (d *Detector) reconcileHelm() {
	if !d.wants(kubeevent.KindHelmRelease) {
		return
	}
	if !d.opts.HelmReleases {
		if !d.helmWarned {
			d.helmWarned = true
			d.log.Warn("Helm release triggers are loaded but kubernetes.helm_releases is off (reading Helm's release Secrets is opt-in); they stay silent")
		}
		return
	}
	for _, s := range d.scopes {
		key := "helm/" + s.ns
		if d.started[key] {
			continue
		}
		f := informers.NewSharedInformerFactoryWithOptions(d.opts.Kube, d.opts.Resync, informers.WithNamespace(s.ns),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = HelmOwnerSelector }))
		inf := f.Core().V1().Secrets().Informer()
		d.helmFactories = append(d.helmFactories, f)
		d.startTyped(&nsScope{ns: s.ns, factory: f}, "helm", "secrets", inf, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { d.onHelmSecret(obj, false); d.notify(obj) },
			UpdateFunc: func(_, obj any) { d.onHelmSecret(obj, false); d.notify(obj) },
			DeleteFunc: func(obj any) { d.onHelmSecret(obj, true); d.notify(obj) },
		})
		f.Start(d.ctx.Done())
	}
}

// onHelmSecret turns a release record into a helm_release candidate:
// deployed → deploy, failed → fail, uninstalled (or the deployed record
// deleted, as helm uninstall does) → uninstall; a pending record arms a
// re-check after each on_helm_release_unhealthy duration.
func (d *Detector) onHelmSecret(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*corev1.Secret)
	if !ok || s.Type != HelmSecretType {
		return
	}
	r, err := DecodeHelmRelease(s)
	if err != nil {
		d.log.Warn("cannot read a Helm release record", "secret", s.Namespace+"/"+s.Name, "err", err)
		return
	}
	status := r.Info.Status
	switch {
	case deleted && status == "deployed":
		d.offerHelm(r, kubeevent.HelmUninstall, d.clock.Now(), "")
	case deleted:
	case status == "deployed":
		d.offerHelm(r, kubeevent.HelmDeploy, r.Info.LastDeployed, "")
	case status == "failed":
		d.offerHelm(r, kubeevent.HelmFail, r.Info.LastDeployed, "")
	case status == "uninstalled":
		d.offerHelm(r, kubeevent.HelmUninstall, r.Info.LastDeployed, "")
	case strings.HasPrefix(status, "pending-"):
		since := r.Info.LastDeployed
		for _, delay := range d.interest.Load().Delays(kubeevent.KindHelmRelease) {
			d.after(prefixHelm+s.Namespace+"/"+s.Name+"/"+delay.String(), since.Add(delay))
		}
	}
}

// checkHelm runs when a pending release's delay is up: if the record is
// still pending it is unhealthy.
func (d *Detector) checkHelm(key string) {
	i := strings.LastIndex(key, "/")
	if i < 0 {
		return
	}
	nsName, delayText := key[:i], key[i+1:]
	delay, err := time.ParseDuration(delayText)
	if err != nil {
		return
	}
	ns, name, _ := strings.Cut(nsName, "/")
	d.mu.Lock()
	factories := slices.Clone(d.helmFactories)
	d.mu.Unlock()
	for _, f := range factories {
		obj, ok, err := f.Core().V1().Secrets().Informer().GetStore().GetByKey(ns + "/" + name)
		if err != nil || !ok {
			continue
		}
		s, _ := obj.(*corev1.Secret)
		r, err := DecodeHelmRelease(s)
		if err != nil || !strings.HasPrefix(r.Info.Status, "pending-") {
			return // recovered (or gone) within the delay
		}
		if d.clock.Since(r.Info.LastDeployed) < delay {
			d.after(prefixHelm+key, r.Info.LastDeployed.Add(delay))
			return
		}
		d.offerHelm(r, kubeevent.HelmUnhealthy, time.Time{}, delay.String())
		return
	}
}

func (d *Detector) offerHelm(r *HelmRelease, what string, fact time.Time, pendingFor string) {
	past := map[string]string{kubeevent.HelmDeploy: "deployed", kubeevent.HelmFail: "failed", kubeevent.HelmUninstall: "uninstalled", kubeevent.HelmUnhealthy: "stuck in " + r.Info.Status}[what]
	title := fmt.Sprintf("Helm release %s/%s %s (revision %d, %s)", r.Namespace, r.Name, past, r.Version, r.ChartRef())
	if pendingFor != "" {
		title = fmt.Sprintf("Helm release %s/%s stuck in %s for %s (revision %d, %s)", r.Namespace, r.Name, r.Info.Status, pendingFor, r.Version, r.ChartRef())
	}
	severity := event.SeverityInfo
	if what == kubeevent.HelmFail || what == kubeevent.HelmUnhealthy {
		severity = event.SeverityWarning
	}
	ev := event.Event{
		Kind:        kubeevent.KindHelmRelease,
		Source:      kubeevent.Source,
		Status:      event.StatusFiring,
		Severity:    severity,
		Title:       title,
		Description: r.Info.Description,
		Labels: map[string]string{
			kubeevent.LabelNamespace: r.Namespace, kubeevent.LabelName: r.Name, kubeevent.LabelRelease: r.Name, kubeevent.LabelKind: "HelmRelease",
			kubeevent.LabelRevision: strconv.Itoa(r.Version), kubeevent.LabelHelmStatus: r.Info.Status, kubeevent.LabelHelmEvent: what,
			kubeevent.LabelChart: r.Chart.Metadata.Name, kubeevent.LabelChartVersion: r.Chart.Metadata.Version, kubeevent.LabelAppVersion: r.Chart.Metadata.AppVersion,
		},
		Subject:  event.Subject{Kind: "HelmRelease", Namespace: r.Namespace, Name: r.Name},
		StartsAt: fact.UTC(),
	}
	if fact.IsZero() {
		ev.StartsAt = d.clock.Now().UTC()
	}
	if pendingFor != "" {
		ev.Labels[kubeevent.LabelPendingFor] = pendingFor
	}
	// Release, revision and what happened identify the occurrence on every
	// replica; the record's write time tells a rollback to the same
	// revision number apart.
	ev.ID = occurrenceID(kubeevent.KindHelmRelease, r.Namespace, r.Name, strconv.Itoa(r.Version), what, pendingFor, r.Info.LastDeployed.UTC().Format(time.RFC3339Nano))
	ev.Fingerprint = ev.ID
	d.offer(candidate{ev: ev, subject: "helm/" + r.Namespace + "/" + r.Name, factTime: fact})
}

// EncodeHelmRecord writes a release record the way Helm's Secret driver
// does (JSON, gzip, base64 in data.release of a Secret named
// sh.helm.release.v1.<name>.v<revision>). medic only reads records; tests
// and fixtures write them with this.
func EncodeHelmRecord(namespace, name string, revision int, status string, release any) (*corev1.Secret, error) {
	js, err := json.Marshal(release)
	if err != nil {
		return nil, fmt.Errorf("encode release %s/%s: %w", namespace, name, err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(js); err != nil {
		return nil, fmt.Errorf("gzip release %s/%s: %w", namespace, name, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip release %s/%s: %w", namespace, name, err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("sh.helm.release.v1.%s.v%d", name, revision), Namespace: namespace,
			Labels: map[string]string{"owner": "helm", "name": name, "status": status, "version": strconv.Itoa(revision)},
		},
		Type: HelmSecretType,
		Data: map[string][]byte{"release": []byte(base64.StdEncoding.EncodeToString(gz.Bytes()))},
	}, nil
}

// HelmRecordFixture is a release record with the fields Helm writes
// (values and manifest included, which medic must never copy): for tests.
func HelmRecordFixture(namespace, name string, revision int, status string, at time.Time) *corev1.Secret {
	rel := map[string]any{
		"name": name, "namespace": namespace, "version": revision,
		"info": map[string]any{"status": status, "description": helmDescriptions[status], "first_deployed": at.Add(-time.Hour), "last_deployed": at},
		"chart": map[string]any{"metadata": map[string]any{"name": "shop", "version": "1." + strconv.Itoa(revision) + ".0", "appVersion": "2.0." + strconv.Itoa(revision)},
			"values": map[string]any{"password": "not-for-medic"}},
		"config":   map[string]any{"image": map[string]any{"tag": "v2"}},
		"manifest": "---\nkind: Deployment\n",
	}
	s, err := EncodeHelmRecord(namespace, name, revision, status, rel)
	if err != nil {
		panic(err) // a map of plain values always encodes
	}
	return s
}

var helmDescriptions = map[string]string{
	"deployed": "Upgrade complete", "superseded": "Upgrade complete", "failed": `Upgrade "web" failed: context deadline exceeded`,
	"pending-install": "Initial install underway", "pending-upgrade": "Preparing upgrade", "uninstalled": "Uninstallation complete",
}
