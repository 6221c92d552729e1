package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// APIServer returns the package's shared API server: etcd and kube-apiserver started by
// controller-runtime's envtest, with kudod's CRDs (deploy/crd) installed and a /16 Service
// range. There are no controllers: Deployments never become ready and namespaces are never
// deleted; use SimulatedCluster for that. Binaries come from KUBEBUILDER_ASSETS (`make test`
// sets it), else from `hack/build-binaries.sh control-plane`.
func APIServer(t testing.TB) *Cluster {
	t.Helper()
	return shared(t, "envtest API server", startAPIServer)
}

// NewAPIServer starts an API server like APIServer's for this test alone, and stops it when
// the test ends: figures that must not depend on what earlier tests left behind (make bench's
// scale series, docs/scaling.md) get an empty one.
func NewAPIServer(t testing.TB) *Cluster {
	t.Helper()
	return dedicated(t, "envtest API server", startAPIServer)
}

// StartAPIServer starts an API server like NewAPIServer's and returns it with a function that
// stops it before the test ends (the test's end stops it otherwise): make bench's ceiling
// runs on an API server of its own, gone before kudod's starts.
func StartAPIServer(t testing.TB) (*Cluster, func()) {
	t.Helper()
	return dedicatedStoppable(t, "envtest API server", startAPIServer)
}

// Get returns the package's shared API server, as APIServer does.
func Get(t testing.TB) *Cluster {
	t.Helper()
	return APIServer(t)
}

func startAPIServer(ctx context.Context) (*Cluster, func() error, error) {
	assets, err := controlPlaneBinaries(ctx)
	if err != nil {
		return nil, nil, err
	}
	root, err := repoRoot()
	if err != nil {
		return nil, nil, err
	}
	// envtest's own temporary directories would outlive a test binary killed by -timeout:
	// everything goes into one directory that the guard removes then.
	dir, err := os.MkdirTemp("", "kudod-envtest-")
	if err != nil {
		return nil, nil, fmt.Errorf("creating envtest's directory: %w", err)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDInstallOptions: envtest.CRDInstallOptions{
			Paths:              []string{filepath.Join(root, "deploy", "crd")},
			ErrorIfPathMissing: true,
		},
	}
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(dir, "etcd")}
	apiServer := env.ControlPlane.GetAPIServer()
	apiServer.CertDir = filepath.Join(dir, "kube-apiserver")
	// The default /24 is full after 256 ClusterIP Services.
	apiServer.Configure().Set("service-cluster-ip-range", "10.0.0.0/16")

	// Should this test binary die, the guard kills the processes whose command line names the
	// directory (etcd's --data-dir, kube-apiserver's --cert-dir) and removes it.
	g, err := guard(`dir=$1; for p in /proc/[0-9]*; do grep -qaF "$dir/" "$p/cmdline" 2>/dev/null && kill -9 "${p#/proc/}"; done; sleep 1; rm -rf "$dir"`, dir)
	if err != nil {
		return nil, nil, errors.Join(err, os.RemoveAll(dir))
	}
	stop := func() error {
		g.stop()
		return errors.Join(env.Stop(), os.RemoveAll(dir))
	}
	for _, sub := range []string{env.ControlPlane.Etcd.DataDir, apiServer.CertDir} {
		if err := os.Mkdir(sub, 0o700); err != nil {
			return nil, stop, fmt.Errorf("creating envtest's directory: %w", err)
		}
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, stop, fmt.Errorf("starting envtest with the binaries in %s: %w", assets, err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		return nil, stop, fmt.Errorf("writing %s: %w", kubeconfig, err)
	}
	c, err := newCluster(cfg, kubeconfig)
	if err != nil {
		return nil, stop, err
	}
	if kubectl := filepath.Join(assets, "kubectl"); isExecutable(kubectl) {
		c.kubectl = kubectl
		c.env = []string{"KUBECACHEDIR=" + filepath.Join(dir, "kube-cache")}
	}
	return c, stop, nil
}

// controlPlaneBinaries is the directory holding etcd and kube-apiserver: KUBEBUILDER_ASSETS when
// set (it must hold them), else what hack/build-binaries.sh builds or finds in its cache.
func controlPlaneBinaries(ctx context.Context) (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		out, err := runScript(ctx, filepath.Join(root, "hack", "build-binaries.sh"), "control-plane")
		if err != nil {
			return "", err
		}
		dir = strings.TrimSpace(out)
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if !isExecutable(filepath.Join(dir, name)) {
			return "", fmt.Errorf("no %s in %s (KUBEBUILDER_ASSETS=%q): build it with `make control-plane`", name, dir, os.Getenv("KUBEBUILDER_ASSETS"))
		}
	}
	return dir, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
