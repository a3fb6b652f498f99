//go:build !linux

package main

import "errors"

func runWeaviate(string, string) ([]result, error) {
	return nil, errors.New("the Weaviate test server runs on Linux only")
}

func weaviateChild(string, string) error {
	return errors.New("the Weaviate test server runs on Linux only")
}
