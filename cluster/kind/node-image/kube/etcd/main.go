// The etcd server binary (v3.7.0, as upstream's go.etcd.io/etcd/server/v3 main.go), for the
// registry.k8s.io/etcd image of the locally built kind node. Upstream's module has replace
// directives, so `go install` cannot build it; this module requires it instead.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
