package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/decrypt/decrypttest"
	"github.com/kudod-dev/kudod/test/testenv"
)

// vaultInstance is an instance file of the vault-db fixture: ROOT_CODE (`sensitive: true`,
// triggering the rotate plan) taken from the Secret db-creds, or given in params.
func vaultInstance(ns, name, params string, fromSecret bool) string {
	doc := instanceFile(ns, name, "vault-db", "", params)
	if fromSecret {
		doc += "  parametersFrom:\n    - {kind: Secret, name: db-creds, key: password, parameter: ROOT_CODE}\n"
	}
	return doc
}

func randomPassword(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

func setSecret(t testing.TB, c *testenv.Cluster, ns, name string, data map[string]string) {
	t.Helper()
	ctx := context.Background()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
	if err := c.Client.Create(ctx, s); err == nil {
		return
	}
	existing := &corev1.Secret{}
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, existing); err != nil {
		t.Fatal(err)
	}
	existing.Data, existing.StringData = nil, data
	if err := c.Client.Update(ctx, existing); err != nil {
		t.Fatal(err)
	}
}

func secretValue(t testing.TB, c *testenv.Cluster, ns, name, key string) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		return ""
	}
	return string(s.Data[key])
}

// leaks reports where, among named texts, a secret shows: as itself, base64-encoded or as its
// SHA-256.
func leaks(texts map[string]string, secrets ...string) []string {
	var out []string
	for _, s := range secrets {
		sum := sha256.Sum256([]byte(s))
		forms := []string{s, base64.StdEncoding.EncodeToString([]byte(s)), hex.EncodeToString(sum[:])}
		for where, text := range texts {
			for _, f := range forms {
				if strings.Contains(text, f) {
					out = append(out, where+" shows "+f)
				}
			}
		}
	}
	return out
}

// TestPasswordFromASecret: an instance takes its password from a Secret (parametersFrom).
// While the Secret is missing the commit status fails naming it and nothing is written; once
// it exists the deploy plan runs; a new value in the Secret runs the password's trigger plan
// (rotate) with the reason "Secret db-creds changed", and a value the template's `fail`
// rejects fails it with the message masked. No password shows anywhere: the Instance, the
// events, the daemon's log at debug level, `kudod plan -o json`, `kudod status -o json`, the
// Gitea commit statuses and the pull-request preview comment.
func TestPasswordFromASecret(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	s := newGiteaSetup(t, c)
	first, second := randomPassword(t, "first"), randomPassword(t, "second")
	files := testenv.FixtureOperatorFiles(t, "vault-db", "1.0.0")
	files["instances/db.yaml"] = vaultInstance(s.ns, "db", "    NOTE: one\n", true)
	main := s.push(t, "vault-db, its password in a Secret", files)
	k := startKudod(t, s.config(t, c.Kubeconfig, "    interval: 1s\n    previews: {refs: [\"refs/pull/*/head\"]}\n"), "--log-level=debug")
	ctx := s.ns + "/db"

	// No Secret yet: a failure naming it, nothing written.
	s.waitStatus(t, main, "kudod/"+ctx, "failure", "Secret db-creds not found", time.Minute)
	if got := secretValue(t, c, s.ns, "db-db", "password"); got != "" {
		t.Fatal("the plan wrote although the Secret was missing")
	}

	// The Secret appears: the deploy plan runs with its value.
	setSecret(t, c, s.ns, "db-creds", map[string]string{"password": first})
	waitPlan(t, c, s.ns, "db", "deploy", v1alpha1.StatusComplete, main, 2*time.Minute)
	if got := secretValue(t, c, s.ns, "db-db", "password"); got != first {
		t.Fatalf("db-db holds %q, not the Secret's password", got)
	}

	// A new value in the Secret runs rotate, the trigger plan of ROOT_CODE.
	setSecret(t, c, s.ns, "db-creds", map[string]string{"password": second})
	inst := waitPlan(t, c, s.ns, "db", "rotate", v1alpha1.StatusComplete, "", time.Minute)
	if ps := inst.Status.Plan("rotate"); ps == nil || strings.Join(ps.Reasons, "; ") != "Secret db-creds changed" {
		t.Errorf("rotate's reasons: %+v", ps)
	}
	if got := secretValue(t, c, s.ns, "db-db", "password"); got != second {
		t.Fatalf("after rotate db-db holds %q", got)
	}
	if got := getInstance(c, s.ns, "db"); got.Status.LastPlan.Name != "rotate" {
		t.Errorf("a plan ran after rotate: %s", got.Status.LastPlan.Name)
	}

	// A pull request changing the user: the preview diffs db-db by key and hash.
	prFiles := map[string]string{"instances/db.yaml": vaultInstance(s.ns, "db", "    NOTE: one\n    DB_USER: alice\n", true)}
	pr := openPR(t, s, prFiles)
	head := s.repo.Refs(t)["refs/pull/1/head"]
	s.waitStatus(t, head, "kudod/preview", "success", "1 instance: 1 update", time.Minute)
	body := waitComment(t, s, pr, head[:7])
	for _, want := range []string{"Secret/" + s.ns + "/db-db` configured", "password: <sensitive hash:", "parameter DB_USER set: alice"} {
		if !strings.Contains(body, want) {
			t.Errorf("the comment lacks %q:\n%s", want, body)
		}
	}

	// A template's fail message quotes the value: the plan fails, the message does not show it.
	weak := randomPassword(t, "weak")
	setSecret(t, c, s.ns, "db-creds", map[string]string{"password": weak})
	inst = waitPlan(t, c, s.ns, "db", "rotate", v1alpha1.StatusFatalError, "", time.Minute)
	if msg := inst.Status.LastPlan.Message; !strings.Contains(msg, "the root password <sensitive> is too weak") {
		t.Errorf("the failed plan's message: %q", msg)
	}
	s.waitStatus(t, main, "kudod/"+ctx, "failure", "rotate FATAL_ERROR", time.Minute)

	// Everything anyone can read.
	texts := map[string]string{"the daemon's log": k.logs(), "the preview comment": body}
	instJSON, err := json.Marshal(getInstance(c, s.ns, "db"))
	if err != nil {
		t.Fatal(err)
	}
	texts["the Instance"] = string(instJSON)
	var events corev1.EventList
	if err := c.Client.List(context.Background(), &events, client.InNamespace(s.ns)); err != nil {
		t.Fatal(err)
	}
	eventsJSON, _ := json.Marshal(events)
	texts["the events"] = string(eventsJSON)
	for _, sha := range []string{main, head} {
		st, _ := json.Marshal(s.repo.CombinedStatus(t, sha))
		texts["the statuses of "+sha[:7]] = string(st)
	}
	status, _, code := runCLI(t, "status", "--kubeconfig", c.Kubeconfig, "-n", s.ns, "-o", "json")
	if code != 0 || !strings.Contains(status, `"rotate"`) {
		t.Errorf("kudod status -o json (exit %d): %s", code, status)
	}
	texts["kudod status -o json"] = status
	local := localCopy(t, files, prFiles)
	plan, _, _ := runCLI(t, "plan", "--repo", local.dir, "--from", local.commits[0], "--to", local.commits[1], "-o", "json")
	if !strings.Contains(plan, "parameter DB_USER set: alice") {
		t.Errorf("kudod plan -o json: %s", plan)
	}
	texts["kudod plan -o json"] = plan
	if found := leaks(texts, first, second, weak); len(found) > 0 {
		t.Errorf("a password leaks: %s", strings.Join(found, "; "))
	}
	if !strings.Contains(k.logs(), `level=DEBUG`) {
		t.Error("the daemon did not log at debug level")
	}
}

// localRepo is a local git repository with commits of the same trees as pushed to Gitea, for
// `kudod plan`.
type localRepo struct {
	dir     string
	commits []string
}

// localCopy commits each set of files in turn (the later on top of the earlier) to a new
// local repository.
func localCopy(t *testing.T, trees ...map[string]string) localRepo {
	t.Helper()
	r := testenv.NewGitRepo(t)
	var out localRepo
	for i, files := range trees {
		out.commits = append(out.commits, r.Commit("commit "+string(rune('a'+i)), files))
	}
	out.dir = r.Dir
	return out
}

// TestSOPSEncryptedInstance: an instance file encrypted with SOPS for an age key deploys once
// the key is in the Secret kudod.yaml names; before that the commit's status is failure with
// "cannot decrypt ... no age key", and nothing is written. The decrypted password shows
// nowhere but in the object the package renders; `kudod plan` reads the file with the key and
// says "encrypted, key not available" without it.
func TestSOPSEncryptedInstance(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	s := newGiteaSetup(t, c)
	identity, recipient, err := decrypttest.Key()
	if err != nil {
		t.Fatal(err)
	}
	password := randomPassword(t, "sops")
	// Every value of a wholly encrypted file is sensitive, NOTE too: masked wherever it shows.
	note := randomPassword(t, "note")
	plain := vaultInstance(s.ns, "db", "    ROOT_CODE: "+password+"\n    NOTE: "+note+"\n", false)
	enc, err := decrypttest.Encrypt([]byte(plain), recipient, "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(enc), password) {
		t.Fatal("the encrypted file holds the password")
	}
	files := testenv.FixtureOperatorFiles(t, "vault-db", "1.0.0")
	files["instances/db.yaml"] = string(enc)
	main := s.push(t, "an encrypted instance", files)
	keyNS := s.ns // any namespace: the daemon reads the key Secret directly
	k := startKudod(t, s.config(t, c.Kubeconfig, "    interval: 1s\n    decryption: {provider: sops, secretRef: {name: sops-age, namespace: "+keyNS+"}}\n"), "--log-level=debug")

	// No key yet.
	s.waitStatus(t, main, "kudod", "failure", "instances/db.yaml: cannot decrypt: no age key", time.Minute)
	consistently(t, 2*time.Second, "nothing written without the key", func() (bool, string) {
		return getInstance(c, s.ns, "db") == nil, "an Instance exists"
	})

	// The key arrives: the same commit deploys.
	setSecret(t, c, keyNS, "sops-age", map[string]string{"age.agekey": identity + "\n"})
	waitPlan(t, c, s.ns, "db", "deploy", v1alpha1.StatusComplete, main, 2*time.Minute)
	s.waitStatus(t, main, "kudod/"+s.ns+"/db", "success", "deploy plan COMPLETE", time.Minute)
	if got := secretValue(t, c, s.ns, "db-db", "password"); got != password {
		t.Fatalf("db-db holds %q, not the decrypted password", got)
	}

	// kudod plan, with the key and without.
	local := localCopy(t, files)
	keyFile := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keyFile, []byte(identity+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	without, _, code := runCLI(t, "plan", "--repo", local.dir, "--to", local.commits[0])
	if code != 0 || !strings.Contains(without, "instances/db.yaml: encrypted, key not available") {
		t.Errorf("kudod plan without a key (exit %d): %s", code, without)
	}
	with, _, code := runCLI(t, "plan", "--repo", local.dir, "--to", local.commits[0], "--age-key-file", keyFile, "-o", "json")
	if code != 1 || !strings.Contains(with, `"action": "deploy"`) {
		t.Errorf("kudod plan with the key (exit %d): %s", code, with)
	}

	instJSON, _ := json.Marshal(getInstance(c, s.ns, "db"))
	st, _ := json.Marshal(s.repo.CombinedStatus(t, main))
	texts := map[string]string{"the Instance": string(instJSON), "the statuses": string(st), "the daemon's log": k.logs(), "kudod plan": without + with}
	if found := leaks(texts, password, note); len(found) > 0 {
		t.Errorf("a decrypted value leaks: %s", strings.Join(found, "; "))
	}
	if !strings.Contains(string(instJSON), `"ROOT_CODE":"\u003csensitive sha256:`) {
		t.Errorf("the Instance does not hold the password's digest: %s", instJSON)
	}
}
