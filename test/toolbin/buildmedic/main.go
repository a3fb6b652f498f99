// Command buildmedic builds the medic binary the process-level tests run
// (toolbin.BuildMedic: the Dockerfile's command, version "deploy-test").
// make test runs it once and passes the path in $MEDIC_BINARY, so test/e2e
// and test/deploy share one build instead of each compiling its own.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/medichq/medic/test/toolbin"
)

func main() {
	out := flag.String("o", "", "where to write the binary")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "buildmedic: -o is required")
		os.Exit(2)
	}
	if err := toolbin.BuildMedic(context.Background(), *out, toolbin.MedicTestVersion); err != nil {
		fmt.Fprintln(os.Stderr, "buildmedic:", err)
		os.Exit(1)
	}
}
