// Command pause is the pod sandbox process of the in-container test cluster:
// it holds the pod's namespaces, reaps children it inherits as PID 1 and
// exits on SIGINT/SIGTERM. Built static (CGO_ENABLED=0) into a FROM scratch
// image by tests/cluster/images/build.sh.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
