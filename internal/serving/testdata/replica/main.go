// Command replica is the test replica for package serving's tests and
// benchmarks: a small HTTP server on $PORT.
//
//	GET  /ready   200 unless $CONTROL_DIR/notready-$PORT exists
//	GET  /live    200 unless $CONTROL_DIR/unhealthy-$PORT exists
//	ANY  /work?ms=N   spins the CPU for N ms, then answers "PORT GEN"
//	ANY  /sleep?ms=N  sleeps N ms, then answers "PORT GEN"
//	GET  /hits    the number of /work and /sleep requests served
//
// -child starts a `sleep` child in the process group (to test that
// deletion leaves nothing behind); -exit makes it exit at once with that
// code. SIGTERM shuts the server down gracefully.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	child := flag.Bool("child", false, "start a sleeping child process")
	exit := flag.Int("exit", -1, "exit at once with this code")
	say := flag.String("say", "", "with -exit, print this line to stderr first")
	flag.Parse()
	if *exit >= 0 {
		if *say != "" {
			fmt.Fprintln(os.Stderr, *say)
		}
		os.Exit(*exit)
	}
	port := os.Getenv("PORT")
	gen := os.Getenv("GEN")
	ctl := os.Getenv("CONTROL_DIR")
	if *child {
		c := exec.Command("sleep", "300")
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	var hits atomic.Int64
	flagged := func(name string) bool {
		if ctl == "" {
			return false
		}
		_, err := os.Stat(filepath.Join(ctl, name+"-"+port))
		return err == nil
	}
	answer := func(w http.ResponseWriter) {
		hits.Add(1)
		fmt.Fprintf(w, "%s %s\n", port, gen)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		if flagged("notready") {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/live", func(w http.ResponseWriter, r *http.Request) {
		if flagged("unhealthy") {
			http.Error(w, "unhealthy", http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		end := time.Now().Add(time.Duration(ms) * time.Millisecond)
		x := 0
		for time.Now().Before(end) {
			for i := 0; i < 1000; i++ {
				x += i * i
			}
		}
		_ = x
		answer(w)
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		answer(w)
	})
	mux.HandleFunc("/hits", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, hits.Load())
	})
	srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: mux}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
