package forge

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A signed delivery replayed many times asks for one poll: by its delivery ID (a forge's
// retry), and by its body when a replay carries new IDs (the signature covers the body only).
// Distinct deliveries, another event with the same body, and another repository still count.
func TestWebhookRefusesReplays(t *testing.T) {
	s := startWebhook(t)
	body := delivery("replayed")
	calls := func() int { return len(s.calls.all()) }
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		body    []byte
		code    int
		calls   int // callbacks after this delivery, in all
	}{
		{name: "first delivery", headers: giteaHeaders("push", platformSecret, body), code: 202, calls: 1},
		{name: "same delivery again", headers: giteaHeaders("push", platformSecret, body), code: 200, calls: 1},
		{name: "new delivery ID, same body", headers: with(giteaHeaders("push", platformSecret, body), "X-Gitea-Delivery", "f6266f16-new"), code: 200, calls: 1},
		{name: "pull request event, same body", headers: giteaHeaders("pull_request", platformSecret, body), code: 202, calls: 2},
		{name: "same body, other repository", path: "/hooks/apps", headers: giteaHeaders("push", appsSecret, body), code: 202, calls: 3},
		{name: "github delivery", headers: with(gitHubHeaders("push", platformSecret, delivery("gh")), "X-GitHub-Delivery", "72d3162e-1"), body: delivery("gh"), code: 202, calls: 4},
		{name: "github redelivery keeps the ID", headers: with(gitHubHeaders("push", platformSecret, delivery("gh-edited")), "X-GitHub-Delivery", "72d3162e-1"), body: delivery("gh-edited"), code: 200, calls: 4},
		{name: "gitlab delivery", headers: with(gitLabHeaders("Push Hook", platformSecret), "Idempotency-Key", "908a6d9e"), body: delivery("gl-1"), code: 202, calls: 5},
		{name: "gitlab retry", headers: with(gitLabHeaders("Push Hook", platformSecret), "Idempotency-Key", "908a6d9e"), body: delivery("gl-2"), code: 200, calls: 5},
		{name: "gitlab event UUID", headers: with(gitLabHeaders("Push Hook", platformSecret), "X-Gitlab-Event-UUID", "62b5-1"), body: delivery("gl-3"), code: 202, calls: 6},
		{name: "gitlab event UUID again", headers: with(gitLabHeaders("Push Hook", platformSecret), "X-Gitlab-Event-UUID", "62b5-1"), body: delivery("gl-4"), code: 200, calls: 6},
		{name: "a ping is never a replay", headers: giteaHeaders("ping", platformSecret, body), code: 200, calls: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, b := "/hooks/platform", body
			if tt.path != "" {
				path = tt.path
			}
			if tt.body != nil {
				b = tt.body
			}
			if code, answer := s.send(t, http.MethodPost, path, tt.headers, bytes.NewReader(b)); code != tt.code {
				t.Errorf("answer %d %q, want %d", code, answer, tt.code)
			}
			if got := calls(); got != tt.calls {
				t.Errorf("%d callbacks, want %d", got, tt.calls)
			}
		})
	}
	// The review's case: one signed delivery sent 500 times.
	before := calls()
	for range 500 {
		if code, _ := s.send(t, http.MethodPost, "/hooks/platform", giteaHeaders("push", platformSecret, body), bytes.NewReader(body)); code != 200 {
			t.Fatalf("a replay answered %d", code)
		}
	}
	if got := calls() - before; got != 0 {
		t.Errorf("500 replays made %d callbacks", got)
	}
	if got := value(s.hook.requests.WithLabelValues("platform", HookDuplicate)); got < 500 {
		t.Errorf("kudod_webhook_requests_total{platform,duplicate} = %v", got)
	}
}

func with(h map[string]string, k, v string) map[string]string {
	h[k] = v
	return h
}

// The replay cache is bounded: past its size, the deliveries seen longest ago are forgotten.
func TestReplayCacheIsBounded(t *testing.T) {
	c := newReplayCache(3)
	for i := range 4 {
		if c.seen([]string{fmt.Sprint(i)}) {
			t.Fatalf("key %d seen before it was added", i)
		}
	}
	if c.seen([]string{"0"}) {
		t.Error("the oldest key is still remembered past the cache's size")
	}
	if !c.seen([]string{"3"}) || !c.seen([]string{"nope", "3"}) {
		t.Error("a recent key was forgotten")
	}
	if c.keys.Len() > 3 {
		t.Errorf("%d keys remembered, want at most 3", c.keys.Len())
	}
}

// A repository without a webhook and a wrong signature get the same answer, byte for byte:
// the receiver does not tell which repositories exist.
func TestWebhookAnswersUnknownRepositoriesAsBadSignatures(t *testing.T) {
	s := startWebhook(t)
	wrong := giteaHeaders("push", "not-the-secret", pushBody)
	answer := func(path string, headers map[string]string) string {
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, s.url+path, bytes.NewReader(pushBody))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		resp.Header.Del("Date")
		var b strings.Builder
		fmt.Fprintln(&b, resp.Status)
		_ = resp.Header.Write(&b)
		_, _ = io.Copy(&b, resp.Body)
		return b.String()
	}
	bad := answer("/hooks/platform", wrong)
	if !strings.HasPrefix(bad, "401 ") {
		t.Fatalf("a wrong signature: %s", bad)
	}
	for _, c := range []struct {
		path    string
		headers map[string]string
	}{
		{"/hooks/nope", wrong},
		{"/hooks/nope", giteaHeaders("push", platformSecret, pushBody)},
		{"/hooks/platform-staging", wrong},
		{"/hooks/platform", map[string]string{"X-Gitea-Event": "push"}},
	} {
		if got := answer(c.path, c.headers); got != bad {
			t.Errorf("%s answers\n%s\nwhile a wrong signature answers\n%s", c.path, got, bad)
		}
	}
}

// A body trickled in a byte at a time is cut off at the body timeout with 408 and the
// connection closed, on a real listener; a prompt delivery on the same server still works.
func TestWebhookCutsOffASlowBody(t *testing.T) {
	s := startWebhook(t, func(o *WebhookOptions) { o.BodyTimeout = 500 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	headers := giteaHeaders("push", platformSecret, pushBody)
	var req strings.Builder
	fmt.Fprintf(&req, "POST /hooks/platform HTTP/1.1\r\nHost: kudod\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", len(pushBody))
	for k, v := range headers {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n")
	start := time.Now()
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	// One byte every 200ms, from another goroutine, until the server hangs up.
	go func() {
		for _, b := range pushBody {
			time.Sleep(200 * time.Millisecond)
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	took := time.Since(start)
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || took > 3*time.Second {
		t.Fatalf("answer %d %q after %s, want 408 after about 500ms", resp.StatusCode, answer, took)
	}
	if !resp.Close {
		t.Error("the connection of a timed-out body stays open")
	}
	if got := len(s.calls.all()); got != 0 {
		t.Errorf("a slow body made %d callbacks", got)
	}
	if got := value(s.hook.requests.WithLabelValues("platform", HookTimeout)); got != 1 {
		t.Errorf("kudod_webhook_requests_total{platform,timeout} = %v, want 1", got)
	}
	body := delivery("prompt")
	if code, answer := s.send(t, http.MethodPost, "/hooks/platform", giteaHeaders("push", platformSecret, body), bytes.NewReader(body)); code != http.StatusAccepted {
		t.Errorf("a prompt delivery after it: %d %q", code, answer)
	}
}

// The receiver's server bounds every phase of a request.
func TestNewWebhookServerSetsTimeouts(t *testing.T) {
	srv := NewWebhookServer(":9292", http.NotFoundHandler())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Errorf("unbounded server: %+v", srv)
	}
}
