// Package testenv starts the real servers kudod's tests run against — a kube-apiserver
// (controller-runtime's envtest), a simulated cluster in which workloads become ready
// (hack/local-cluster.sh) and a Gitea (hack/gitea.sh) — once per test package, and stops them
// when the package's tests end.
//
// A package that uses it runs its tests through Main:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// and its tests ask for what they need: testenv.APIServer(t), testenv.SimulatedCluster(t),
// testenv.Gitea(t). Tests share these servers, so each test works in namespaces and repositories
// of its own (Cluster.Namespace, Gitea.CreateRepo). In `go test -short` every such test is
// skipped; otherwise a server that cannot start fails the test: `make test` builds the
// binaries first.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// registry holds what the tests of one package share. It is the package's only state: Main
// has to stop what tests started, and testing.M offers no other way to reach them.
var registry = &environments{started: map[string]*sharedEnv{}}

type environments struct {
	mu      sync.Mutex
	running bool // Main is running the tests
	started map[string]*sharedEnv
	stops   []func() error
}

type sharedEnv struct {
	once  sync.Once
	value any
	err   error
}

// Main runs a package's tests and then stops every shared server they started. Call it from
// TestMain: os.Exit(testenv.Main(m)).
func Main(m *testing.M) int {
	registry.mu.Lock()
	registry.running = true
	registry.mu.Unlock()

	code := m.Run()

	registry.mu.Lock()
	stops := registry.stops
	registry.stops, registry.running = nil, false
	registry.mu.Unlock()
	var errs []error
	for i := len(stops) - 1; i >= 0; i-- {
		errs = append(errs, stops[i]())
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: stopping shared servers: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// starter starts a server. It returns the function that stops it even when it fails halfway.
type starter[T any] func(ctx context.Context) (T, func() error, error)

// shared returns the package's one server named key, starting it on first use. Servers take
// a while to start, so every test of the package shares the first start's result, error included.
func shared[T any](t testing.TB, key string, start starter[T]) T {
	t.Helper()
	skipInShortMode(t)
	registry.mu.Lock()
	if !registry.running {
		registry.mu.Unlock()
		t.Fatalf("testenv: %s: the package's TestMain must run its tests with os.Exit(testenv.Main(m)), which stops shared servers", key)
	}
	e := registry.started[key]
	if e == nil {
		e = &sharedEnv{}
		registry.started[key] = e
	}
	registry.mu.Unlock()

	e.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		var stop func() error
		e.value, stop, e.err = start(ctx)
		if stop != nil {
			registry.mu.Lock()
			registry.stops = append(registry.stops, stop)
			registry.mu.Unlock()
		}
	})
	if e.err != nil {
		t.Fatalf("testenv: %s: %v", key, e.err)
	}
	return e.value.(T)
}

// dedicated starts a server for one test and stops it when the test ends.
func dedicated[T any](t testing.TB, what string, start starter[T]) T {
	t.Helper()
	v, _ := dedicatedStoppable(t, what, start)
	return v
}

// dedicatedStoppable starts a server for one test and returns it with a function that stops
// it, which the test's end calls too (once in all).
func dedicatedStoppable[T any](t testing.TB, what string, start starter[T]) (T, func()) {
	t.Helper()
	skipInShortMode(t)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	v, stop, err := start(ctx)
	var once sync.Once
	stopOnce := func() {
		once.Do(func() {
			if stop == nil {
				return
			}
			if err := stop(); err != nil {
				t.Errorf("testenv: stopping %s: %v", what, err)
			}
		})
	}
	t.Cleanup(stopOnce)
	if err != nil {
		t.Fatalf("testenv: %s: %v", what, err)
	}
	return v, stopOnce
}

// startTimeout bounds a start, including building missing binaries from the module proxy
// (Kubernetes takes minutes when Go's build cache is cold).
const startTimeout = 20 * time.Minute

func skipInShortMode(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("testenv: needs real servers, skipped in -short mode")
	}
}

// repoRoot is the directory of kudod's go.mod, found by walking up from the working directory
// (a package's directory under `go test`).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// upScript runs `hack/SCRIPT up DIR` in a new temporary directory and returns the directory
// and the function that runs `hack/SCRIPT down DIR` and removes it, which a guard also runs
// should this test binary die first.
func upScript(ctx context.Context, script string) (string, func() error, error) {
	root, err := repoRoot()
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(root, "hack", script)
	dir, err := os.MkdirTemp("", "kudod-"+strings.TrimSuffix(script, ".sh")+"-")
	if err != nil {
		return "", nil, fmt.Errorf("creating the directory for hack/%s: %w", script, err)
	}
	// Before `up`: a test binary killed while `up` builds or starts leaves nothing behind either.
	g, err := guard(`"$1" down "$2" >/dev/null 2>&1; rm -rf "$2"`, path, dir)
	if err != nil {
		return "", nil, errors.Join(err, os.RemoveAll(dir))
	}
	stop := func() error {
		g.stop()
		// Not ctx: it ends with the start.
		if _, err := runScript(context.Background(), path, "down", dir); err != nil {
			return err
		}
		return os.RemoveAll(dir)
	}
	if _, err := runScript(ctx, path, "up", dir); err != nil {
		return "", stop, err
	}
	return dir, stop, nil
}

// runScript runs a script and returns its standard output. A failure carries the script's
// standard error, where the hack/ scripts explain what went wrong.
func runScript(ctx context.Context, path string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", path, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// readEnvFile reads the KEY=VALUE lines the hack/ scripts write.
func readEnvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	vars := map[string]string{}
	for line := range strings.Lines(string(data)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok {
			vars[k] = v
		}
	}
	return vars, nil
}
