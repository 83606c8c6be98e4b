// Command pause is the pod sandbox process of the in-container test cluster:
// it holds the pod's namespaces, reaps children it inherits as PID 1 and
// exits on SIGINT/SIGTERM; `pause -v` prints a version and exits. Built static (CGO_ENABLED=0) into a FROM scratch
// image by tests/cluster/images/build.sh.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// As the real pause: -v prints the version and exits 0 (kubeadm upgrade's CreateJob health
	// check runs the sandbox image with "-v" as a Job and waits for it to complete).
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (ecoeco test cluster) 3.10.2")
		os.Exit(0)
	}
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
