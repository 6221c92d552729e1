package ui

import (
	"fmt"
	"net/http"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// UserAgent is the user agent of the UI's requests, so the API server's audit log tells
// them apart from kubectl's and the daemon's.
const UserAgent = "kudod-ui"

// ReadOnlyConfig returns a copy of cfg whose requests can only read: every request that is
// not a GET or HEAD (create, update, patch, delete, and the POSTs of SelfSubjectAccessReview
// and friends) fails before it leaves the process. Watches are GETs.
func ReadOnlyConfig(cfg *rest.Config, version string) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = UserAgent + "/" + version
	// A person is waiting on the page; client-go's default 5 requests/s would make health
	// reads of a large instance crawl.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return readOnlyTransport{next: rt} })
	return cfg
}

type readOnlyTransport struct{ next http.RoundTripper }

func (t readOnlyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("kudod ui is read-only: refusing %s %s", req.Method, req.URL.Path)
	}
	return t.next.RoundTrip(req)
}

// Scheme knows the types the UI reads: client-go's and kudod.dev/v1alpha1.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("ui: scheme: %w", err)
		}
	}
	return s, nil
}

// NewClient returns a read-only client of the cluster cfg points to.
func NewClient(cfg *rest.Config, version string) (Reader, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(ReadOnlyConfig(cfg, version), client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("ui: connect to %s: %w", cfg.Host, err)
	}
	return c, nil
}
