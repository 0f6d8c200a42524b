package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

type order struct {
	ID     int64  `json:"id"`
	UserID int64  `json:"user_id"`
	Item   string `json:"item"`
	Qty    int    `json:"qty"`
}

// store keeps orders in memory, keyed by user: the probe cares about goroutines, not persistence.
type store struct {
	mu     sync.Mutex
	nextID int64
	byUser map[int64][]order
}

var ordersCreated atomic.Int64

func newStore() *store {
	return &store{byUser: make(map[int64][]order)}
}

func (s *store) list(userID int64) []order {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]order{}, s.byUser[userID]...)
}

func (s *store) add(o order) order {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	o.ID = s.nextID
	s.byUser[o.UserID] = append(s.byUser[o.UserID], o)
	ordersCreated.Add(1)
	return o
}

// bodyReader is where the two modes differ for request bodies: as sent, or bounded.
type bodyReader func(w http.ResponseWriter, r *http.Request) io.Reader

// ordersHandler serves GET /orders?user_id=K and POST /orders.
func ordersHandler(s *store, body bodyReader) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			userID, ok := userIDParam(w, r)
			if !ok {
				return
			}
			writeJSON(w, http.StatusOK, s.list(userID))
		case http.MethodPost:
			var o order
			if err := json.NewDecoder(body(w, r)).Decode(&o); err != nil {
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					http.Error(w, "order too large", http.StatusRequestEntityTooLarge)
					return
				}
				http.Error(w, "invalid order: "+err.Error(), http.StatusBadRequest)
				return
			}
			if o.UserID == 0 || o.Qty <= 0 {
				http.Error(w, "invalid order: user_id and qty are required", http.StatusBadRequest)
				return
			}
			writeJSON(w, http.StatusCreated, s.add(o))
		default:
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	}
}

func userIDParam(w http.ResponseWriter, r *http.Request) (int64, bool) {
	userID, err := strconv.ParseInt(r.URL.Query().Get("user_id"), 10, 64)
	if err != nil {
		http.Error(w, "user_id must be an integer", http.StatusBadRequest)
		return 0, false
	}
	return userID, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
