package notify

import (
	"context"
	"crypto/hmac"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/kudod-dev/kudod/internal/forge"
)

// event is a failed scheduled backup, as the Instance controller reports it.
func event() Event {
	return Event{
		Kind: EventKindPlanEnded, Repository: "platform",
		Instance: InstanceRef{Namespace: "data", Name: "db"}, Operator: OperatorRef{Name: "database", Version: "1.0.0", AppVersion: "8.4"},
		Plan: "backup", UID: "u-1", Trigger: "schedule", Schedule: "nightly", Revision: "0123456789abcdef0123456789abcdef01234567",
		Outcome: "failed", Status: "FATAL_ERROR", Message: `step backup: jobs "db-backup" is forbidden: exceeded quota <no-jobs> & more`, FailedStep: "backup/backup",
		StartTime: time.Date(2024, 1, 2, 3, 4, 0, 0, time.UTC), FinishTime: time.Date(2024, 1, 2, 3, 4, 12, 0, time.UTC), DurationSeconds: 12,
		Parameters: map[string]string{"BACKUP_NAME": "nightly-0102-0304", "DB_PASSWORD": "***"},
	}
}

// request is one request a test receiver got.
type request struct {
	header http.Header
	body   string
}

// testReceiver answers code and records what it gets.
type testReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []request
	code int
}

func newTestReceiver(t *testing.T, code int) *testReceiver {
	r := &testReceiver{code: code}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, request{header: req.Header.Clone(), body: string(body)})
		r.mu.Unlock()
		w.WriteHeader(r.code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *testReceiver) await(t *testing.T, n int) []request {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		got := append([]request(nil), r.got...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the receiver got fewer than %d requests", n)
	return nil
}

// start runs a notifier until the test ends.
func start(t *testing.T, log logr.Logger, ns ...Notification) *Notifier {
	t.Helper()
	n, err := New(Options{Notifications: ns, Poster: forge.NewPoster(forge.Options{UserAgent: "kudod/test"}), Logger: log, DrainTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = n.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return n
}

func writeSecret(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The generic webhook gets the event as JSON, signed with the key of secretFile.
func TestWebhookRequest(t *testing.T) {
	r := newTestReceiver(t, http.StatusOK)
	key := writeSecret(t, "hmac", "k3y\n")
	n := start(t, logr.Discard(), Notification{Name: "ops", Type: "webhook", URL: r.srv.URL + "/hook", SecretFile: key})
	n.Notify(event())
	got := r.await(t, 1)[0]
	want := `{"kind":"PlanEnded","repository":"platform","instance":{"namespace":"data","name":"db"},` +
		`"operator":{"name":"database","version":"1.0.0","appVersion":"8.4"},"plan":"backup","uid":"u-1","trigger":"schedule",` +
		`"schedule":"nightly","revision":"0123456789abcdef0123456789abcdef01234567","outcome":"failed","status":"FATAL_ERROR",` +
		`"message":"step backup: jobs \"db-backup\" is forbidden: exceeded quota \u003cno-jobs\u003e \u0026 more","failedStep":"backup/backup",` +
		`"startTime":"2024-01-02T03:04:00Z","finishTime":"2024-01-02T03:04:12Z","durationSeconds":12,` +
		`"parameters":{"BACKUP_NAME":"nightly-0102-0304","DB_PASSWORD":"***"}}`
	if got.body != want {
		t.Fatalf("body:\n%s\nwant\n%s", got.body, want)
	}
	if sig := got.header.Get(HeaderSignature); !hmac.Equal([]byte(sig), []byte(Sign([]byte("k3y"), []byte(want)))) || !strings.HasPrefix(sig, "sha256=") || len(sig) != 7+64 {
		t.Errorf("signature %q", sig)
	}
	if got.header.Get("Content-Type") != "application/json" || got.header.Get(HeaderEvent) != "PlanEnded" || got.header.Get(HeaderDelivery) == "" || got.header.Get("User-Agent") != "kudod/test" {
		t.Errorf("headers: %v", got.header)
	}
}

// Sign is GitHub's X-Hub-Signature-256 scheme: a known vector.
func TestSign(t *testing.T) {
	if got := Sign([]byte("It's a Secret to Everybody"), []byte("Hello, World!")); got != "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" {
		t.Fatalf("Sign = %s", got)
	}
}

func TestSlackRequest(t *testing.T) {
	r := newTestReceiver(t, http.StatusOK)
	url := writeSecret(t, "url", r.srv.URL+"/services/T0/B0/secret\n")
	n := start(t, logr.Discard(), Notification{Name: "chat", Type: "slack", URLFile: url})
	n.Notify(event())
	got := r.await(t, 1)[0]
	want := `{"text":"kudod: plan backup of data/db failed","blocks":[` +
		`{"type":"section","text":{"type":"mrkdwn","text":":x: *kudod: plan backup of data/db failed*\nstep backup: jobs \"db-backup\" is forbidden: exceeded quota \u0026lt;no-jobs\u0026gt; \u0026amp; more"}},` +
		`{"type":"section","fields":[{"type":"mrkdwn","text":"*Trigger*\nschedule nightly"},{"type":"mrkdwn","text":"*Operator*\ndatabase 1.0.0"},` +
		`{"type":"mrkdwn","text":"*Duration*\n12s"},{"type":"mrkdwn","text":"*Revision*\n` + "`0123456`" + `"},{"type":"mrkdwn","text":"*Failed step*\nbackup/backup"}]}]}`
	if got.body != want {
		t.Fatalf("body:\n%s\nwant\n%s", got.body, want)
	}
	if got.header.Get(HeaderSignature) != "" {
		t.Error("a Slack request is signed")
	}
}

func TestTeamsRequest(t *testing.T) {
	r := newTestReceiver(t, http.StatusOK)
	url := writeSecret(t, "url", r.srv.URL+"/webhookb2/secret")
	n := start(t, logr.Discard(), Notification{Name: "team", Type: "teams", URLFile: url})
	e := event()
	e.Outcome, e.Status, e.Message, e.FailedStep, e.Trigger, e.User = "completed", "COMPLETE", "", "", "retry", "alice"
	n.Notify(e)
	got := r.await(t, 1)[0]
	want := `{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","contentUrl":null,"content":{` +
		`"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","type":"AdaptiveCard","version":"1.2","body":[` +
		`{"color":"Good","size":"Medium","text":"kudod: plan backup of data/db completed","type":"TextBlock","weight":"Bolder","wrap":true},` +
		`{"facts":[{"title":"Trigger","value":"retry by alice"},{"title":"Operator","value":"database 1.0.0"},{"title":"Duration","value":"12s"},` +
		`{"title":"Revision","value":"0123456"}],"type":"FactSet"}]}}]}`
	if got.body != want {
		t.Fatalf("body:\n%s\nwant\n%s", got.body, want)
	}
}

// Filters select by outcome, plan and trigger; empty filters select everything.
func TestFilters(t *testing.T) {
	e := event()
	for _, tt := range []struct {
		n    Notification
		want bool
	}{
		{Notification{}, true},
		{Notification{Outcomes: []string{"failed"}}, true},
		{Notification{Outcomes: []string{"completed"}}, false},
		{Notification{Plans: []string{"deploy", "backup"}}, true},
		{Notification{Plans: []string{"deploy"}}, false},
		{Notification{Triggers: []string{"schedule", "retry"}, Outcomes: []string{"failed", "completed"}}, true},
		{Notification{Triggers: []string{"git"}}, false},
	} {
		if got := tt.n.matches(e); got != tt.want {
			t.Errorf("%+v matches = %v", tt.n, got)
		}
	}
}

// A receiver that is down neither blocks Notify nor delays another notification, and the
// error logged names neither the URL's secret path nor the signing key.
func TestDownReceiverBlocksNothing(t *testing.T) {
	up := newTestReceiver(t, http.StatusOK)
	down := newTestReceiver(t, http.StatusServiceUnavailable)
	var mu sync.Mutex
	var logs strings.Builder
	log := funcr.New(func(prefix, args string) { mu.Lock(); logs.WriteString(args + "\n"); mu.Unlock() }, funcr.Options{})
	n := start(t, log,
		Notification{Name: "down", Type: "webhook", URLFile: writeSecret(t, "url", down.srv.URL+"/hooks/t0p-s3cret-path"), SecretFile: writeSecret(t, "k", "the-key")},
		Notification{Name: "up", Type: "webhook", URL: up.srv.URL})
	began := time.Now()
	for i := 0; i < 50; i++ {
		n.Notify(event())
	}
	if d := time.Since(began); d > 100*time.Millisecond {
		t.Fatalf("Notify blocked for %s", d)
	}
	up.await(t, 50)
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("the receiver that is up got its notifications after %s", d)
	}
	down.await(t, 1)
	mu.Lock()
	defer mu.Unlock()
	if s := logs.String(); strings.Contains(s, "t0p-s3cret-path") || strings.Contains(s, "the-key") {
		t.Errorf("the logs show a secret:\n%s", s)
	}
}

// Failures are logged and counted, naming the file when a URL or key cannot be read.
func TestUnreadableFiles(t *testing.T) {
	var mu sync.Mutex
	var logs strings.Builder
	log := funcr.New(func(prefix, args string) { mu.Lock(); logs.WriteString(args + "\n"); mu.Unlock() }, funcr.Options{})
	r := newTestReceiver(t, http.StatusOK)
	n := start(t, log,
		Notification{Name: "nourl", Type: "slack", URLFile: filepath.Join(t.TempDir(), "missing")},
		Notification{Name: "nokey", Type: "webhook", URL: r.srv.URL, SecretFile: writeSecret(t, "empty", "\n")})
	n.Notify(event())
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		s := logs.String()
		mu.Unlock()
		if strings.Contains(s, "reading the URL") && strings.Contains(s, "signing key file") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("logs:\n%s", logs.String())
}

func TestNewRefusesBadNotifications(t *testing.T) {
	for _, ns := range [][]Notification{
		{{Name: "a", Type: "pager", URL: "http://x"}},
		{{Name: "a", Type: "webhook"}},
		{{Name: "a", Type: "webhook", URL: "http://x"}, {Name: "a", Type: "slack", URLFile: "/f"}},
	} {
		if _, err := New(Options{Notifications: ns}); err == nil {
			t.Errorf("%+v: no error", ns)
		}
	}
	if known, signs := KnownType("webhook"); !known || !signs {
		t.Error("webhook")
	}
	if known, signs := KnownType("slack"); !known || signs {
		t.Error("slack")
	}
	if strings.Join(Types(), ",") != "slack,teams,webhook" {
		t.Errorf("types: %v", Types())
	}
}
