package deploy_test

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/medichq/medic/deploy/image"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/deploy"
)

// `make image` builds the image the chart runs by default, without a Docker
// engine: the Makefile's tag is the chart's repository and appVersion.
func TestMakeImageTagIsTheChartsDefaultImage(t *testing.T) {
	root := must(deploy.RepoRoot())
	values := string(must(os.ReadFile(filepath.Join(root, "deploy/helm/medic/values.yaml"))))
	chart := string(must(os.ReadFile(filepath.Join(root, "deploy/helm/medic/Chart.yaml"))))
	repo := regexp.MustCompile(`(?m)^  repository: *"?([^"\s]+)"?`).FindStringSubmatch(values)
	appVersion := regexp.MustCompile(`(?m)^appVersion: *"?([^"\s]+)"?`).FindStringSubmatch(chart)
	if repo == nil || appVersion == nil {
		t.Fatal("cannot find image.repository in values.yaml or appVersion in Chart.yaml")
	}
	out, err := exec.Command("make", "-s", "-C", root, "print-image").CombinedOutput()
	if err != nil {
		t.Fatalf("make print-image: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), repo[1]+":"+appVersion[1]; got != want {
		t.Errorf("make image tags %q, the chart runs %q by default", got, want)
	}
}

// The image holds the static binary, runs as the non-root user, and works
// from its own filesystem alone: extracted, entered with chroot as uid 65532,
// it serves, and a trigger sent with the image's own binary becomes a finding
// in the image's data directory.
func TestImageRunsFromItsOwnFilesystem(t *testing.T) {
	bin := medicBinary(t)
	img, err := image.Build(image.Options{Binary: bin, Version: "deploy-test", Revision: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(t.TempDir(), "medic-image.tar")
	if err := image.Write(tarPath, img, []string{"medic:0.1.0", "medic:dev"}); err != nil {
		t.Fatal(err)
	}
	// Read it back the way a loader would: by tag.
	for _, tag := range []string{"medic:0.1.0", "medic:dev"} {
		ref := must(name.NewTag(tag))
		loaded, err := tarball.ImageFromPath(tarPath, &ref)
		if err != nil {
			t.Fatalf("loading %s from the tarball: %v", tag, err)
		}
		// A docker-save tarball carries the config and layers, not the
		// manifest: compare those.
		if a, b := must(loaded.ConfigName()), must(img.ConfigName()); a != b {
			t.Errorf("%s: config %s, built %s", tag, a, b)
		}
		if a, b := layerDigests(t, loaded), layerDigests(t, img); !slices.Equal(a, b) {
			t.Errorf("%s: layers %v, built %v", tag, a, b)
		}
	}
	// Two builds of one binary are the same image (no timestamps inside).
	again := must(image.Build(image.Options{Binary: bin, Version: "deploy-test", Revision: "abc"}))
	if a, b := must(again.Digest()), must(img.Digest()); a != b {
		t.Errorf("the image is not reproducible: %s then %s", b, a)
	}

	cf := must(img.ConfigFile())
	if cf.Config.User != "65532:65532" {
		t.Errorf("User = %q, want the non-root 65532:65532", cf.Config.User)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/medic", "serve"}) {
		t.Errorf("Entrypoint = %q", cf.Config.Entrypoint)
	}
	if _, ok := cf.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ExposedPorts = %v, want 8080/tcp", cf.Config.ExposedPorts)
	}
	if cf.OS != "linux" || cf.Config.Labels["org.opencontainers.image.version"] != "deploy-test" {
		t.Errorf("OS %q, labels %v", cf.OS, cf.Config.Labels)
	}

	rootfs := t.TempDir()
	files := extract(t, img, rootfs)
	for _, want := range []string{"medic", "etc/passwd", "etc/ssl/certs/ca-certificates.crt", "var/lib/medic/", "tmp/"} {
		if _, ok := files[want]; !ok {
			t.Errorf("the image has no %s", want)
		}
	}
	for p := range files {
		if strings.HasPrefix(p, "bin/") || strings.HasSuffix(p, "/sh") {
			t.Errorf("the image carries %s: it should hold no shell or tools", p)
		}
	}
	if h := files["var/lib/medic/"]; h == nil || h.Uid != image.UID {
		t.Errorf("the data directory is not owned by %d: %+v", image.UID, h)
	}
	if h := files["tmp/"]; h == nil || h.Mode&0o7777 != 0o1777 {
		t.Errorf("/tmp mode: %+v", h)
	}
	if h := files["medic"]; h == nil || h.Mode&0o111 == 0 {
		t.Errorf("/medic is not executable: %+v", h)
	}

	if os.Geteuid() != 0 {
		t.Skip("running the image's filesystem needs chroot, which needs root; the checks above ran")
	}
	mountProc(t, rootfs)
	port := testkit.FreePort(t)
	server := fmt.Sprintf("http://127.0.0.1:%d", port)
	inImage := func(args ...string) *exec.Cmd {
		cmd := exec.Command("/medic", args...)
		cmd.Path = "/medic"
		cmd.Dir = image.DataDir
		cmd.Env = append(slices.Clone(cf.Config.Env), fmt.Sprintf("MEDIC_HTTP_ADDR=127.0.0.1:%d", port), "MEDIC_SERVER="+server)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Chroot:     rootfs,
			Credential: &syscall.Credential{Uid: image.UID, Gid: image.UID},
		}
		return cmd
	}
	serve := inImage(cf.Config.Entrypoint[1:]...)
	var logs testkit.SyncBuffer
	serve.Stdout, serve.Stderr = &logs, &logs
	if err := serve.Start(); err != nil {
		t.Fatalf("starting /medic serve in the image: %v", err)
	}
	t.Cleanup(func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- serve.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("medic serve in the image did not exit cleanly on SIGTERM: %v\n%s", err, logs.String())
			}
		case <-time.After(30 * time.Second):
			_ = serve.Process.Kill()
			t.Errorf("medic serve in the image did not stop within 30 s of SIGTERM\n%s", logs.String())
		}
	})
	testkit.Eventually(t, 90*time.Second, "medic in the image to be ready", func() bool {
		return httpStatus(server+"/readyz", "") == http.StatusOK
	})
	trigger := inImage("trigger", "prometheus_alert", "alert_name=KubePodCrashLooping", "namespace=shop", "pod_name=cart-7d9")
	if out, err := trigger.CombinedOutput(); err != nil {
		t.Fatalf("medic trigger from the image: %v\n%s", err, out)
	}
	findings := filepath.Join(rootfs, image.DataDir, "findings.jsonl")
	testkit.Eventually(t, 90*time.Second, "a finding in the image's data directory", func() bool {
		b, err := os.ReadFile(findings)
		return err == nil && strings.Contains(string(b), "KubePodCrashLooping")
	})
	if st, err := os.Stat(findings); err == nil {
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != image.UID {
			t.Errorf("findings.jsonl is owned by uid %d, want %d (the image's user)", uid, image.UID)
		}
	}
}

// extract writes the image's flattened filesystem under dir, with the modes
// and owners the layers give, and returns the headers by path.
func extract(t *testing.T, img v1.Image, dir string) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// Keyed as "dir/" and "file", whatever the layer's spelling.
		key := strings.Trim(h.Name, "/")
		if h.Typeflag == tar.TypeDir {
			key += "/"
		}
		files[key] = h
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		default:
			t.Fatalf("unexpected entry %s of type %c", h.Name, h.Typeflag)
		}
		if err := os.Chmod(p, os.FileMode(h.Mode&0o777)|modeBits(h.Mode)); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	return files
}

func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	var ds []string
	for _, l := range must(img.Layers()) {
		ds = append(ds, must(l.Digest()).String())
	}
	return ds
}

func modeBits(m int64) os.FileMode {
	var fm os.FileMode
	if m&0o1000 != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

// mountProc gives the chroot the /proc a container runtime would (medic reads
// its cgroup limits and memory maps there); it is unmounted at cleanup.
func mountProc(t *testing.T, rootfs string) {
	t.Helper()
	p := filepath.Join(rootfs, "proc")
	if err := os.MkdirAll(p, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("proc", p, "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		t.Logf("no /proc in the chroot (%v): medic runs without it", err)
		return
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", p, err)
		}
	})
}
