// Command rendermanifests writes deploy/manifests/medic.yaml, the Helm chart
// rendered with its default values, with the helm that
// test/tools/build-helm.sh builds:
//
//	go run ./test/deploy/rendermanifests          # make manifests
//	go run ./test/deploy/rendermanifests -check   # make manifests-check: render to a temporary file, diff, exit 1 when stale
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/medichq/medic/test/deploy"
)

func main() {
	check := flag.Bool("check", false, "render to a temporary file and compare; exit 1 when deploy/manifests/medic.yaml is stale")
	flag.Parse()
	if err := run(*check); err != nil {
		fmt.Fprintln(os.Stderr, "rendermanifests:", err)
		os.Exit(1)
	}
}

func run(check bool) error {
	path, err := deploy.ManifestsFile()
	if err != nil {
		return err
	}
	text, err := deploy.RenderManifests()
	if err != nil {
		return err
	}
	if !check {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		return os.WriteFile(path, []byte(text), 0o644)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (run make manifests)", err)
	}
	if bytes.Equal(old, []byte(text)) {
		return nil
	}
	tmp, err := os.MkdirTemp("", "medic-manifests-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fresh := filepath.Join(tmp, "medic.yaml")
	if err := os.WriteFile(fresh, []byte(text), 0o644); err != nil {
		return err
	}
	diff := exec.Command("diff", "-u", path, fresh)
	diff.Stdout, diff.Stderr = os.Stderr, os.Stderr
	_ = diff.Run()
	return fmt.Errorf("%s is stale: run make manifests", path)
}
