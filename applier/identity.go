package applier

import (
	"fmt"
	"sync"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/lru"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// Tenant is whose rights an instance's plans use and where they may write (docs/security.md).
type Tenant struct {
	// User is impersonated by every request of the plans (reads, dry-runs, applies, deletes,
	// health waits, prunes, Pipe pods and their exec), e.g.
	// system:serviceaccount:team-a:deployer; empty keeps the engine's own identity.
	User string
	// AllowClusterScoped lets the plans write cluster-scoped objects.
	AllowClusterScoped bool
	// StrictNamespaces refuses a namespaced object that a template puts in another namespace
	// than the instance's, instead of moving it into the instance's namespace as KUDO does:
	// the repository has a lane (docs/security.md).
	StrictNamespaces bool
}

// For returns an engine that runs plans as t says. It shares this engine's write slots,
// discovery and options; the clients of an impersonated user are built once and kept (up to
// maxIdentities of them), so running a plan as a service account costs no new connection.
func (e *Engine) For(t Tenant) (*Engine, error) {
	c := *e
	c.opts.AllowClusterScoped = t.AllowClusterScoped
	c.strictNamespaces = t.StrictNamespaces
	if t.User == "" || t.User == e.user {
		return &c, nil
	}
	if e.impersonation == nil {
		return nil, fatal(fmt.Errorf("the plan runs as %s, and this kudod cannot impersonate", t.User))
	}
	id, err := e.impersonation.get(t.User, e.opts.Concurrency)
	if err != nil {
		return nil, err
	}
	c.client, c.resources, c.exec, c.user = id.client, id.resources, id.exec, t.User
	return &c, nil
}

// User is the user the engine's requests impersonate; empty: the daemon's own identity.
func (e *Engine) User() string { return e.user }

// Reader reads the cluster as the engine's user: what a plan reads besides its objects (the
// Secrets and ConfigMaps of an instance's parametersFrom) is read with the plan's rights.
func (e *Engine) Reader() client.Reader { return e.client }

// maxIdentities bounds the impersonated identities kept: the least recently used go first.
const maxIdentities = 512

// Impersonation builds the clients of impersonated users from the daemon's connection.
type Impersonation struct {
	config *rest.Config
	scheme *runtime.Scheme
	mapper meta.RESTMapper
	// limiter is shared by every impersonated client: together they send no more than the
	// daemon's --kube-api-qps and --kube-api-burst allow one client.
	limiter flowcontrol.RateLimiter

	mu    sync.Mutex
	cache *lru.Cache
}

type identity struct {
	client    client.Client
	resources *ssa.ResourceManager
	exec      PodExecutor
}

// NewImpersonation returns an Impersonation that builds clients from cfg (the daemon's own
// connection), with scheme and the daemon's RESTMapper, so that no identity repeats discovery.
// client-go shares TLS transports between configurations that differ only in whom they
// impersonate, so every identity uses the daemon's connections.
func NewImpersonation(cfg *rest.Config, scheme *runtime.Scheme, mapper meta.RESTMapper) *Impersonation {
	qps, burst := cfg.QPS, cfg.Burst
	if qps <= 0 {
		qps, burst = rest.DefaultQPS, rest.DefaultBurst
	}
	return &Impersonation{config: cfg, scheme: scheme, mapper: mapper, limiter: flowcontrol.NewTokenBucketRateLimiter(qps, burst), cache: lru.New(maxIdentities)}
}

func (im *Impersonation) get(user string, concurrency int) (*identity, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if v, ok := im.cache.Get(user); ok {
		return v.(*identity), nil
	}
	cfg := rest.CopyConfig(im.config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	cfg.RateLimiter = im.limiter
	c, err := client.New(cfg, client.Options{Scheme: im.scheme, Mapper: im.mapper})
	if err != nil {
		return nil, fmt.Errorf("a client impersonating %s: %w", user, err)
	}
	exec, err := NewPodExecutor(cfg)
	if err != nil {
		return nil, err
	}
	resources := ssa.NewResourceManager(c, polling.NewStatusPoller(c, im.mapper, polling.Options{}), ssa.Owner{Field: v1alpha1.FieldManager, Group: v1alpha1.GroupVersion.Group})
	resources.SetConcurrency(concurrency)
	id := &identity{client: c, resources: resources, exec: exec}
	im.cache.Add(user, id)
	return id, nil
}
