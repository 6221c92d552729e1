package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/cmd/kudod/app"
)

// kudodBinary returns the kudod binary under test: $KUDOD_BIN (`make test` and `make bench`
// build it), else one built for this run.
func kudodBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("KUDOD_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "kudod")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/kudod-dev/kudod/cmd/kudod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build kudod: %v: %s", err, out)
	}
	return bin
}

// daemonSetup is what a daemon run is configured with.
type daemonSetup struct {
	// repository and url are the first repository's (the one P2 pushes to and the webhook
	// names); repositories are all of them.
	repository   string
	url          string
	repositories []repositoryConfig
	interval     time.Duration
	kubeconfig   string
	// webhookSecret signs deliveries to POST /hooks/<repository>.
	webhookSecret []byte
	metricsAddr   string
	webhookAddr   string
	// namespace is --leader-election-namespace, the daemon's own namespace ("" is the
	// default, kudod-system): each shard has one of its own (docs/scaling.md).
	namespace string
	dir       string
}

// repositoryConfig is one entry of kudod.yaml's repositories.
type repositoryConfig struct{ name, url string }

// newSetup writes kudod.yaml, listing the repositories with the same poll interval, drift
// interval (0: kudod's default) and webhook secret, and the secret into a new directory, and
// picks free loopback ports for metrics and webhooks.
func newSetup(t testing.TB, repos []repositoryConfig, kubeconfig string, interval, drift time.Duration) *daemonSetup {
	t.Helper()
	s := &daemonSetup{repository: repos[0].name, url: repos[0].url, repositories: repos, interval: interval, kubeconfig: kubeconfig, dir: t.TempDir(),
		metricsAddr: freeAddr(t), webhookAddr: freeAddr(t)}
	random := make([]byte, 32)
	_, _ = rand.Read(random) // crypto/rand.Read never fails
	s.webhookSecret = []byte(hex.EncodeToString(random))
	secretFile := filepath.Join(s.dir, "webhook-secret")
	if err := os.WriteFile(secretFile, s.webhookSecret, 0o600); err != nil {
		t.Fatalf("writing the webhook secret: %v", err)
	}
	var cfg strings.Builder
	cfg.WriteString("repositories:\n")
	for _, r := range repos {
		fmt.Fprintf(&cfg, `  - name: %s
    url: %s
    branch: main
    interval: %s
    webhook:
      secretFile: %s
`, r.name, r.url, interval, secretFile)
		if drift > 0 {
			fmt.Fprintf(&cfg, "    driftInterval: %s\n", drift)
		}
	}
	fmt.Fprintf(&cfg, "cluster:\n  kubeconfig: %s\n", kubeconfig)
	if err := os.WriteFile(s.configFile(), []byte(cfg.String()), 0o600); err != nil {
		t.Fatalf("writing kudod.yaml: %v", err)
	}
	return s
}

func (s *daemonSetup) configFile() string { return filepath.Join(s.dir, "kudod.yaml") }

// args are `kudod run`'s arguments: the daemon's defaults (QPS, burst, concurrency) except
// that there is one replica, and every listener is on a free loopback port.
func (s *daemonSetup) args() []string {
	args := []string{"run", "--config", s.configFile(), "--leader-elect=false",
		"--metrics-bind-address", s.metricsAddr, "--health-probe-bind-address", "0",
		"--webhook-bind-address", s.webhookAddr, "--cache-dir", filepath.Join(s.dir, "cache"),
		"--log-format", "json"}
	if s.namespace != "" {
		args = append(args, "--leader-election-namespace", s.namespace)
	}
	return args
}

// freeAddr returns a loopback address with a port nothing listens on just now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// daemon is a running kudod.
type daemon interface {
	// exited is cancelled with the reason when the daemon stops on its own.
	exited() context.Context
	// stop ends the daemon and waits for it.
	stop() error
	// logTail is the end of its log, for failure messages.
	logTail() string
}

// run is what every daemon has: a log file, and an end that cancels done with its reason.
type run struct {
	logPath string
	done    context.Context
	ended   chan struct{}
	err     error
}

// launch creates the daemon's log in the setup's directory, calls start with it, and then
// waits for the daemon's end in the background; stop is called when the test ends.
func launch(t testing.TB, s *daemonSetup, start func(log io.Writer) (wait func() error, err error), stop func() error) *run {
	t.Helper()
	r := &run{logPath: filepath.Join(s.dir, "kudod.log"), ended: make(chan struct{})}
	log, err := os.Create(r.logPath)
	if err != nil {
		t.Fatalf("creating the daemon's log: %v", err)
	}
	wait, err := start(log)
	if err != nil {
		log.Close()
		t.Fatalf("starting kudod: %v", err)
	}
	done, cancel := context.WithCancelCause(context.Background())
	r.done = done
	go func() {
		r.err = wait()
		log.Close()
		cancel(fmt.Errorf("kudod exited: %v", r.err))
		close(r.ended)
	}()
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping kudod: %v", err)
		}
	})
	return r
}

func (r *run) exited() context.Context { return r.done }

func (r *run) logTail() string { return tailFile(r.logPath, 40) }

// kudodProcess is the real binary in a process of its own, measurable through /proc.
type kudodProcess struct {
	*run
	cmd *exec.Cmd
}

// startProcess starts `kudod run`.
func startProcess(t testing.TB, bin string, s *daemonSetup) *kudodProcess {
	t.Helper()
	p := &kudodProcess{cmd: exec.Command(bin, s.args()...)}
	// Should the test binary die (a -timeout, a kill), the daemon dies with it rather than
	// polling on, orphaned, through later runs' measurements.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.run = launch(t, s, func(log io.Writer) (func() error, error) {
		p.cmd.Stdout, p.cmd.Stderr = log, log
		return p.cmd.Wait, p.cmd.Start()
	}, p.stop)
	return p
}

func (p *kudodProcess) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM, and SIGKILL if the daemon has not stopped 30 seconds later.
func (p *kudodProcess) stop() error {
	select {
	case <-p.ended:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.ended:
		// kudod handles SIGTERM: it stops its controllers and exits 0.
		if p.err != nil {
			return fmt.Errorf("after SIGTERM: %w\n%s", p.err, p.logTail())
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.ended
		return errors.New("kudod did not stop within 30s of SIGTERM; killed")
	}
}

// daemonLabel is the pprof label of the in-process daemon's goroutines.
const daemonLabel = "kudod"

// inProcessDaemon runs `kudod run` inside the test binary, so that runtime/pprof profiles it.
// Its CPU and memory cannot be told from the harness's: the figures come from kudodProcess.
type inProcessDaemon struct {
	*run
	cancel context.CancelFunc
}

func startInProcess(t testing.TB, s *daemonSetup) *inProcessDaemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &inProcessDaemon{cancel: cancel}
	d.run = launch(t, s, func(log io.Writer) (func() error, error) {
		return func() error {
			var code int
			// Every goroutine of the daemon inherits the label: CPU profiles tell its samples
			// from the harness's (go tool pprof -tagfocus=kudod=daemon).
			pprof.Do(ctx, pprof.Labels(daemonLabel, "daemon"), func(ctx context.Context) {
				code = app.Execute(ctx, s.args(), io.Discard, log)
			})
			if code != 0 {
				return fmt.Errorf("kudod run returned exit code %d", code)
			}
			return nil
		}, nil
	}, d.stop)
	return d
}

func (d *inProcessDaemon) stop() error {
	d.cancel()
	select {
	case <-d.ended:
		return d.err
	case <-time.After(30 * time.Second):
		return errors.New("kudod did not stop within 30s")
	}
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
