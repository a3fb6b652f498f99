// Command valuesdoc writes the table of the Helm chart's values into
// README.md, between the values markers, from the "# --" comments of
// deploy/helm/medic/values.yaml:
//
//	go run ./test/deploy/valuesdoc          # rewrite README.md
//	go run ./test/deploy/valuesdoc -check   # exit 1 when README.md is out of date
//
// `make docs-values` runs the first; test/deploy checks the second.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medichq/medic/test/deploy"
)

func main() {
	check := flag.Bool("check", false, "only report whether README.md is up to date")
	flag.Parse()
	if err := run(*check); err != nil {
		fmt.Fprintln(os.Stderr, "valuesdoc:", err)
		os.Exit(1)
	}
}

func run(check bool) error {
	root, err := deploy.RepoRoot()
	if err != nil {
		return err
	}
	path := filepath.Join(root, "README.md")
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	updated, err := deploy.RenderValuesSection(old)
	if err != nil {
		return err
	}
	if bytes.Equal(old, updated) {
		return nil
	}
	if check {
		return fmt.Errorf("README.md's values table is out of date: run make docs-values")
	}
	if err := os.WriteFile(path, updated, 0o644); err != nil {
		return err
	}
	fmt.Println("valuesdoc: updated", path)
	return nil
}
