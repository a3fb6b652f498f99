// Package image assembles medic's container image from the static binary
// `make build` writes, with github.com/google/go-containerregistry (the library
// behind ko and crane), and writes it as a tarball that `docker load`,
// `podman load`, `kind load image-archive`, `k3d image import` and
// `ctr images import` all read.
//
// Why not `docker build`: a Docker engine is not a given where medic is built
// and tested (CI has none), and a base image would have to be pulled from a
// registry. The image needs none: medic is one static binary that embeds its
// playbooks, runbooks and time zone data, so the image is that binary plus the
// few files any static Go program expects (a CA bundle, a passwd entry for the
// non-root user, a writable data directory and /tmp). The result is the same
// shape as distroless/static:nonroot, which the Dockerfile uses for those who
// prefer `docker build`.
package image

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The non-root user the image runs as, the same uid as distroless' nonroot,
// which the chart's securityContext names too.
const (
	UID     = 65532
	DataDir = "/var/lib/medic"
	Port    = "8080/tcp"
)

// Options say what goes into the image.
type Options struct {
	// Binary is the path of the static medic binary (make build: bin/medic).
	Binary string
	// CABundle is the PEM file of trusted CAs copied to
	// /etc/ssl/certs/ca-certificates.crt, for Slack, Teams, OpenAI, Git over
	// HTTPS. Empty: the build machine's (Debian's ca-certificates).
	CABundle string
	// Version is the image's org.opencontainers.image.version label.
	Version string
	// Revision is the Git commit, for org.opencontainers.image.revision.
	Revision string
	// Created is the image's creation time; zero: the Unix epoch, so two
	// builds of the same binary give the same image digest.
	Created time.Time
	// Arch is the image's architecture; empty: the build machine's.
	Arch string
}

// DefaultCABundle is where Debian and Ubuntu keep the CA bundle.
const DefaultCABundle = "/etc/ssl/certs/ca-certificates.crt"

// file is one entry of a layer.
type file struct {
	path string
	mode int64
	uid  int
	body []byte
	dir  bool
}

// Build returns the image for opts.
func Build(opts Options) (v1.Image, error) {
	bin, err := os.ReadFile(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("reading the medic binary (run make build first): %w", err)
	}
	if !isStaticELF(bin) {
		return nil, fmt.Errorf("%s is not a static ELF binary: build it with CGO_ENABLED=0 (make build)", opts.Binary)
	}
	caPath := opts.CABundle
	if caPath == "" {
		caPath = DefaultCABundle
	}
	ca, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("reading the CA bundle for the image (install ca-certificates, or pass -ca-bundle): %w", err)
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Unix(0, 0).UTC()
	}

	// Two layers: the base rarely changes, the binary at every build, so a
	// registry or node keeps the first one.
	base, err := layer(baseFiles(ca), created)
	if err != nil {
		return nil, fmt.Errorf("building the base layer: %w", err)
	}
	app, err := layer([]file{{path: "medic", mode: 0o755, body: bin}}, created)
	if err != nil {
		return nil, fmt.Errorf("building the binary layer: %w", err)
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, base, app)
	if err != nil {
		return nil, fmt.Errorf("adding the layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	arch := opts.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: created}
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", UID, UID),
		Entrypoint:   []string{"/medic", "serve"},
		WorkingDir:   DataDir,
		Env:          Env(),
		ExposedPorts: map[string]struct{}{Port: {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":    "medic",
			"org.opencontainers.image.source":   "https://github.com/medichq/medic",
			"org.opencontainers.image.version":  opts.Version,
			"org.opencontainers.image.revision": opts.Revision,
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting the image config: %w", err)
	}
	return mutate.CreatedAt(img, v1.Time{Time: created})
}

// Env is the image's environment: where medic listens and keeps its data,
// the same as the Dockerfile's.
func Env() []string {
	return []string{
		"PATH=/",
		"MEDIC_HTTP_ADDR=:8080",
		"MEDIC_DATA_DIR=" + DataDir,
		"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
	}
}

// Write writes img as a tarball under every tag in tags (e.g. medic:0.1.0).
func Write(path string, img v1.Image, tags []string) error {
	if len(tags) == 0 {
		return fmt.Errorf("writing the image tarball: no tag given")
	}
	refs := map[name.Reference]v1.Image{}
	for _, t := range tags {
		tag, err := name.NewTag(t)
		if err != nil {
			return fmt.Errorf("image tag %q: %w", t, err)
		}
		refs[tag] = img
	}
	tmp := path + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		return fmt.Errorf("writing the image tarball: %w", err)
	}
	return os.Rename(tmp, path)
}

func baseFiles(ca []byte) []file {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, UID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", UID)
	return []file{
		{path: "etc", mode: 0o755, dir: true},
		{path: "etc/passwd", mode: 0o644, body: []byte(passwd)},
		{path: "etc/group", mode: 0o644, body: []byte(group)},
		// Go's resolver reads nsswitch.conf to decide files-before-DNS.
		{path: "etc/nsswitch.conf", mode: 0o644, body: []byte("hosts: files dns\n")},
		{path: "etc/ssl", mode: 0o755, dir: true},
		{path: "etc/ssl/certs", mode: 0o755, dir: true},
		{path: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: ca},
		{path: "home", mode: 0o755, dir: true},
		{path: "home/nonroot", mode: 0o700, uid: UID, dir: true},
		{path: "tmp", mode: 0o1777, dir: true},
		{path: "var", mode: 0o755, dir: true},
		{path: "var/lib", mode: 0o755, dir: true},
		{path: strings.TrimPrefix(DataDir, "/"), mode: 0o755, uid: UID, dir: true},
	}
}

func layer(files []file, mtime time.Time) (v1.Layer, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name:    f.path,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.uid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if f.dir {
			h.Typeflag, h.Name = tar.TypeDir, f.path+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// isStaticELF reports whether b is an ELF executable without a program
// interpreter (PT_INTERP), i.e. one that runs without a libc in the image.
func isStaticELF(b []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return f.Type == elf.ET_EXEC || f.Type == elf.ET_DYN
}
