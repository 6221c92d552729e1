package forge

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

// WebhookPathPrefix is where the webhook receiver serves: POST /hooks/<repository>.
const WebhookPathPrefix = "/hooks/"

// MaxWebhookBody is the largest delivery the receiver reads; larger ones get 413.
const MaxWebhookBody = 1 << 20

// Webhook results, the result label of kudod_webhook_requests_total.
const (
	HookTriggered        = "triggered"          // a push or pull-request event called back
	HookIgnored          = "ignored"            // a ping
	HookMethodNotAllowed = "method_not_allowed" // not a POST
	HookNotFound         = "not_found"          // no such repository (or no webhook for it)
	HookTooLarge         = "too_large"          // over MaxWebhookBody
	HookBadRequest       = "bad_request"        // the body could not be read
	HookUnauthorized     = "unauthorized"       // missing or wrong signature
	HookUnsupportedEvent = "unsupported_event"  // a signed event kudod does not act on
	HookDuplicate        = "duplicate"          // a delivery seen before (a replay or a retry)
	HookTimeout          = "timeout"            // the body did not arrive within the body timeout
)

// Webhook receiver defaults.
const (
	// DefaultWebhookBodyTimeout bounds the reading of one delivery's body.
	DefaultWebhookBodyTimeout = 10 * time.Second
	// DefaultWebhookReplayCacheSize is how many deliveries the replay cache remembers.
	DefaultWebhookReplayCacheSize = 4096
)

// WebhookOptions configures a Webhook.
type WebhookOptions struct {
	// SecretFiles maps repository names to the files holding their webhook secrets: the HMAC
	// key of Gitea's and GitHub's signatures, GitLab's token. Surrounding whitespace is ignored.
	SecretFiles map[string]string
	// OnPush is called with the repository's name for each push (GitLab: push and tag push)
	// delivery; OnPullRequest for pull-request (GitLab: merge-request) deliveries. They run in
	// the request's goroutine and must not block: ask for a poll and return.
	OnPush, OnPullRequest func(repository string)
	// BodyTimeout bounds the reading of a delivery's body, from the moment its headers were
	// read (DefaultWebhookBodyTimeout when zero): a body trickled in byte by byte does not
	// hold a connection open.
	BodyTimeout time.Duration
	// ReplayCacheSize is how many recent deliveries are remembered to refuse replays
	// (DefaultWebhookReplayCacheSize when zero).
	ReplayCacheSize int
	// Registerer gets kudod_webhook_requests_total{repository,result}; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     logr.Logger
}

// Webhook is the http.Handler of POST /hooks/<repository>. A delivery is accepted when one of
// its signature headers verifies with the repository's secret: X-Gitea-Signature (hex
// HMAC-SHA256 of the body), X-Hub-Signature-256 (sha256=<hex HMAC-SHA256>, GitHub's, which
// Gitea sends too) or X-Gitlab-Token (the secret itself), all compared in constant time. Its
// event (X-Gitea-Event, X-GitHub-Event or X-Gitlab-Event) then decides: push → OnPush, pull
// request → OnPullRequest (both 202), ping → 200; any other event is a 400.
//
// Other answers: 405 for methods but POST, 413 for bodies over MaxWebhookBody, 408 for a body
// that did not arrive within the body timeout, and one 401 for a missing or wrong signature and
// for a repository without a webhook secret (or a malformed path) alike: the answer never tells
// which repositories exist. A signed push or pull-request delivery seen before (replayCache) is
// answered 200 and ignored. Secrets are read when the webhook is made and again whenever their
// file changes.
type Webhook struct {
	secrets      map[string]*secretFile
	onPush, onPR func(string)
	bodyTimeout  time.Duration
	replays      *replayCache
	// decoy is what a delivery for an unknown repository is checked against, so that it costs
	// what a known one does.
	decoy    []byte
	requests *prometheus.CounterVec
	log      logr.Logger
}

// NewWebhook reads the repositories' secrets and registers the webhook's metric.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = DefaultWebhookBodyTimeout
	}
	if opts.ReplayCacheSize <= 0 {
		opts.ReplayCacheSize = DefaultWebhookReplayCacheSize
	}
	decoy := make([]byte, 32)
	_, _ = rand.Read(decoy) // crypto/rand.Read never fails
	w := &Webhook{
		secrets:     map[string]*secretFile{},
		onPush:      opts.OnPush,
		onPR:        opts.OnPullRequest,
		bodyTimeout: opts.BodyTimeout,
		replays:     newReplayCache(opts.ReplayCacheSize),
		decoy:       decoy,
		log:         opts.Logger,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kudod_webhook_requests_total",
			Help: "Webhook deliveries received, by repository (empty when unknown) and result.",
		}, []string{"repository", "result"}),
	}
	for name, path := range opts.SecretFiles {
		s := &secretFile{path: path}
		if err := s.load(); err != nil {
			return nil, fmt.Errorf("webhook of repository %s: %w", name, err)
		}
		w.secrets[name] = s
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(w.requests); err != nil {
			return nil, fmt.Errorf("registering the webhook metrics: %w", err)
		}
	}
	return w, nil
}

func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, WebhookPathPrefix)
	var secret *secretFile
	if ok && name != "" && !strings.Contains(name, "/") {
		secret = w.secrets[name]
	}
	if secret == nil {
		name = "" // never a label or a log value chosen by the caller
	}
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		w.answer(rw, name, "", http.StatusMethodNotAllowed, HookMethodNotAllowed, "only POST is allowed")
		return
	}
	// Known repository or not, the body is read and checked the same way, so that neither the
	// answer nor its timing tells which repositories exist.
	if r.ContentLength > MaxWebhookBody {
		w.answer(rw, name, "", http.StatusRequestEntityTooLarge, HookTooLarge, "body too large")
		return
	}
	// The server's ReadTimeout bounds a whole request too; this deadline holds whatever server
	// the webhook is mounted on. A server that cannot set one (HTTP/2) keeps its own timeouts.
	_ = http.NewResponseController(rw).SetReadDeadline(time.Now().Add(w.bodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxWebhookBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		var netErr net.Error
		switch {
		case errors.As(err, &tooLarge):
			w.answer(rw, name, "", http.StatusRequestEntityTooLarge, HookTooLarge, "body too large")
		case errors.As(err, &netErr) && netErr.Timeout():
			rw.Header().Set("Connection", "close")
			w.answer(rw, name, "", http.StatusRequestTimeout, HookTimeout, "body not received in time")
		default:
			w.answer(rw, name, "", http.StatusBadRequest, HookBadRequest, "cannot read the body")
		}
		return
	}
	key := w.decoy
	if secret != nil {
		key = secret.get(w.log)
	}
	if present, valid := verifyDelivery(r.Header, body, key); !present || !valid || secret == nil {
		result := HookUnauthorized
		if secret == nil {
			result = HookNotFound
		}
		w.answer(rw, name, "", http.StatusUnauthorized, result, "missing or invalid signature")
		return
	}
	event := deliveryEvent(r.Header)
	switch event {
	case "push", "Push Hook", "Tag Push Hook":
		if w.replays.seen(deliveryKeys(name, event, r.Header, body)) {
			w.answer(rw, name, event, http.StatusOK, HookDuplicate, "delivery already received")
			return
		}
		if w.onPush != nil {
			w.onPush(name)
		}
		w.answer(rw, name, event, http.StatusAccepted, HookTriggered, "poll requested")
	case "pull_request", "Merge Request Hook":
		if w.replays.seen(deliveryKeys(name, event, r.Header, body)) {
			w.answer(rw, name, event, http.StatusOK, HookDuplicate, "delivery already received")
			return
		}
		if w.onPR != nil {
			w.onPR(name)
		}
		w.answer(rw, name, event, http.StatusAccepted, HookTriggered, "preview requested")
	case "ping":
		w.answer(rw, name, event, http.StatusOK, HookIgnored, "pong")
	case "":
		w.answer(rw, name, event, http.StatusBadRequest, HookUnsupportedEvent, "missing event header")
	default:
		w.answer(rw, name, event, http.StatusBadRequest, HookUnsupportedEvent, fmt.Sprintf("unsupported event %q", event))
	}
}

// answer writes a short plain-text answer, counts it and logs it.
func (w *Webhook) answer(rw http.ResponseWriter, repository, event string, code int, result, reason string) {
	w.requests.WithLabelValues(repository, result).Inc()
	log := w.log
	if result == HookNotFound || code == http.StatusMethodNotAllowed || result == HookDuplicate {
		log = log.V(1) // scanners, replays
	}
	log.Info("webhook delivery", "repository", repository, "event", event, "result", result, "status", code)
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(code)
	_, _ = io.WriteString(rw, reason+"\n")
}

// deliveryEvent is the delivery's event name, cut short: Gitea sends X-Gitea-Event and
// X-GitHub-Event alike.
func deliveryEvent(h http.Header) string {
	for _, name := range []string{"X-Gitea-Event", "X-GitHub-Event", "X-Gitlab-Event"} {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			return truncate(v, 64)
		}
	}
	return ""
}

// verifyDelivery reports whether the delivery carries a signature header at all, and whether
// one of them verifies with secret. Gitea sends X-Gitea-Signature and X-Hub-Signature-256
// (and X-GitHub-Event) alike, so the headers do not tell the forge: any one verifying is
// enough.
func verifyDelivery(h http.Header, body, secret []byte) (present, valid bool) {
	if len(secret) == 0 {
		return false, false
	}
	if sig := h.Get("X-Gitea-Signature"); sig != "" {
		present = true
		if validHMAC(secret, body, sig) {
			return true, true
		}
	}
	if sig := h.Get("X-Hub-Signature-256"); sig != "" {
		present = true
		if hexSig, ok := strings.CutPrefix(sig, "sha256="); ok && validHMAC(secret, body, hexSig) {
			return true, true
		}
	}
	if token := h.Get("X-Gitlab-Token"); token != "" {
		present = true
		// Comparing digests keeps the comparison constant-time whatever the lengths.
		got, want := sha256.Sum256([]byte(token)), sha256.Sum256(secret)
		if hmac.Equal(got[:], want[:]) {
			return true, true
		}
	}
	return present, false
}

// validHMAC reports whether hexSig is the hex HMAC-SHA256 of body under secret.
func validHMAC(secret, body []byte, hexSig string) bool {
	sig, err := hex.DecodeString(strings.TrimSpace(hexSig))
	if err != nil || len(sig) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(sig, mac.Sum(nil))
}

// secretFile is a webhook secret, read again when its file changes (a rotated Kubernetes
// Secret volume, say).
type secretFile struct {
	path string

	mu      sync.Mutex
	value   []byte
	modTime time.Time
	size    int64
}

// load reads the file; an unreadable or empty file is an error naming the file only.
func (s *secretFile) load() error {
	info, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("reading the webhook secret: %w", err)
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("reading the webhook secret: %w", err)
	}
	value := []byte(strings.TrimSpace(string(data)))
	if len(value) == 0 {
		return fmt.Errorf("the webhook secret file %s is empty", s.path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.value, s.modTime, s.size = value, info.ModTime(), info.Size()
	return nil
}

// get returns the secret, reloading it first when the file changed; a file that cannot be
// read any more leaves the last secret in use.
func (s *secretFile) get(log logr.Logger) []byte {
	s.mu.Lock()
	value, modTime, size := s.value, s.modTime, s.size
	s.mu.Unlock()
	info, err := os.Stat(s.path)
	if err != nil || (info.ModTime().Equal(modTime) && info.Size() == size) {
		return value
	}
	if err := s.load(); err != nil {
		log.Error(err, "reloading a webhook secret; keeping the previous one")
		return value
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.value
}

// Timeouts of the webhook receiver's server (NewWebhookServer).
const (
	webhookReadHeaderTimeout = 10 * time.Second
	// webhookReadTimeout bounds a whole request, headers and body; the webhook's own body
	// timeout is usually shorter.
	webhookReadTimeout  = 30 * time.Second
	webhookWriteTimeout = 30 * time.Second
	webhookIdleTimeout  = time.Minute
	webhookMaxHeader    = 64 << 10
)

// NewWebhookServer returns the server of the webhook receiver on addr: each phase of a request
// is bounded (its headers, the whole request, the answer, an idle keep-alive connection) and its
// headers take at most 64 KiB, so that slow or endless requests do not hold connections.
func NewWebhookServer(addr string, handler http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: webhookReadHeaderTimeout,
		ReadTimeout:       webhookReadTimeout,
		WriteTimeout:      webhookWriteTimeout,
		IdleTimeout:       webhookIdleTimeout,
		MaxHeaderBytes:    webhookMaxHeader,
	}
}
