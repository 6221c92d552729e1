package app

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kudod-dev/kudod/daemon"
	"github.com/kudod-dev/kudod/internal/config"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/internal/instances"
	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/internal/preview"
	"github.com/kudod-dev/kudod/sources"
)

// runOptions are `kudod run`'s flags (docs/configuration.md, Flags of `kudod run`).
type runOptions struct {
	configFile      string
	metricsAddr     string
	probeAddr       string
	pprofAddr       string
	webhookAddr     string
	leaderElect     bool
	leaderNamespace string
	leaseDuration   time.Duration
	renewDeadline   time.Duration
	retryPeriod     time.Duration
	stepTimeout     time.Duration
	concurrent      int
	installCRDs     bool
	cacheDir        string
	qps             float32
	burst           int
	logLevel        string
	logFormat       string
	historyLimit    int
	// defaultServiceAccount and previewUser: docs/security.md.
	defaultServiceAccount string
	previewUser           string
	limits                limitFlags
}

func newRunCommand(s streams) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run --config kudod.yaml",
		Short: "Run the daemon: follow the configured repositories and run their plans",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Every log line, debug ones too, goes through the masker the daemon teaches every
			// sensitive value it reads (docs/secrets.md).
			masker := mask.New()
			log, err := newLogger(s, o.logLevel, o.logFormat, masker)
			if err != nil {
				return exitCode(2, err)
			}
			ctrl.SetLogger(log)
			klog.SetLogger(log)
			// GOGC is Go's default, 100: collecting twice as often as with 200 costs the daemon
			// a few percent of its CPU in a cold start and takes a third off its peak memory
			// (docs/scaling.md, "Memory").
			if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
				// The Go runtime honours GOMEMLIMIT itself; without it, the container's limit.
				if limit, file, ok := cgroupMemoryLimit(os.DirFS("/sys/fs/cgroup")); ok {
					debug.SetMemoryLimit(goMemoryLimit(limit))
					log.Info("Go memory limit from the container's", "containerBytes", limit, "goMemLimitBytes", goMemoryLimit(limit), "cgroupFile", file)
				}
			}
			cfg, err := config.Load(o.configFile)
			if err != nil {
				return exitCode(2, err)
			}
			rest, err := clusterConfig(cfg.Cluster.Kubeconfig)
			if err != nil {
				return exitCode(2, err)
			}
			rest.QPS, rest.Burst = o.qps, o.burst
			maxFile, err := o.limits.instanceFileSize()
			if err != nil {
				return exitCode(2, err)
			}
			opts := daemon.Options{
				Config: rest, MetricsAddr: o.metricsAddr, ProbeAddr: o.probeAddr, PprofAddr: o.pprofAddr,
				LeaderElection: o.leaderElect, LeaderElectionNamespace: o.leaderNamespace,
				LeaseDuration: o.leaseDuration, RenewDeadline: o.renewDeadline, RetryPeriod: o.retryPeriod,
				InstallCRDs: o.installCRDs, StepTimeout: o.stepTimeout, Concurrent: o.concurrent,
				AllowClusterScoped: cfg.Cluster.AllowClusterScoped, Logger: log, Masker: masker,
				DefaultServiceAccount: o.defaultServiceAccount, PreviewUser: o.previewUser,
				RenderTimeout: o.limits.renderTimeout, MaxInstanceFileSize: maxFile,
			}
			if err := checkServiceAccountName(o.defaultServiceAccount); err != nil {
				return exitCode(2, fmt.Errorf("--default-service-account: %w", err))
			}
			providers := map[string]forge.Provider{}
			opts.WebhookAddr, opts.WebhookSecretFiles, opts.Commenters = o.webhookAddr, map[string]string{}, map[string]preview.Commenter{}
			for _, r := range cfg.Repositories {
				if r.Status.Provider != "" {
					p, err := forge.NewProvider(forgeRepository(r.Status), forge.Options{})
					if err != nil {
						return exitCode(2, fmt.Errorf("repository %s: %w", r.Name, err))
					}
					providers[r.Name] = p
					opts.Commenters[r.Name] = p
				}
				if r.Webhook.SecretFile != "" {
					opts.WebhookSecretFiles[r.Name] = r.Webhook.SecretFile
				}
				so := r.SourceOptions(o.cacheDir)
				so.Logger = daemon.SlogFor(log.WithName("git"))
				src, err := sources.New(so)
				if err != nil {
					return exitCode(2, err)
				}
				lane := r.Policy(cfg.Cluster, o.defaultServiceAccount, o.leaderNamespace)
				opts.Repositories = append(opts.Repositories, daemon.Repository{
					Name: r.Name, Source: src, Interval: r.Interval, Path: r.Path, Prune: r.Prune,
					AllowEmpty: r.AllowEmpty, DriftInterval: r.DriftInterval, URL: r.URL, Ref: r.Ref.String(), PreviewRefs: r.Previews.Refs,
					Approval: r.Approval, Windows: r.Windows,
					Lane: &lane, PreviewAuthors: preview.Authors{Patterns: r.Previews.Authors, Forks: r.Previews.Forks},
					DecryptionSecret: decryptionSecret(r.Decryption),
				})
			}
			reporter, err := forge.NewReporter(forge.ReporterOptions{Providers: providers, Registerer: metrics.Registry, Logger: log.WithName("status")})
			if err != nil {
				return err
			}
			opts.Reporter = reporter
			if err := addNotifier(&opts, cfg, o.historyLimit, log); err != nil {
				return exitCode(2, err)
			}
			d, err := daemon.New(opts)
			if err != nil {
				return err
			}
			log.Info("kudod starting", "version", version, "repositories", len(opts.Repositories), "leaderElection", o.leaderElect)
			return d.Start(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configFile, "config", "kudod.yaml", "the daemon's configuration file")
	f.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "where Prometheus metrics are served (0 disables)")
	f.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "where /healthz and /readyz are served (0 disables)")
	f.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "where Go's /debug/pprof is served (0 disables)")
	f.StringVar(&o.webhookAddr, "webhook-bind-address", ":9292", "where forge webhooks are received (POST /hooks/<repository>; 0 disables)")
	f.BoolVar(&o.leaderElect, "leader-elect", true, "elect one active replica with a Lease")
	f.StringVar(&o.leaderNamespace, "leader-election-namespace", "kudod-system", "the daemon's namespace: its Lease and repository status (created if missing)")
	f.DurationVar(&o.leaseDuration, "leader-election-lease-duration", 15*time.Second, "how long a standby waits before taking over from a leader that stopped renewing")
	f.DurationVar(&o.renewDeadline, "leader-election-renew-deadline", 10*time.Second, "how long the leader tries to renew before it gives up leading")
	f.DurationVar(&o.retryPeriod, "leader-election-retry-period", 2*time.Second, "how often leader election is tried")
	f.DurationVar(&o.stepTimeout, "step-timeout", 10*time.Minute, "how long a step may take unless an instance sets spec.stepTimeout")
	f.IntVar(&o.concurrent, "concurrent", 4, "Instance reconciles at once (steps writing at once: 4x this)")
	f.BoolVar(&o.installCRDs, "install-crds", true, "install or update the Instance CRD at start")
	f.StringVar(&o.cacheDir, "cache-dir", filepath.Join(os.TempDir(), "kudod"), "where git clones are cached")
	f.Float32Var(&o.qps, "kube-api-qps", 200, "requests per second to the API server")
	f.IntVar(&o.burst, "kube-api-burst", 400, "request burst to the API server")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info or error")
	f.StringVar(&o.logFormat, "log-format", "json", "json or text")
	f.IntVar(&o.historyLimit, "history-limit", instances.DefaultHistoryLimit, "how many ended plan executions each Instance's status.history keeps")
	f.StringVar(&o.defaultServiceAccount, "default-service-account", "", "the service account, in each instance's namespace, that plans impersonate when neither the instance nor its repository names one (docs/security.md)")
	f.StringVar(&o.previewUser, "preview-user", "", "the user previews impersonate, with read and dry-run rights only (deploy/rbac/preview_role.yaml); empty: the daemon's own identity")
	o.limits.addRender(f)
	o.limits.addInstanceFiles(f)
	return cmd
}

// checkServiceAccountName refuses what cannot be a service account's name ("" is none).
func checkServiceAccountName(name string) error {
	if errs := validation.IsDNS1123Subdomain(name); name != "" && len(errs) > 0 {
		return fmt.Errorf("%q is not a service account name: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// forgeRepository is the forge repository of a repository's status settings.
func forgeRepository(s config.Status) forge.Repository {
	return forge.Repository{
		Kind: forge.Kind(s.Provider), URL: s.URL, TokenFile: s.TokenFile, TokenEnv: s.TokenEnv,
		Owner: s.Owner, Repo: s.Repo, Project: s.Project,
	}
}

// clusterConfig reads the cluster connection: the configured kubeconfig, else in-cluster,
// else $KUBECONFIG and ~/.kube/config.
func clusterConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	if cfg, err := rest.InClusterConfig(); err == nil {
		return cfg, nil
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no cluster: not in a cluster and no kubeconfig: %w", err)
	}
	return cfg, nil
}

// decryptionSecret names a repository's decryption Secret, nil without decryption.
func decryptionSecret(d config.Decryption) *types.NamespacedName {
	if d.Provider == "" {
		return nil
	}
	return &types.NamespacedName{Namespace: d.SecretRef.Namespace, Name: d.SecretRef.Name}
}

// newLogger returns a structured logger writing to stderr, every record masked by m.
func newLogger(s streams, level, format string, m *mask.Masker) (logr.Logger, error) {
	var l slog.Level
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "error":
		l = slog.LevelError
	default:
		return logr.Logger{}, fmt.Errorf("unknown --log-level %q (debug, info, error)", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(s.Err, opts)
	case "text":
		h = slog.NewTextHandler(s.Err, opts)
	default:
		return logr.Logger{}, fmt.Errorf("unknown --log-format %q (json, text)", format)
	}
	return logr.FromSlogHandler(m.Handler(h)), nil
}
