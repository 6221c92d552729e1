package e2e

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/notify"
	"github.com/kudod-dev/kudod/test/testenv"
)

// receiver is a local HTTP endpoint that records the notifications it gets.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
}

type received struct {
	at        time.Time
	body      []byte
	signature string
	event     notify.Event
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rec := received{at: time.Now(), body: body, signature: req.Header.Get(notify.HeaderSignature)}
		_ = json.Unmarshal(body, &rec.event)
		r.mu.Lock()
		r.got = append(r.got, rec)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// find returns the first notification that matches.
func (r *receiver) find(match func(notify.Event) bool) (received, bool) {
	for _, n := range r.all() {
		if match(n.event) {
			return n, true
		}
	}
	return received{}, false
}

// TestNotificationsOfAFailedScheduledPlanAndItsRetry: a webhook notification gets a signed
// JSON notification within 5 s of a scheduled backup failing (a ResourceQuota refuses its
// Job), and one when `kudod retry` completes it; plans from git are filtered out. A second
// notification whose receiver is down delays neither the first nor the plans.
func TestNotificationsOfAFailedScheduledPlanAndItsRetry(t *testing.T) {
	ctx := context.Background()
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("database", "1.0.0")
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	up := newReceiver(t)
	dir := t.TempDir()
	key, urlFile := filepath.Join(dir, "hmac"), filepath.Join(dir, "down-url")
	if err := os.WriteFile(key, []byte("a-key-for-this-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(urlFile, []byte("http://"+freeAddr(t)+"/nobody-listens\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, fmt.Sprintf(`repositories:
  - name: %s
    url: file://%s
    branch: main
    interval: 1s
notifications:
  - name: ops
    type: webhook
    url: %s/hooks/kudod
    secretFile: %s
    outcomes: [failed, completed]
    triggers: [schedule, retry]
  - name: down
    type: webhook
    urlFile: %s
cluster:
  kubeconfig: %s
`, repoName(t), repo.Dir, up.srv.URL, key, urlFile, c.Kubeconfig))
	db := instanceFile(ns, "db", "database", "", "") + `  schedules:
    - name: nightly
      plan: backup
      cron: "* * * * *"
      startingDeadlineSeconds: 30
      parameters:
        BACKUP_NAME: 'nightly-{{ .ScheduledTime | date "0102-1504" }}'
`
	rev := repo.Commit("database with a scheduled backup", map[string]string{"instances/db.yaml": db})
	startKudod(t, cfg)
	waitPlan(t, c, ns, "db", "deploy", v1alpha1.StatusComplete, rev, 3*time.Minute)
	if err := c.Client.Create(ctx, noJobsQuota(ns)); err != nil {
		t.Fatal(err)
	}

	// The next scheduled backup fails: its Job is refused.
	var failed v1alpha1.HistoryEntry
	eventually(t, 2*time.Minute, "a scheduled backup to fail", func() (bool, string) {
		in := getInstance(c, ns, "db")
		for _, e := range in.Status.History {
			if e.Plan == "backup" && e.Trigger == v1alpha1.TriggerSchedule && e.Outcome == v1alpha1.OutcomeFailed {
				failed = e
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d entries", len(in.Status.History))
	})
	var n received
	eventually(t, 5*time.Second, "the notification of the failed backup", func() (bool, string) {
		var ok bool
		n, ok = up.find(func(e notify.Event) bool { return e.UID == failed.UID })
		return ok, fmt.Sprintf("%d notifications", len(up.all()))
	})
	if d := n.at.Sub(failed.FinishTime.Time); d > 5*time.Second {
		t.Errorf("the notification came %s after the plan ended", d)
	}
	if want := notify.Sign([]byte("a-key-for-this-test"), n.body); !hmac.Equal([]byte(n.signature), []byte(want)) {
		t.Errorf("signature %q, want %q", n.signature, want)
	}
	e := n.event
	if e.Kind != "PlanEnded" || e.Outcome != "failed" || e.Status != "FATAL_ERROR" || e.Trigger != "schedule" || e.Schedule != "nightly" ||
		e.Instance.Namespace != ns || e.Instance.Name != "db" || e.Operator.Name != "database" || e.FailedStep != "backup/backup" ||
		e.Parameters["BACKUP_NAME"] != failed.Parameters["BACKUP_NAME"] || e.Repository != repoName(t) {
		t.Errorf("the failure's notification: %s", n.body)
	}

	// The cause goes; the retry completes the backup and is notified too.
	if err := c.Client.Delete(ctx, noJobsQuota(ns)); err != nil {
		t.Fatal(err)
	}
	asked := time.Now()
	if out, errOut, code := runCLI(t, "retry", "db", "-n", ns, "--kubeconfig", c.Kubeconfig); code != 0 {
		t.Fatalf("kudod retry: exit %d: %s%s", code, out, errOut)
	}
	eventually(t, 30*time.Second, "the notification of the retry", func() (bool, string) {
		var ok bool
		n, ok = up.find(func(e notify.Event) bool { return e.Trigger == "retry" })
		return ok, fmt.Sprintf("%d notifications", len(up.all()))
	})
	e = n.event
	if e.Outcome != "completed" || e.RetryOf != failed.UID || e.Plan != "backup" || e.User == "" || e.Parameters["BACKUP_NAME"] != failed.Parameters["BACKUP_NAME"] {
		t.Errorf("the retry's notification: %s", n.body)
	}
	if took := n.at.Sub(asked); took > 20*time.Second {
		t.Errorf("retry → notification took %s: the receiver that is down delayed it", took)
	}
	for _, got := range up.all() {
		if got.event.Trigger == "git" {
			t.Errorf("a plan from git was notified despite the filter: %s", got.body)
		}
	}
}
