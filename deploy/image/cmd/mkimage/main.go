// Command mkimage writes medic's container image as a tarball from the static
// binary `make build` leaves in bin/medic; `make image` runs it. See package
// image for what goes in and why no Docker engine is needed.
//
//	go run ./deploy/image/cmd/mkimage -binary bin/medic -tag medic:0.1.0 -o bin/medic-image.tar
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/medichq/medic/deploy/image"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	var (
		opts image.Options
		out  string
		tags string
	)
	fs.StringVar(&opts.Binary, "binary", "bin/medic", "the static medic binary (make build)")
	fs.StringVar(&opts.CABundle, "ca-bundle", image.DefaultCABundle, "PEM bundle of trusted CAs to put in the image")
	fs.StringVar(&opts.Version, "version", "dev", "the image's version label")
	fs.StringVar(&opts.Revision, "revision", "", "the Git commit, for the revision label")
	fs.StringVar(&opts.Arch, "arch", "", "image architecture (default: this machine's)")
	fs.StringVar(&out, "o", "bin/medic-image.tar", "where to write the image tarball")
	fs.StringVar(&tags, "tag", "medic:dev", "comma-separated image tags, e.g. medic:0.1.0,medic:dev")
	if err := fs.Parse(args); err != nil {
		return err
	}
	img, err := image.Build(opts)
	if err != nil {
		return err
	}
	list := strings.Split(tags, ",")
	if err := image.Write(out, img, list); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (%s) as %s\n", out, d, strings.Join(list, ", "))
	fmt.Printf("load it with one of:\n  docker load -i %[1]s\n  podman load -i %[1]s\n  kind load image-archive %[1]s\n  k3d image import %[1]s\n  sudo ctr -n k8s.io images import %[1]s\n", out)
	return nil
}
