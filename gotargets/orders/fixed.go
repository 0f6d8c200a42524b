package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

const upstreamTimeout = 5 * time.Second // a loopback call that takes longer has failed

// registerFixed wires the same handlers with each leak fixed.
func registerFixed(mux *http.ServeMux, s *store, self string, maxBody int64, idleTimeout time.Duration,
	clientTLS *tls.Config) {
	bounded := func(w http.ResponseWriter, r *http.Request) io.Reader {
		return http.MaxBytesReader(w, r.Body, maxBody)
	}
	mux.Handle("/orders", ordersHandler(s, bounded))
	mux.Handle("/upload", &fixedUpload{maxBody: maxBody})
	mux.HandleFunc("/orders/notify", fixedNotify)
	mux.Handle("/orders/upstream", &fixedUpstream{
		base: self,
		client: &http.Client{
			Timeout: upstreamTimeout,
			// pooled connections close on the same schedule as the server's idle ones
			Transport: &http.Transport{IdleConnTimeout: idleTimeout, MaxIdleConnsPerHost: 4,
				TLSClientConfig: clientTLS},
		},
		maxBody: maxBody,
	})
}

// fixedUpload bounds the body; the server's ReadTimeout ends a body that never arrives.
type fixedUpload struct{ maxBody int64 }

func (u *fixedUpload) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, u.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "upload too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "upload failed: "+err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"bytes": n})
}

// fixedNotify ties the worker to the request context: once the handler returns, the
// context is cancelled and the worker drops the confirmation instead of blocking.
func fixedNotify(w http.ResponseWriter, r *http.Request) {
	userID, ok := userIDParam(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	confirmed := make(chan string)
	go func() {
		labelWorker(ctx, "notify")
		msg := confirm(userID)
		select {
		case confirmed <- msg:
		case <-ctx.Done():
		}
	}()
	select {
	case msg := <-confirmed:
		writeJSON(w, http.StatusOK, map[string]string{"status": msg})
	case <-time.After(notifyBudget):
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "pending"})
	}
}

// fixedUpstream drains and closes every response body so the connection is reused or closed.
type fixedUpstream struct {
	base    string
	client  *http.Client
	maxBody int64
}

func (u *fixedUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	userID, ok := userIDParam(w, r)
	if !ok {
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet,
		u.base+"/orders?user_id="+strconv.FormatInt(userID, 10), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	resp, err := u.client.Do(req)
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	var orders []order
	if err := json.NewDecoder(io.LimitReader(resp.Body, u.maxBody)).Decode(&orders); err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, u.maxBody)) // reach EOF so the connection can be reused
	writeJSON(w, http.StatusOK, map[string]int{"upstream_status": resp.StatusCode, "orders": len(orders)})
}
