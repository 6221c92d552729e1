// Package daemon wires the long-running kudod together: a controller-runtime manager with, per
// repository, a poll loop (internal/poll) that plans each commit against the cluster
// (internal/desired) and applies Instances; the Instance controller (internal/instances) that
// runs their plans; the preview queue (internal/preview) fed after each poll; commit statuses
// (internal/forge); the webhook receiver and `kudod reconcile` requests. It adds no logic of
// their kind.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/deploy"
	"github.com/kudod-dev/kudod/internal/decrypt"
	"github.com/kudod-dev/kudod/internal/desired"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/internal/instances"
	"github.com/kudod-dev/kudod/internal/lanes"
	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/internal/metrics"
	"github.com/kudod-dev/kudod/internal/parameters"
	"github.com/kudod-dev/kudod/internal/poll"
	"github.com/kudod-dev/kudod/internal/preview"
	"github.com/kudod-dev/kudod/internal/store"
	"github.com/kudod-dev/kudod/manifests"
)

// Options configure the daemon (docs/configuration.md: kudod.yaml and the flags of `kudod
// run`).
type Options struct {
	// Config reaches the cluster.
	Config *rest.Config
	// Repositories to follow.
	Repositories []Repository
	// MetricsAddr serves Prometheus metrics ("0" disables).
	MetricsAddr string
	// ProbeAddr serves /healthz and /readyz ("0" disables).
	ProbeAddr string
	// PprofAddr serves Go's /debug/pprof ("" or "0" disables).
	PprofAddr string
	// LeaderElection makes one of several replicas active.
	LeaderElection bool
	// LeaderElectionNamespace is the daemon's namespace: it holds the lease and the
	// repositories' status; created if missing.
	LeaderElectionNamespace string
	// LeaderElectionID names the lease.
	LeaderElectionID string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election (client-go's defaults
	// when zero: 15s, 10s, 2s): a standby takes over at most LeaseDuration after the leader died.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// InstallCRDs installs or updates the Instance CRD at start.
	InstallCRDs bool
	// StepTimeout bounds each step (default 10m).
	StepTimeout time.Duration
	// Concurrent is the number of Instance reconciles at once (default 4).
	Concurrent int
	// AllowClusterScoped lets packages create cluster-scoped objects (repositories without a
	// Lane of their own).
	AllowClusterScoped bool
	// DefaultServiceAccount is impersonated, in each instance's namespace, by the plans of
	// instances that name no service account and whose repository names none
	// (--default-service-account; docs/security.md).
	DefaultServiceAccount string
	// PreviewUser is the user previews impersonate (--preview-user); empty: the daemon itself.
	// Previews send only reads and dryRun=All requests either way.
	PreviewUser string
	// RenderTimeout bounds each package render: a plan's templates, or a package's
	// verification (default manifests.DefaultRenderTimeout; docs/design.md, Limits).
	RenderTimeout time.Duration
	// MaxInstanceFileSize bounds each YAML file under a repository's path (default
	// manifests.DefaultMaxInstanceFileSize).
	MaxInstanceFileSize int64
	// Reporter posts commit statuses (nil: the log only). A reporter with a Start method runs
	// with the manager, on every replica (forge.Reporter's queue).
	Reporter forge.StatusReporter
	// WebhookAddr serves POST /hooks/<repository> ("" or "0" disables).
	WebhookAddr string
	// WebhookSecretFiles maps repository names to their webhook secrets.
	WebhookSecretFiles map[string]string
	// Commenters post pull request preview comments, by repository name.
	Commenters map[string]preview.Commenter
	// Notifier is told how plans ended (nil: nobody is). One with a Start method runs with
	// the manager (notify.Notifier's queue).
	Notifier instances.Notifier
	// HistoryLimit bounds each Instance's status.history (default 20).
	HistoryLimit int
	// Logger logs everything (structured); give it a handler behind Masker (mask.Handler).
	Logger logr.Logger
	// Masker learns every sensitive value the daemon reads and keeps it out of events,
	// statuses, comments and logs (docs/secrets.md); nil: a new one.
	Masker *mask.Masker
	// Now is the clock (tests).
	Now func() time.Time
}

// Repository is one configured git repository the daemon follows.
type Repository struct {
	// Name is the repository's name in the configuration.
	Name string
	// Source reads the repository.
	Source Source
	// Interval between polls.
	Interval time.Duration
	// URL and Ref describe the source in `kudod status --sources` (no credentials).
	URL, Ref string
	// PreviewRefs are path.Match patterns of refs to preview (refs/pull/*/head).
	PreviewRefs []string
	// Path is the folder to scan.
	Path string
	// Prune cleans up instances removed from git (default true).
	Prune bool
	// AllowEmpty lets a commit remove every instance.
	AllowEmpty bool
	// DriftInterval is how often live objects are compared with what plans applied.
	DriftInterval time.Duration
	// Approval and Windows are defaults for the repository's instances (docs/operations.md).
	Approval *v1alpha1.Approval
	Windows  []v1alpha1.Window
	// Lane is where the repository's instances may go and whose rights their plans use
	// (kudod.yaml's namespaces, allowClusterScoped and serviceAccountName); nil: any namespace
	// but the daemon's own, Options.AllowClusterScoped and Options.DefaultServiceAccount.
	Lane *lanes.Policy
	// PreviewAuthors admits pull requests to previews (previews.authors and previews.forks).
	PreviewAuthors preview.Authors
	// DecryptionSecret names the Secret of age keys that decrypt the repository's
	// SOPS-encrypted files (nil: none; encrypted files fail to read).
	DecryptionSecret *types.NamespacedName
}

// Source is what the daemon reads of a git repository (sources.Source): polls, commits by SHA
// for the package store, and refs for previews.
type Source interface {
	poll.Source
	store.Snapshots
	preview.Source
}

func (r Repository) planning() desired.Repository {
	dr := desired.Repository{Name: r.Name, Prune: r.Prune, AllowEmpty: r.AllowEmpty, Approval: r.Approval, Windows: r.Windows}
	if r.Lane != nil {
		dr.Lane = *r.Lane
	}
	return dr
}

func (r Repository) previews() preview.Repository {
	return preview.Repository{Repository: r.planning(), Source: r.Source, Refs: r.PreviewRefs, Authors: r.PreviewAuthors}
}

// withDefaultLane gives a repository without a lane of its own the daemon's: any namespace but
// the daemon's, cluster-scoped objects as allowed unless a default service account is set.
func (r Repository) withDefaultLane(allowClusterScoped bool, defaultServiceAccount, daemonNamespace string) Repository {
	if r.Lane == nil {
		r.Lane = &lanes.Policy{
			Repository:            r.Name,
			AllowClusterScoped:    allowClusterScoped && defaultServiceAccount == "",
			DefaultServiceAccount: defaultServiceAccount,
			DaemonNamespace:       daemonNamespace,
		}
	}
	return r
}

// Daemon is a configured kudod.
type Daemon struct {
	opts  Options
	store *store.Store
	// pollers are made with the manager, by repository name.
	pollers map[string]*poll.Poller
}

// Scheme returns the scheme of every type the daemon reads and writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// New checks the options and prepares the daemon; it touches no cluster until Start.
func New(opts Options) (*Daemon, error) {
	if opts.StepTimeout <= 0 {
		opts.StepTimeout = 10 * time.Minute
	}
	if opts.Concurrent <= 0 {
		opts.Concurrent = 4
	}
	if opts.LeaderElectionID == "" {
		opts.LeaderElectionID = "kudod-leader"
	}
	if opts.LeaderElectionNamespace == "" {
		opts.LeaderElectionNamespace = "kudod-system"
	}
	// client-go's leader election defaults, set here so the manager always gets a value.
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = 15 * time.Second
	}
	if opts.RenewDeadline <= 0 {
		opts.RenewDeadline = 10 * time.Second
	}
	if opts.RetryPeriod <= 0 {
		opts.RetryPeriod = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Masker == nil {
		opts.Masker = mask.New()
	}
	if opts.Config == nil {
		return nil, errors.New("no cluster configuration")
	}
	opts.Repositories = append([]Repository(nil), opts.Repositories...)
	for i := range opts.Repositories {
		opts.Repositories[i] = opts.Repositories[i].withDefaultLane(opts.AllowClusterScoped, opts.DefaultServiceAccount, opts.LeaderElectionNamespace)
	}
	d := &Daemon{opts: opts, store: store.New()}
	d.store.SetMasker(opts.Masker)
	d.store.SetLimits(opts.MaxInstanceFileSize, opts.renderLimits())
	seen := map[string]bool{}
	for _, repo := range opts.Repositories {
		if seen[repo.Name] {
			return nil, fmt.Errorf("repository %q is configured twice", repo.Name)
		}
		seen[repo.Name] = true
		d.store.AddRepository(repo.Name, repo.Source, repo.Path)
	}
	return d, nil
}

// Start installs the CRD (when asked) and the daemon's namespace, then runs the manager (the
// pollers, the Instance controller, previews) until ctx ends.
func (d *Daemon) Start(ctx context.Context) error {
	opts := d.opts
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	direct, err := client.New(opts.Config, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	if opts.InstallCRDs {
		if err := InstallCRD(ctx, direct); err != nil {
			return err
		}
	}
	// The daemon's namespace holds the lease and the repositories' status, also out of cluster.
	if err := poll.EnsureNamespace(ctx, direct, opts.LeaderElectionNamespace); err != nil {
		return fmt.Errorf("the daemon's namespace: %w", err)
	}
	mgr, err := d.manager(scheme)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// manager builds the controller-runtime manager and everything that runs in it.
func (d *Daemon) manager(scheme *runtime.Scheme) (ctrl.Manager, error) {
	opts := d.opts
	mgr, err := d.newManager(scheme)
	if err != nil {
		return nil, err
	}
	c := mgr.GetClient()
	statusPoller := polling.NewStatusPoller(c, mgr.GetRESTMapper(), polling.Options{})
	resources := ssa.NewResourceManager(c, statusPoller, ssa.Owner{Field: v1alpha1.FieldManager, Group: v1alpha1.GroupVersion.Group})
	exec, err := applier.NewPodExecutor(opts.Config)
	if err != nil {
		return nil, err
	}
	engine := applier.NewEngine(c, resources, exec, applier.Options{
		AllowClusterScoped: opts.AllowClusterScoped, StepTimeout: opts.StepTimeout, Concurrency: 4, ConcurrentWrites: 4 * opts.Concurrent,
		RenderLimits: opts.renderLimits(),
		// Plans of instances with a service account impersonate it (docs/security.md).
		Impersonation: applier.NewImpersonation(opts.Config, scheme, mgr.GetRESTMapper()),
	})
	recorder := maskedRecorder{EventRecorder: mgr.GetEventRecorder("kudod"), m: opts.Masker}
	// Secrets are read around the manager's cache: the daemon watches no Secrets.
	direct := mgr.GetAPIReader()
	for _, repo := range opts.Repositories {
		if ref := repo.DecryptionSecret; ref != nil {
			keys := &decrypt.SecretKeys{Reader: direct, Namespace: ref.Namespace, Name: ref.Name}
			d.store.SetDecryption(repo.Name, func(ctx context.Context) manifests.Decrypter { return keys.Decrypter(ctx) })
		} else {
			// Without decryption an encrypted file fails the commit, saying how to set it up.
			none := decrypt.NewSOPS(nil, "the repository sets no decryption (kudod.yaml: decryption: {provider: sops, secretRef: {name, namespace}})")
			d.store.SetDecryption(repo.Name, func(context.Context) manifests.Decrypter { return none })
		}
	}
	m, err := metrics.New(crmetrics.Registry)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	reporter := opts.Reporter
	if reporter == nil {
		// A reporter without forges logs every status.
		if reporter, err = forge.NewReporter(forge.ReporterOptions{Logger: opts.Logger.WithName("status")}); err != nil {
			return nil, err
		}
	}
	if r, ok := reporter.(manager.Runnable); ok {
		if err := mgr.Add(nonLeader{r}); err != nil {
			return nil, err
		}
	}
	reporter = maskedReporter{StatusReporter: reporter, m: opts.Masker}

	// Previews run on their own worker with a separate engine: they never delay plans and
	// never write (only reads and dryRun=All requests), as the preview user when one is set.
	previewer, err := newPreviewer(client.NewDryRunClient(c), direct, opts.Config, opts.PreviewUser, scheme, mgr.GetRESTMapper(), d.store, opts.AllowClusterScoped, opts.renderLimits(), opts.Masker, opts.Logger.WithName("preview"))
	if err != nil {
		return nil, err
	}
	previews := preview.NewQueue(preview.QueueOptions{
		Previewer: previewer,
		Reporter:  reporter, Commenters: maskCommenters(opts.Commenters, opts.Masker), Log: opts.Logger.WithName("preview"),
	})
	if err := mgr.Add(manager.RunnableFunc(previews.Run)); err != nil {
		return nil, err
	}

	planner := &desired.Planner{Client: c, Store: d.store, Log: opts.Logger.WithName("poller"), Now: opts.Now}
	d.pollers = map[string]*poll.Poller{}
	var ic *instances.Controller // set below; the pollers' callbacks run once the manager started
	driftIntervals := map[string]time.Duration{}
	gates := map[string]instances.GateDefaults{}
	lanesByRepository := map[string]lanes.Policy{}
	for _, repo := range opts.Repositories {
		lanesByRepository[repo.Name] = *repo.Lane
		previewed := repo.previews()
		d.pollers[repo.Name] = poll.New(
			poll.Repository{Repository: repo.planning(), Source: repo.Source, Interval: repo.Interval, URL: repo.URL, Ref: repo.Ref},
			poll.Options{
				Client: c, Reader: mgr.GetAPIReader(), Planner: planner, Recorder: recorder, Reporter: reporter, Metrics: m,
				StatusNamespace: opts.LeaderElectionNamespace, Log: opts.Logger.WithName("poller"),
				// Each poll queues the repository's new preview heads, and has the values of
				// parametersFrom compared again (docs/secrets.md).
				Polled: func(ctx context.Context) {
					previews.Discover(ctx, previewed)
					ic.RecheckSources(ctx, repo.Name)
				},
			})
		driftIntervals[repo.Name] = repo.DriftInterval
		gates[repo.Name] = instances.GateDefaults{Approval: repo.Approval, Windows: repo.Windows}
	}
	ic = instances.New(instances.Options{
		Client: c, Reader: direct, Engine: engine, Store: d.store, Recorder: recorder, Reporter: reporter,
		Metrics: m, DriftIntervals: driftIntervals, Gates: gates, Lanes: lanesByRepository, StepTimeout: opts.StepTimeout, Workers: opts.Concurrent,
		Log: opts.Logger.WithName("instances"), Now: opts.Now, Masker: opts.Masker,
		HistoryLimit: opts.HistoryLimit, Notifier: opts.Notifier,
	})
	if n, ok := opts.Notifier.(manager.Runnable); ok {
		if err := mgr.Add(n); err != nil {
			return nil, err
		}
	}
	if err := ic.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("set up the instance controller: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(d.runPollers)); err != nil {
		return nil, err
	}
	if err := d.watchReconcileRequests(mgr); err != nil {
		return nil, err
	}
	if err := d.serveWebhooks(mgr); err != nil {
		return nil, err
	}
	return mgr, nil
}

// newManager makes the manager: its cache holds only what the daemon reads.
func (d *Daemon) newManager(scheme *runtime.Scheme) (ctrl.Manager, error) {
	opts := d.opts
	sourceStatus, err := labels.Parse(v1alpha1.LabelSourceStatus + "=true")
	if err != nil {
		return nil, err
	}
	// A daemon sees only the Instances of its own repositories: several daemons, each with a
	// kudod.yaml listing some repositories, shard a cluster between them.
	var names []string
	for _, r := range opts.Repositories {
		names = append(names, r.Name)
	}
	ownRepos, err := repositorySelector(names)
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(opts.Config, ctrl.Options{
		Scheme: scheme,
		Cache: cache.Options{
			ByObject: map[client.Object]cache.ByObject{
				&v1alpha1.Instance{}: {Label: ownRepos},
				// The daemon reads ConfigMaps only for `kudod reconcile` requests: cache just those.
				&corev1.ConfigMap{}: {Namespaces: map[string]cache.Config{opts.LeaderElectionNamespace: {}}, Label: sourceStatus},
			},
			// Nothing reads the managedFields of a cached object (status patches are merge
			// patches, Instances are applied from git): keeping them costs memory per Instance
			// (docs/scaling.md).
			DefaultTransform: cache.TransformStripManagedFields(),
		},
		// Typed reads of these kinds go to the API server: a Get through the cache would start
		// an informer on every such object in the cluster, which kudod does not own
		// (docs/scaling.md, "A noisy cluster").
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{
			&corev1.Secret{}, &corev1.Namespace{}, &corev1.Pod{}, &corev1.Event{}, &corev1.ServiceAccount{},
		}}},
		Logger:                        opts.Logger,
		Metrics:                       metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:        opts.ProbeAddr,
		PprofBindAddress:              opts.PprofAddr,
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              opts.LeaderElectionID,
		LeaderElectionNamespace:       opts.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 ptr.To(opts.LeaseDuration),
		RenewDeadline:                 ptr.To(opts.RenewDeadline),
		RetryPeriod:                   ptr.To(opts.RetryPeriod),
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}

// renderLimits are the limits of every package render.
func (o Options) renderLimits() manifests.RenderLimits {
	return manifests.RenderLimits{Timeout: o.RenderTimeout}
}

// newPreviewer returns a previewer on dry-run clients: reads, and dryRun=All requests only.
// The planner reads Instances with dryRun, the daemon's own client; the engine reads and
// dry-runs objects as user when one is given (a user with read and dry-run rights only,
// deploy/rbac/preview_role.yaml), else with dryRun too. direct reads the Secrets and
// ConfigMaps of parametersFrom around any cache.
func newPreviewer(dryRun client.Client, direct client.Reader, cfg *rest.Config, user string, scheme *runtime.Scheme, mapper meta.RESTMapper, s *store.Store, allowClusterScoped bool, render manifests.RenderLimits, m *mask.Masker, log logr.Logger) (*preview.Previewer, error) {
	objects := dryRun
	if user != "" {
		ic := rest.CopyConfig(cfg)
		ic.Impersonate = rest.ImpersonationConfig{UserName: user}
		c, err := client.New(ic, client.Options{Scheme: scheme, Mapper: mapper})
		if err != nil {
			return nil, fmt.Errorf("a client impersonating %s: %w", user, err)
		}
		objects = client.NewDryRunClient(c)
		// A preview reads what parametersFrom names with the preview identity's rights too.
		direct = c
	}
	resources := ssa.NewResourceManager(objects, polling.NewStatusPoller(objects, mapper, polling.Options{}), ssa.Owner{Field: v1alpha1.FieldManager, Group: v1alpha1.GroupVersion.Group})
	return &preview.Previewer{
		Planner: &desired.Planner{Client: dryRun, Store: s, Log: log},
		Engine:  applier.NewEngine(objects, resources, nil, applier.Options{AllowClusterScoped: allowClusterScoped, RenderLimits: render}),
		Params:  &parameters.Resolver{Reader: direct, Git: s, Masker: m},
		Masker:  m,
	}, nil
}

// nonLeader runs a runnable on every replica, leader or not.
type nonLeader struct{ manager.Runnable }

func (nonLeader) NeedLeaderElection() bool { return false }

// serveWebhooks receives forge webhooks on every replica. The leader polls at once; another
// replica passes the request on through the API server, as `kudod reconcile` does, so a
// delivery that lands on a standby is not lost (its requests coalesce: poll.Forwarder).
func (d *Daemon) serveWebhooks(mgr ctrl.Manager) error {
	if d.opts.WebhookAddr == "" || d.opts.WebhookAddr == "0" {
		return nil
	}
	elected := mgr.Elected()
	forwarder := poll.NewForwarder(mgr.GetClient(), d.opts.LeaderElectionNamespace, poll.DefaultForwardInterval, d.opts.Logger.WithName("webhook"))
	if err := mgr.Add(nonLeader{forwarder}); err != nil {
		return err
	}
	onDelivery := func(repository string) {
		select {
		case <-elected:
			d.Wake(repository)
		default:
			forwarder.Forward(repository)
		}
	}
	hook, err := forge.NewWebhook(forge.WebhookOptions{
		SecretFiles: d.opts.WebhookSecretFiles, OnPush: onDelivery, OnPullRequest: onDelivery,
		Registerer: crmetrics.Registry, Logger: d.opts.Logger.WithName("webhook"),
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(forge.WebhookPathPrefix, hook)
	server := forge.NewWebhookServer(d.opts.WebhookAddr, mux)
	return mgr.Add(nonLeader{manager.RunnableFunc(func(ctx context.Context) error {
		l, err := net.Listen("tcp", d.opts.WebhookAddr)
		if err != nil {
			return fmt.Errorf("webhook receiver: %w", err)
		}
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = server.Shutdown(sctx)
		}()
		if err := server.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("webhook receiver: %w", err)
		}
		return nil
	})})
}

// Wake asks a repository's poller to poll now; false if there is no such repository or the
// daemon has not started.
func (d *Daemon) Wake(repository string) bool {
	p, ok := d.pollers[repository]
	if ok {
		p.Wake()
	}
	return ok
}

func (d *Daemon) runPollers(ctx context.Context) error {
	done := make(chan struct{})
	for _, p := range d.pollers {
		go func() {
			p.Run(ctx)
			done <- struct{}{}
		}()
	}
	for range d.pollers {
		<-done
	}
	return nil
}

// watchReconcileRequests wakes a repository's poller when `kudod reconcile` annotates its
// status ConfigMap.
func (d *Daemon) watchReconcileRequests(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("reconcile-requests").
		For(&corev1.ConfigMap{}).
		WithOptions(controller.Options{SkipNameValidation: ptr.To(true)}).
		Complete(reconcile.Func(func(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
			cm := &corev1.ConfigMap{}
			if err := mgr.GetClient().Get(ctx, req.NamespacedName, cm); err != nil {
				return ctrl.Result{}, client.IgnoreNotFound(err)
			}
			if p, ok := d.pollers[cm.Data["repository"]]; ok {
				p.WakeFor(cm.Annotations[v1alpha1.AnnotationReconcileRequest])
			}
			return ctrl.Result{}, nil
		}))
}

// repositorySelector selects the Instances of the named repositories.
func repositorySelector(names []string) (labels.Selector, error) {
	if len(names) == 0 {
		return labels.Nothing(), nil
	}
	req, err := labels.NewRequirement(v1alpha1.LabelRepository, selection.In, names)
	if err != nil {
		return nil, fmt.Errorf("repository names: %w", err)
	}
	return labels.NewSelector().Add(*req), nil
}

// InstallCRD server-side applies kudod's Instance CRD and waits until it is established.
func InstallCRD(ctx context.Context, c client.Client) error {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := sigsyaml.UnmarshalStrict(deploy.InstanceCRD, crd); err != nil {
		return fmt.Errorf("read the embedded CRD: %w", err)
	}
	u, err := applier.ApplyObject(crd)
	if err != nil {
		return err
	}
	u.SetAPIVersion(apiextensionsv1.SchemeGroupVersion.String())
	u.SetKind("CustomResourceDefinition")
	if err := applier.ServerSideApply(ctx, c, u); err != nil {
		return fmt.Errorf("install the Instance CRD: %w", err)
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(crd), got); err != nil {
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return false, err
		}
		for _, cond := range got.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// SlogFor bridges the daemon's logr logger to the slog loggers of other packages.
func SlogFor(log logr.Logger) *slog.Logger { return slog.New(logr.ToSlogHandler(log)) }
