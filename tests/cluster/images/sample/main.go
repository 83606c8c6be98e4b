// Command sample stands in for the sample GitOps repo's workloads on the
// in-container test cluster (examples/gitops-repo: APIs, workers, PostgreSQL,
// Redis, RabbitMQ), so that Argo CD's health of each wave is real pods
// becoming ready. One static binary, FROM scratch, tagged under every image
// name the sample's manifests use; it does what their probes and commands need:
//
//	sample [ARGS...]          listen on :8000 and :8080 (HTTP, GET /health -> 200) and on
//	                          :5432, :5672, :6379 (TCP); ARGS are ignored (the
//	                          redis StatefulSet passes --appendonly yes ...)
//	pg_isready [ARGS...]      exit 0 when 127.0.0.1:5432 accepts a connection
//	celery [ARGS...]          run until SIGTERM (the workers' command)
//
// The name it was called by picks the role (copies of the binary under those
// names sit in /usr/local/bin of the image).
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	switch filepath.Base(os.Args[0]) {
	case "pg_isready":
		conn, err := net.DialTimeout("tcp", "127.0.0.1:5432", 2*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "no response:", err)
			os.Exit(2)
		}
		conn.Close()
		fmt.Println("127.0.0.1:5432 - accepting connections")
	case "celery":
		fmt.Println("worker ready:", os.Args[1:])
		waitForSignal()
	default:
		serve()
	}
}

func waitForSignal() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	fmt.Println("stopping on", <-stop)
}

func serve() {
	for _, port := range []string{":5432", ":5672", ":6379"} {
		listener, err := net.Listen("tcp", port)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go acceptAndClose(listener)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	host, _ := os.Hostname()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "sample %s\n", host)
	})
	// :8000 the APIs' port, :8080 the gateway chart's (charts/gateway).
	for _, addr := range []string{":8000", ":8080"} {
		server := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			fmt.Fprintln(os.Stderr, server.ListenAndServe())
			os.Exit(1)
		}()
	}
	fmt.Println("serving :8000 :8080 (http), :5432 :5672 :6379 (tcp)")
	waitForSignal()
}

func acceptAndClose(listener net.Listener) {
	for {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		conn.Close()
	}
}
