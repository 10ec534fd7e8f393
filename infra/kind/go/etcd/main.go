// etcd for the kind node image: the upstream server's own entry point, built from the module
// proxy at the version go.mod pins.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
