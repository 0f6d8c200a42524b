package main

import (
	"context"
	"io"
	"net/http"
	"runtime/pprof"
	"strconv"
	"time"
)

const (
	confirmDelay = 100 * time.Millisecond // the confirmation service is slower than...
	notifyBudget = 10 * time.Millisecond  // ...the time the handler is willing to wait for it
)

// registerLeaky wires the handlers the way the seed incident's service had them.
func registerLeaky(mux *http.ServeMux, s *store, self string) {
	mux.Handle("/orders", ordersHandler(s, func(w http.ResponseWriter, r *http.Request) io.Reader { return r.Body }))
	mux.HandleFunc("/upload", leakyUpload)
	mux.HandleFunc("/orders/notify", leakyNotify)
	mux.Handle("/orders/upstream", &leakyUpstream{base: self})
}

// leakyUpload reads the whole body with no deadline: a client that declares a body and
// never sends it parks this goroutine for as long as the connection stays open.
func leakyUpload(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, "upload failed: "+err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"bytes": n})
}

// leakyNotify waits a short budget for the confirmation and returns; the worker then
// blocks forever on its unbuffered send because nobody is left to receive.
func leakyNotify(w http.ResponseWriter, r *http.Request) {
	userID, ok := userIDParam(w, r)
	if !ok {
		return
	}
	confirmed := make(chan string)
	go func() {
		labelWorker(r.Context(), "notify")
		confirmed <- confirm(userID)
	}()
	select {
	case msg := <-confirmed:
		writeJSON(w, http.StatusOK, map[string]string{"status": msg})
	case <-time.After(notifyBudget):
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "pending"})
	}
}

// leakyUpstream calls the orders API on itself and reads only the status code: the
// response body is never closed, so its connection and two transport goroutines stay.
type leakyUpstream struct{ base string }

func (u *leakyUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	userID, ok := userIDParam(w, r)
	if !ok {
		return
	}
	resp, err := http.Get(u.base + "/orders?user_id=" + strconv.FormatInt(userID, 10))
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"upstream_status": resp.StatusCode})
}

func confirm(userID int64) string {
	time.Sleep(confirmDelay)
	return "confirmed for user " + strconv.FormatInt(userID, 10)
}

// labelWorker tags the goroutine so profiles show which handler started it.
func labelWorker(ctx context.Context, handler string) {
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("handler", handler)))
}
