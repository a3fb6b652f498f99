// Command etcd is the real etcd server, built from go.etcd.io/etcd/server/v3
// at the version pinned in this module's go.mod, for medic's tests
// (test/kubeapi). It is upstream's etcd main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
