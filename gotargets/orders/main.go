// Command orders is a small orders API the leak probe is proven against.
//
// -mode leaky reproduces the goroutine leaks the release gate must catch (no server
// timeouts, unbounded body reads, a worker blocked on a channel, an unclosed response
// body); -mode fixed is the same service with each of those fixed.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const (
	defaultReadHeaderTimeout = 2 * time.Second
	defaultReadTimeout       = 3 * time.Second
	defaultIdleTimeout       = 3 * time.Second
	defaultMaxBody           = 1 << 20 // an order or an attachment is far smaller
)

func main() {
	mode := flag.String("mode", "fixed", "leaky | fixed")
	addr := flag.String("addr", "127.0.0.1:0", "listen address; the bound address is printed on stdout")
	readHeaderTimeout := flag.Duration("read-header-timeout", defaultReadHeaderTimeout, "fixed mode: http.Server.ReadHeaderTimeout")
	readTimeout := flag.Duration("read-timeout", defaultReadTimeout, "fixed mode: http.Server.ReadTimeout")
	idleTimeout := flag.Duration("idle-timeout", defaultIdleTimeout, "fixed mode: http.Server.IdleTimeout and the client's idle-connection timeout")
	maxBody := flag.Int64("max-body", defaultMaxBody, "fixed mode: largest request body accepted, in bytes")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("orders: listen %s: %v", *addr, err)
	}
	self := "http://" + ln.Addr().String()
	orders := newStore()
	mux := http.NewServeMux()
	srv := &http.Server{Handler: mux}

	switch *mode {
	case "leaky":
		registerLeaky(mux, orders, self)
	case "fixed":
		registerFixed(mux, orders, self, *maxBody, *idleTimeout)
		srv.ReadHeaderTimeout = *readHeaderTimeout
		srv.ReadTimeout = *readTimeout
		srv.IdleTimeout = *idleTimeout
		// no WriteTimeout: /debug/pprof/profile?seconds=N streams for longer than any request
	default:
		fmt.Fprintf(os.Stderr, "orders: -mode must be leaky or fixed, not %q\n", *mode)
		os.Exit(2)
	}
	mux.HandleFunc("/metrics", serveMetrics)
	registerPprof(mux)

	// the harness reads this line to learn the port it asked the kernel to choose
	fmt.Println(ln.Addr().String())

	go closeOnSignal(srv)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("orders: %v", err)
	}
}

func registerPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

func closeOnSignal(srv *http.Server) {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	srv.Close()
}
