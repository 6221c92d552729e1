package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// kudodBinary returns the kudod binary under test: $KUDOD_BIN (make test builds it), else one
// built for this test run.
func kudodBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("KUDOD_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kudod-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "kudod")
		out, err := exec.Command("go", "build", "-o", builtBin, "../../cmd/kudod").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// push pushes main to the copy a gitServer serves.
func push(r *testenv.GitRepo) { r.Git("push", "-q", "-f", "served", "main") }

// kudod is a running daemon process.
type kudod struct {
	t      testing.TB
	bin    string
	args   []string
	log    *os.File
	cmd    *exec.Cmd
	exited chan struct{}
	killed bool
}

// daemons are the kudod processes of each test, so waits can fail fast when one dies.
var daemons sync.Map // *testing.T → *kudod

// checkDaemon fails the test if its daemon exited without being told to.
func checkDaemon(t testing.TB) {
	t.Helper()
	v, ok := daemons.Load(t)
	if !ok {
		return
	}
	k := v.(*kudod)
	if !k.killed && !k.running() {
		t.Fatalf("kudod exited unexpectedly:\n%s", tail(k.logs(), 40))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// daemonConfig writes a kudod.yaml following one repository, named after the test so that
// daemons of different tests never see each other's Instances.
func daemonConfig(t testing.TB, kubeconfig, url, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kudod.yaml")
	cfg := fmt.Sprintf("repositories:\n  - name: %s\n    url: %s\n    branch: main\n    interval: 1s\n%scluster:\n  kubeconfig: %s\n", repoName(t), url, extra, kubeconfig)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// repoName is the test's repository name: a DNS label.
func repoName(t testing.TB) string {
	n := strings.ToLower(t.Name())
	n = strings.NewReplacer("/", "-", "_", "-").Replace(n)
	if len(n) > 40 {
		n = n[:40]
	}
	return strings.Trim(n, "-")
}

// startKudod runs kudod with a configuration until the test ends.
func startKudod(t testing.TB, config string, args ...string) *kudod {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "kudod.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	k := &kudod{t: t, bin: kudodBinary(t), log: log,
		args: append([]string{"run", "--config", config, "--leader-elect=false", "--metrics-bind-address=0", "--health-probe-bind-address=0", "--webhook-bind-address=0", "--log-format=text", "--cache-dir", t.TempDir()}, args...)}
	k.start()
	daemons.Store(t, k)
	t.Cleanup(func() {
		daemons.Delete(t)
		k.stop()
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			lines := strings.Split(string(data), "\n")
			if len(lines) > 80 {
				lines = lines[len(lines)-80:]
			}
			t.Logf("kudod log (last lines):\n%s", strings.Join(lines, "\n"))
		}
	})
	return k
}

func (k *kudod) start() {
	k.t.Helper()
	k.killed = false
	k.cmd = exec.Command(k.bin, k.args...)
	k.cmd.Stdout, k.cmd.Stderr = k.log, k.log
	if err := k.cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	k.exited = make(chan struct{})
	cmd, exited := k.cmd, k.exited
	go func() { _ = cmd.Wait(); close(exited) }()
}

// kill ends the daemon with SIGKILL: nothing it has not persisted survives.
func (k *kudod) kill() {
	k.killed = true
	_ = k.cmd.Process.Signal(syscall.SIGKILL)
	<-k.exited
}

func (k *kudod) stop() {
	select {
	case <-k.exited:
		return
	default:
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(20 * time.Second):
		k.kill()
	}
}

// running reports whether the process is still alive.
func (k *kudod) running() bool {
	select {
	case <-k.exited:
		return false
	default:
		return true
	}
}

// logs returns what the daemon logged so far.
func (k *kudod) logs() string {
	data, _ := os.ReadFile(k.log.Name())
	return string(data)
}

func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		checkDaemon(t)
		ok, why := cond()
		if ok {
			return
		}
		last = why
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}

// consistently fails the test if cond stops holding within d.
func consistently(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok, why := cond(); !ok {
			t.Fatalf("%s: no longer holds: %s", what, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getInstance(c *testenv.Cluster, ns, name string) *v1alpha1.Instance {
	in := &v1alpha1.Instance{}
	if err := c.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, in); err != nil {
		return nil
	}
	return in
}

// waitPlan waits until an Instance's last plan is plan with status want (for revision, if not empty).
func waitPlan(t testing.TB, c *testenv.Cluster, ns, name, plan string, want v1alpha1.ExecutionStatus, revision string, timeout time.Duration) *v1alpha1.Instance {
	t.Helper()
	var got *v1alpha1.Instance
	eventually(t, timeout, fmt.Sprintf("plan %s of %s/%s to be %s", plan, ns, name, want), func() (bool, string) {
		got = getInstance(c, ns, name)
		if got == nil {
			return false, "no instance"
		}
		lp := got.Status.LastPlan
		if lp == nil {
			return false, "no plan yet"
		}
		ok := lp.Name == plan && lp.Status == want && (revision == "" || lp.Revision == revision)
		return ok, fmt.Sprintf("%s %s at %.7s: %s", lp.Name, lp.Status, lp.Revision, lp.Message)
	})
	return got
}

func instanceFile(ns, name, operator, version, params string) string {
	doc := fmt.Sprintf("apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  operator:\n    name: %s\n", name, ns, operator)
	if version != "" {
		doc += "    version: " + version + "\n"
	}
	if params != "" {
		doc += "  parameters:\n" + params
	}
	return doc
}

// run runs the kudod CLI and returns stdout, stderr and the exit code.
func runCLI(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(kudodBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

type metav1ObjectMeta = metav1.ObjectMeta

func readFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	return string(data), err
}

// writeFile writes a new kudod.yaml and returns its path.
func writeFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kudod.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
