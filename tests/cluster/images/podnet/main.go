// Command podnet checks the pod network of the in-container test cluster.
//
//	podnet serve :8080      answer every GET with "podnet <hostname>"
//	podnet get URL          print the body of GET URL (exit 1 on error)
//
// Built static (CGO_ENABLED=0) into a FROM scratch image by
// tests/cluster/images/build.sh; the test runs a server pod on one worker and
// gets its answer from a pod on the other one, across the nodes' routes.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: podnet serve ADDR | podnet get URL")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		host, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "podnet %s\n", host)
		})
		server := &http.Server{Addr: os.Args[2], ReadHeaderTimeout: 5 * time.Second}
		fmt.Fprintln(os.Stderr, server.ListenAndServe())
		os.Exit(1)
	case "get":
		client := &http.Client{Timeout: 5 * time.Second}
		resp, err := client.Get(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			fmt.Fprintln(os.Stderr, resp.Status, err)
			os.Exit(1)
		}
		fmt.Print(string(body))
	default:
		fmt.Fprintln(os.Stderr, "usage: podnet serve ADDR | podnet get URL")
		os.Exit(2)
	}
}
