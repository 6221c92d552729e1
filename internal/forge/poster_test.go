package forge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// A Poster retries 5xx answers, sends the body and headers as given, and its errors show
// neither the URL's path nor its query.
func TestPoster(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		if string(body) != `{"a":1}` || r.Header.Get("X-Test") != "yes" || r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/refuse/s3cret" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	p := NewPoster(Options{})
	p.c.retry.backoff.Duration = 1
	if err := p.Post(context.Background(), srv.URL+"/hook/s3cret", []byte(`{"a":1}`), http.Header{"X-Test": {"yes"}}); err != nil {
		t.Fatalf("post: %v", err)
	}
	if calls.Load() != 2 {
		t.Errorf("%d requests, want a retry after the 502", calls.Load())
	}
	err := p.Post(context.Background(), srv.URL+"/refuse/s3cret?token=t0k", []byte(`{"a":1}`), http.Header{"X-Test": {"yes"}})
	if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "t0k") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("error: %v", err)
	}
	for _, bad := range []string{"ftp://x/y", "http://user:pw@x/y", ":"} {
		if err := p.Post(context.Background(), bad, nil, nil); err == nil || strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
