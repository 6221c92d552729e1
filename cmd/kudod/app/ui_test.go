package app

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestUIRejectsABadPort(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Execute(context.Background(), []string{"ui", "--port", "70000"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "not a port") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

// `kudod ui` prints its URL, serves the page on 127.0.0.1, reports what the cluster refuses in
// JSON, and stops cleanly when its context ends (Ctrl-C).
func TestUIServesUntilInterrupted(t *testing.T) {
	var mu sync.Mutex
	var requests []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Path+" "+r.UserAgent())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"instances.kudod.dev is forbidden"}`)
	}))
	defer api.Close()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: " + api.URL + "}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: test, context: {cluster: c, user: u}}]\ncurrent-context: test\n"
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb := &syncBuffer{}, &syncBuffer{}
	exited := make(chan int, 1)
	go func() { exited <- Execute(ctx, []string{"ui", "--port", "0", "--kubeconfig", kubeconfig}, out, errb) }()
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if rest, ok := strings.CutPrefix(out.String(), "kudod ui: "); ok {
			url = strings.Fields(rest)[0]
		}
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.Contains(out.String(), "cluster test") {
		t.Fatalf("stdout %q, stderr %q", out.String(), errb.String())
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(strings.TrimSuffix(url, "/") + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/"); code != http.StatusOK || !strings.Contains(body, "/static/app.js") {
		t.Errorf("GET /: %d %.200s", code, body)
	}
	if code, body := get("/api/instances"); code != http.StatusForbidden || !strings.Contains(body, "-n NAMESPACE") {
		t.Errorf("GET /api/instances from a cluster that refuses: %d %s", code, body)
	}
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d after Ctrl-C: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("kudod ui did not stop")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range requests {
		if !strings.HasPrefix(r, "GET ") || !strings.Contains(r, " kudod-ui/") {
			t.Errorf("request to the API server: %s", r)
		}
	}
}
