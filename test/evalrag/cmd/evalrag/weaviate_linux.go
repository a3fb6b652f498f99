//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/weaviate"
	"github.com/medichq/medic/test/evalrag"
	weaviatetest "github.com/medichq/medic/test/weaviate"
)

// runWeaviate evaluates a real Weaviate in a child process: the server binds
// ports on every interface, so it runs, with its client, in a private
// network namespace (see test/weaviate).
func runWeaviate(rulesPath, symptomsPath string) ([]result, error) {
	if _, err := weaviatetest.Binary(); err != nil {
		return nil, err
	}
	cmd, err := weaviatetest.CommandInNamespace("-weaviate-child", "-rules", rulesPath, "-symptoms", symptomsPath)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, out.String())
	}
	return readJSON(out.Bytes())
}

// weaviateChild starts Weaviate on loopback, ingests the default runbooks
// and prints the evaluation as JSON.
func weaviateChild(rulesPath, symptomsPath string) error {
	if !weaviatetest.InNamespace() {
		return fmt.Errorf("-weaviate-child runs only in the namespace")
	}
	ctx := context.Background()
	set, err := evalrag.Load(rulesPath, symptomsPath)
	if err != nil {
		return err
	}
	bin, err := weaviatetest.Binary()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "medic-evalrag-weaviate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := weaviatetest.Start(bin, dir)
	if err != nil {
		return err
	}
	defer srv.Stop()
	s, err := weaviate.Open(ctx, weaviate.Options{URL: srv.URL, Collection: "MedicEval"})
	if err != nil {
		return err
	}
	defer s.Close()
	rep, err := ingestAndRun(ctx, "Weaviate BM25", s, nil, rag.DefaultChunkOptions(), set)
	if err != nil {
		return err
	}
	return printJSON([]result{{Index: "Weaviate BM25", Report: rep}})
}
