package testenv

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// RestartAPIServer stops the simulated cluster's kube-apiserver (SIGTERM) and starts it again
// with the same flags and etcd, and waits until it is ready (hack/local-cluster.sh
// restart-apiserver); it returns how long the API server was away. Everything talking to the
// cluster, the other tests of the package included, sees it gone meanwhile: a test that
// restarts the shared cluster must not run in parallel with others.
func (c *Cluster) RestartAPIServer(t testing.TB) time.Duration {
	t.Helper()
	if c.Dir == "" {
		t.Fatal("testenv: only a simulated cluster can restart its API server")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := runScript(ctx, filepath.Join(root, "hack", "local-cluster.sh"), "restart-apiserver", c.Dir); err != nil {
		t.Fatalf("testenv: restarting the API server: %v", err)
	}
	return time.Since(start)
}
