// Command orders is a small orders API the leak probe is proven against.
//
// -mode leaky reproduces the goroutine leaks the release gate must catch (no server
// timeouts, unbounded body reads, a worker blocked on a channel, an unclosed response
// body); -mode fixed is the same service with each of those fixed. -handlers leaky keeps
// fixed mode's server timeouts with leaky mode's handlers: timeouts alone do not stop a
// worker blocked on a channel. -tls serves HTTPS with a self-signed certificate made at start.
package main

import (
	"crypto/tls"
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
	handlers := flag.String("handlers", "", "leaky | fixed handlers (default: as -mode)")
	useTLS := flag.Bool("tls", false, "serve HTTPS with a self-signed certificate for 127.0.0.1, made at start")
	flag.Parse()
	if *handlers == "" {
		*handlers = *mode
	}
	for _, flagValue := range [][2]string{{"-mode", *mode}, {"-handlers", *handlers}} { // -mode first, always
		if name, value := flagValue[0], flagValue[1]; value != "leaky" && value != "fixed" {
			fmt.Fprintf(os.Stderr, "orders: %s must be leaky or fixed, not %q\n", name, value)
			os.Exit(2)
		}
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("orders: listen %s: %v", *addr, err)
	}
	self := "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	srv := &http.Server{Handler: mux}
	var clientTLS *tls.Config
	if *useTLS {
		var serverTLS *tls.Config
		if serverTLS, clientTLS, err = selfSignedTLS(); err != nil {
			log.Fatalf("orders: certificate: %v", err)
		}
		serveHTTP1OverTLS(srv, serverTLS)
		trustSelf(clientTLS)
		self = "https://" + ln.Addr().String()
	}

	orders := newStore()
	if *handlers == "leaky" {
		registerLeaky(mux, orders, self)
	} else {
		registerFixed(mux, orders, self, *maxBody, *idleTimeout, clientTLS)
	}
	if *mode == "fixed" {
		srv.ReadHeaderTimeout = *readHeaderTimeout // net/http also bounds the TLS handshake by it
		srv.ReadTimeout = *readTimeout
		srv.IdleTimeout = *idleTimeout
		// no WriteTimeout: /debug/pprof/profile?seconds=N streams for longer than any request
	}
	mux.HandleFunc("/metrics", serveMetrics)
	registerPprof(mux)

	// the harness reads this line to learn the port it asked the kernel to choose
	fmt.Println(ln.Addr().String())

	go closeOnSignal(srv)
	if *useTLS {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
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
