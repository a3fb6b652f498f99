// Package knowledge ships medic's default knowledge base: the 108 runbooks of
// the prometheus-operator/runbooks project for the kube-prometheus alerts
// (Apache-2.0, see runbooks/LICENSE and README.md), embedded in the binary.
// medic ingests them into an empty knowledge base on first start.
package knowledge

import (
	"embed"
	"io/fs"
	"path"
	"strings"
)

//go:embed runbooks
var runbooks embed.FS

// Root names the default runbooks in the knowledge base (chunks' Root).
const Root = "default"

// RunbookBaseURL is where the upstream project publishes these runbooks.
const RunbookBaseURL = "https://runbooks.prometheus-operator.dev/runbooks/"

// Upstream identifies the copied tree.
const Upstream = "prometheus-operator/runbooks@a685d14cf5128bb30e2bf935c3983decd772d885 (content/runbooks)"

// Runbooks returns the default runbooks: <category>/<AlertName>.md, plus LICENSE.
func Runbooks() fs.FS {
	sub, err := fs.Sub(runbooks, "runbooks")
	if err != nil {
		panic(err) // the embedded tree always has the folder
	}
	return sub
}

// RunbookURL maps a source path of the default runbooks to its published
// page, the URL kube-prometheus puts in its alerts' runbook_url annotation:
// kubernetes/KubePodCrashLooping.md → …/runbooks/kubernetes/kubepodcrashlooping.
func RunbookURL(source string) string {
	dir, file := path.Split(source)
	stem := strings.TrimSuffix(file, path.Ext(file))
	if dir == "" || stem == "" {
		return ""
	}
	return RunbookBaseURL + dir + strings.ToLower(stem)
}
