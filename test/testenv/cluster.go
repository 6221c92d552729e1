package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// Cluster is a running Kubernetes API server that tests talk to as a cluster admin.
type Cluster struct {
	// Config authenticates as a member of system:masters.
	Config *rest.Config
	// Client is a controller-runtime client using Scheme.
	Client client.Client
	// Scheme knows client-go's types, apiextensions.k8s.io/v1 and kudod.dev/v1alpha1.
	Scheme *runtime.Scheme
	// Kubeconfig is the path of a kubeconfig file equivalent to Config, for processes a test
	// starts (kudod, kubectl).
	Kubeconfig string
	// Dir is a simulated cluster's state directory (logs/, audit.log); empty for envtest.
	Dir string

	kubectl string   // path of kubectl; empty when the binaries lack it
	env     []string // environment for kubectl
}

// Scheme returns a scheme with client-go's types, apiextensions.k8s.io/v1 and kudod.dev/v1alpha1.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("building the test scheme: %w", err)
		}
	}
	return s, nil
}

func newCluster(cfg *rest.Config, kubeconfig string) (*Cluster, error) {
	s, err := Scheme()
	if err != nil {
		return nil, err
	}
	// Tests write a lot quickly; client-go's default 5 QPS would make them slow, not safer.
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("creating a client for %s: %w", cfg.Host, err)
	}
	return &Cluster{Config: cfg, Client: c, Scheme: s, Kubeconfig: kubeconfig}, nil
}

// Namespace creates a namespace with a unique name derived from the test's, and deletes it
// when the test ends. envtest has no namespace controller: there it stays Terminating.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespaceName(t.Name())}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Client.Create(ctx, ns); err != nil {
		t.Fatalf("testenv: creating namespace %s: %v", ns.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Client.Delete(ctx, ns); client.IgnoreNotFound(err) != nil {
			t.Errorf("testenv: deleting namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

var notDNSLabel = regexp.MustCompile(`[^a-z0-9]+`)

// namespaceName turns a test name into a valid, unique namespace name: a DNS label of at most
// 63 characters ending in a random suffix.
func namespaceName(testName string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	suffix := hex.EncodeToString(b)
	base := strings.Trim(notDNSLabel.ReplaceAllString(strings.ToLower(testName), "-"), "-")
	if max := 63 - len(suffix) - 1; len(base) > max {
		base = strings.TrimRight(base[:max], "-")
	}
	if base == "" {
		return "t-" + suffix
	}
	return base + "-" + suffix
}

// Kubectl runs kubectl against the cluster and returns its combined output.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	if c.kubectl == "" {
		return "", fmt.Errorf("kubectl %s: no kubectl beside this cluster's binaries (build them with `make cluster`)", strings.Join(args, " "))
	}
	cmd := exec.CommandContext(ctx, c.kubectl, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), c.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
