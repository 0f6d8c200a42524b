// A minimal, fast orders endpoint for measuring the Locust plugin's own overhead:
// it answers at once, so the load generator — not the target — is the bottleneck.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	shards := flag.Uint64("shards", 100, "shards for the X-Shard header (key % shards)")
	flag.Parse()

	handler := func(w http.ResponseWriter, r *http.Request) {
		key, _ := strconv.ParseInt(r.URL.Query().Get("user_id"), 10, 64)
		if key < 0 {
			key = -key
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Shard", strconv.FormatUint(uint64(key)%*shards, 10))
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
		}
		_, _ = w.Write([]byte(`{"orders":[]}`))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	http.HandleFunc("/orders", handler)
	if err := http.Serve(ln, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
