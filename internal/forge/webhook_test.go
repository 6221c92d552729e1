package forge

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	platformSecret = "platform-hook-secret-5c1d"
	appsSecret     = "apps-hook-secret-93ab"
)

// hookCalls records the webhook's callbacks.
type hookCalls struct {
	mu    sync.Mutex
	calls []string // push:<repo> or pr:<repo>
	ch    chan string
}

func (h *hookCalls) record(kind string) func(string) {
	return func(repo string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls = append(h.calls, kind+":"+repo)
		h.ch <- kind + ":" + repo
	}
}

func (h *hookCalls) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.calls...)
}

type hookServer struct {
	url     string
	calls   *hookCalls
	reg     *prometheus.Registry
	logs    *bytes.Buffer
	secrets map[string]string // repository → secret file
	hook    *Webhook
}

// startWebhook serves a Webhook for repositories platform and apps on loopback, through the
// receiver's own server (NewWebhookServer); configure adjusts its options.
func startWebhook(t *testing.T, configure ...func(*WebhookOptions)) *hookServer {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	for name, secret := range map[string]string{"platform": platformSecret, "apps": appsSecret} {
		files[name] = filepath.Join(dir, name)
		if err := os.WriteFile(files[name], []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	calls := &hookCalls{ch: make(chan string, 100)}
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	logs := &bytes.Buffer{}
	opts := WebhookOptions{
		SecretFiles:   files,
		OnPush:        calls.record("push"),
		OnPullRequest: calls.record("pr"),
		Registerer:    reg,
		Logger: funcr.New(func(prefix, args string) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintln(logs, prefix, args)
		}, funcr.Options{Verbosity: 1}),
	}
	for _, c := range configure {
		c(&opts)
	}
	hook, err := NewWebhook(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewWebhookServer(l.Addr().String(), hook)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &hookServer{url: "http://" + l.Addr().String(), calls: calls, reg: reg, logs: logs, secrets: files, hook: hook}
}

func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Deliveries as each forge sends them.
func giteaHeaders(event, secret string, body []byte) map[string]string {
	sig := sign(secret, body)
	return map[string]string{
		"X-Gitea-Event": event, "X-Gitea-Signature": sig, "X-Gogs-Event": event,
		"X-GitHub-Event": event, "X-Hub-Signature-256": "sha256=" + sig,
	}
}

func gitHubHeaders(event, secret string, body []byte) map[string]string {
	id := sha256.Sum256(body) // one event, one delivery ID
	return map[string]string{"X-GitHub-Event": event, "X-Hub-Signature-256": "sha256=" + sign(secret, body), "X-GitHub-Delivery": hex.EncodeToString(id[:8])}
}

func gitLabHeaders(event, secret string) map[string]string {
	return map[string]string{"X-Gitlab-Event": event, "X-Gitlab-Token": secret}
}

func (s *hookServer) send(t *testing.T, method, path string, headers map[string]string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), method, s.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

var pushBody = []byte(`{"ref":"refs/heads/main","after":"` + shaA + `"}`)

// delivery is a push body of its own: the replay cache takes a second delivery of one body for
// a replay.
func delivery(name string) []byte {
	return []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"delivery":%q}`, shaA, name))
}

func TestWebhookAcceptsSignedDeliveries(t *testing.T) {
	s := startWebhook(t)
	tests := []struct {
		name    string
		path    string
		headers func(body []byte) map[string]string
		code    int
		call    string // "" for none
	}{
		{"gitea push", "/hooks/platform", func(b []byte) map[string]string { return giteaHeaders("push", platformSecret, b) }, http.StatusAccepted, "push:platform"},
		{"gitea pull request", "/hooks/apps", func(b []byte) map[string]string { return giteaHeaders("pull_request", appsSecret, b) }, http.StatusAccepted, "pr:apps"},
		{"github push", "/hooks/platform", func(b []byte) map[string]string { return gitHubHeaders("push", platformSecret, b) }, http.StatusAccepted, "push:platform"},
		{"github pull request", "/hooks/platform", func(b []byte) map[string]string { return gitHubHeaders("pull_request", platformSecret, b) }, http.StatusAccepted, "pr:platform"},
		{"github ping", "/hooks/platform", func(b []byte) map[string]string { return gitHubHeaders("ping", platformSecret, b) }, http.StatusOK, ""},
		{"gitlab push", "/hooks/apps", func([]byte) map[string]string { return gitLabHeaders("Push Hook", appsSecret) }, http.StatusAccepted, "push:apps"},
		{"gitlab tag push", "/hooks/apps", func([]byte) map[string]string { return gitLabHeaders("Tag Push Hook", appsSecret) }, http.StatusAccepted, "push:apps"},
		{"gitlab merge request", "/hooks/platform", func([]byte) map[string]string { return gitLabHeaders("Merge Request Hook", platformSecret) }, http.StatusAccepted, "pr:platform"},
		{"gitea signature alone", "/hooks/platform", func(b []byte) map[string]string {
			return map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": sign(platformSecret, b)}
		}, http.StatusAccepted, "push:platform"},
		{"upper-case hex", "/hooks/platform", func(b []byte) map[string]string {
			return map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + strings.ToUpper(sign(platformSecret, b))}
		}, http.StatusAccepted, "push:platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.calls.all())
			body := delivery(tt.name)
			code, answer := s.send(t, http.MethodPost, tt.path, tt.headers(body), bytes.NewReader(body))
			if code != tt.code {
				t.Errorf("answer %d %q, want %d", code, answer, tt.code)
			}
			if tt.call == "" {
				if calls := s.calls.all(); len(calls) != before {
					t.Errorf("callbacks %v, want none", calls[before:])
				}
				return
			}
			select {
			case got := <-s.calls.ch:
				if got != tt.call {
					t.Errorf("callback %s, want %s", got, tt.call)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no callback within 30s, want %s", tt.call)
			}
		})
	}
	if got := value(s.hook.requests.WithLabelValues("platform", HookTriggered)); got != 6 {
		t.Errorf("kudod_webhook_requests_total{platform,triggered} = %v, want 6", got)
	}
}

func TestWebhookRejectsBadDeliveries(t *testing.T) {
	s := startWebhook(t)
	wrong := sign("not-the-secret", pushBody)
	tampered := append(bytes.Clone(pushBody[:len(pushBody)-1]), []byte(`,"x":1}`)...)
	big := bytes.Repeat([]byte("a"), MaxWebhookBody+1)
	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		body    func() io.Reader
		code    int
		result  string
	}{
		{name: "wrong gitea signature", headers: map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": wrong}, code: 401, result: HookUnauthorized},
		{name: "wrong github signature", headers: map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + wrong}, code: 401, result: HookUnauthorized},
		{name: "both gitea signatures wrong", headers: giteaHeaders("push", "not-the-secret", pushBody), code: 401, result: HookUnauthorized},
		{name: "missing signature", headers: map[string]string{"X-GitHub-Event": "push"}, code: 401, result: HookUnauthorized},
		{name: "empty signature", headers: map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": ""}, code: 401, result: HookUnauthorized},
		{name: "github signature without sha256=", headers: map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(platformSecret, pushBody)}, code: 401, result: HookUnauthorized},
		{name: "sha1 signature only", headers: map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature": "sha1=0123456789abcdef0123456789abcdef01234567"}, code: 401, result: HookUnauthorized},
		{name: "malformed signature hex", headers: map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": "zz" + wrong[2:]}, code: 401, result: HookUnauthorized},
		{name: "truncated signature", headers: map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": sign(platformSecret, pushBody)[:32]}, code: 401, result: HookUnauthorized},
		{name: "signature of another body", headers: giteaHeaders("push", platformSecret, pushBody), body: func() io.Reader { return bytes.NewReader(tampered) }, code: 401, result: HookUnauthorized},
		{name: "replayed from another repository", headers: giteaHeaders("push", appsSecret, pushBody), code: 401, result: HookUnauthorized},
		{name: "gitlab wrong token", headers: gitLabHeaders("Push Hook", "not-the-secret"), code: 401, result: HookUnauthorized},
		{name: "gitlab token of another repository", headers: gitLabHeaders("Push Hook", appsSecret), code: 401, result: HookUnauthorized},
		{name: "gitlab token prefix", headers: gitLabHeaders("Push Hook", platformSecret[:10]), code: 401, result: HookUnauthorized},
		{name: "unknown event", headers: gitHubHeaders("issues", platformSecret, pushBody), code: 400, result: HookUnsupportedEvent},
		{name: "missing event", headers: map[string]string{"X-Hub-Signature-256": "sha256=" + sign(platformSecret, pushBody)}, code: 400, result: HookUnsupportedEvent},
		{name: "oversized body", headers: gitHubHeaders("push", platformSecret, big), body: func() io.Reader { return bytes.NewReader(big) }, code: 413, result: HookTooLarge},
		{name: "oversized body without length", headers: gitHubHeaders("push", platformSecret, big), body: func() io.Reader { return io.MultiReader(bytes.NewReader(big)) }, code: 413, result: HookTooLarge},
		{name: "GET", method: http.MethodGet, headers: gitHubHeaders("push", platformSecret, pushBody), code: 405, result: HookMethodNotAllowed},
		{name: "PUT", method: http.MethodPut, headers: gitHubHeaders("push", platformSecret, pushBody), code: 405, result: HookMethodNotAllowed},
		// An unknown repository gets the answer of a bad signature.
		{name: "unknown repository", path: "/hooks/nope", headers: gitHubHeaders("push", platformSecret, pushBody), code: 401, result: HookNotFound},
		{name: "unknown repository, no signature", path: "/hooks/nope", headers: map[string]string{"X-GitHub-Event": "push"}, code: 401, result: HookNotFound},
		{name: "unknown repository, oversized body", path: "/hooks/nope", headers: gitHubHeaders("push", platformSecret, big), body: func() io.Reader { return bytes.NewReader(big) }, code: 413, result: HookTooLarge},
		{name: "empty repository", path: "/hooks/", headers: gitHubHeaders("push", platformSecret, pushBody), code: 401, result: HookNotFound},
		{name: "path traversal", path: "/hooks/../platform", headers: gitHubHeaders("push", platformSecret, pushBody), code: 401, result: HookNotFound},
		{name: "escaped traversal", path: "/hooks/..%2Fplatform", headers: gitHubHeaders("push", platformSecret, pushBody), code: 401, result: HookNotFound},
		{name: "nested path", path: "/hooks/platform/extra", headers: gitHubHeaders("push", platformSecret, pushBody), code: 401, result: HookNotFound},
		{name: "other prefix", path: "/hook/platform", headers: gitHubHeaders("push", platformSecret, pushBody), code: 401, result: HookNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path, body := http.MethodPost, "/hooks/platform", io.Reader(bytes.NewReader(pushBody))
			if tt.method != "" {
				method = tt.method
			}
			if tt.path != "" {
				path = tt.path
			}
			if tt.body != nil {
				body = tt.body()
			}
			label := "platform"
			if tt.path != "" {
				label = "" // no repository of the daemon's
			}
			before := value(s.hook.requests.WithLabelValues(label, tt.result))
			code, answer := s.send(t, method, path, tt.headers, body)
			if code != tt.code {
				t.Errorf("answer %d %q, want %d", code, answer, tt.code)
			}
			if len(answer) > 100 || strings.Contains(answer, platformSecret) {
				t.Errorf("answer %q: want a short reason", answer)
			}
			if got := value(s.hook.requests.WithLabelValues(label, tt.result)); got != before+1 {
				t.Errorf("kudod_webhook_requests_total{%q,%s} went from %v to %v, want +1", label, tt.result, before, got)
			}
		})
	}
	if calls := s.calls.all(); len(calls) != 0 {
		t.Errorf("bad deliveries called back: %v", calls)
	}
	logs := s.logs.String()
	for _, secret := range []string{platformSecret, appsSecret, string(pushBody)} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold a secret or a body:\n%s", logs)
		}
	}
	if strings.Contains(logs, "nope") {
		t.Errorf("the logs name an unknown repository a caller chose:\n%s", logs)
	}
}

func TestWebhookReloadsARotatedSecret(t *testing.T) {
	s := startWebhook(t)
	const rotated = "rotated-secret-77e0"
	if err := os.WriteFile(s.secrets["platform"], []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	// A distinct modification time, whatever the file system's resolution.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(s.secrets["platform"], later, later); err != nil {
		t.Fatal(err)
	}
	if code, _ := s.send(t, http.MethodPost, "/hooks/platform", gitHubHeaders("push", platformSecret, pushBody), bytes.NewReader(pushBody)); code != http.StatusUnauthorized {
		t.Errorf("the old secret: %d, want 401", code)
	}
	if code, _ := s.send(t, http.MethodPost, "/hooks/platform", gitHubHeaders("push", rotated, pushBody), bytes.NewReader(pushBody)); code != http.StatusAccepted {
		t.Errorf("the rotated secret: %d, want 202", code)
	}
	next := delivery("after the file was emptied")
	// A secret file gone bad keeps the last good secret.
	if err := os.WriteFile(s.secrets["platform"], nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := s.send(t, http.MethodPost, "/hooks/platform", gitHubHeaders("push", rotated, next), bytes.NewReader(next)); code != http.StatusAccepted {
		t.Errorf("after the file was emptied: %d, want 202 with the last secret", code)
	}
}

func TestNewWebhookRefusesBadSecrets(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{empty, filepath.Join(dir, "missing")} {
		if _, err := NewWebhook(WebhookOptions{SecretFiles: map[string]string{"platform": path}}); err == nil {
			t.Errorf("NewWebhook with secret file %s succeeded", path)
		}
	}
}
