package main

import (
	"fmt"
	"net/http"
	"runtime"
)

// serveMetrics writes Prometheus text by hand so the module needs nothing outside the standard library.
func serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	fmt.Fprintf(w, "# HELP go_goroutines Number of goroutines that currently exist.\n")
	fmt.Fprintf(w, "# TYPE go_goroutines gauge\n")
	fmt.Fprintf(w, "go_goroutines %d\n", runtime.NumGoroutine())
	fmt.Fprintf(w, "# HELP orders_created_total Orders created since start.\n")
	fmt.Fprintf(w, "# TYPE orders_created_total counter\n")
	fmt.Fprintf(w, "orders_created_total %d\n", ordersCreated.Load())
}
