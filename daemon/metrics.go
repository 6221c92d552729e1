package daemon

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// daemonMetrics are the daemon's kudod_* series (docs/metrics.md), on controller-runtime's registry.
type daemonMetrics struct {
	planRuns        *prometheus.CounterVec
	planDuration    *prometheus.HistogramVec
	stepFailures    *prometheus.CounterVec
	pollDuration    *prometheus.HistogramVec
	fetches         *prometheus.CounterVec
	pollErrors      *prometheus.CounterVec
	drift           *prometheus.CounterVec
	appliedRevision *prometheus.GaugeVec
	executions      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*daemonMetrics, error) {
	m := &daemonMetrics{
		planRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kudod_plan_runs_total", Help: "Plans that ended, by plan, trigger (git, schedule, manual) and outcome (complete, fatal_error, superseded, aborted).",
		}, []string{"plan", "trigger", "outcome"}),
		planDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kudod_plan_duration_seconds", Help: "How long plans ran, by plan, trigger and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 16),
		}, []string{"plan", "trigger", "outcome"}),
		stepFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kudod_step_failures_total", Help: "Steps that ended with FATAL_ERROR, by plan.",
		}, []string{"plan"}),
		pollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kudod_git_poll_duration_seconds", Help: "How long a poll of a repository took (ls-remote, fetch when it moved, index, plan).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"repository"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kudod_git_fetches_total", Help: "Fetches of objects from a repository's remote (a poll that finds nothing new fetches nothing).",
		}, []string{"repository"}),
		pollErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kudod_git_poll_errors_total", Help: "Polls of a repository that failed.",
		}, []string{"repository"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kudod_drift_corrections_total", Help: "Objects found drifted from what plans applied, by instance and mode (corrected, reported).",
		}, []string{"namespace", "instance", "mode"}),
		appliedRevision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kudod_applied_revision_info", Help: "The revision of each repository the daemon last acted on (value 1).",
		}, []string{"repository", "revision"}),
		executions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kudod_executions_running", Help: "Plans running now.",
		}),
	}
	var err error
	m.planRuns = register(reg, m.planRuns, &err)
	m.planDuration = register(reg, m.planDuration, &err)
	m.stepFailures = register(reg, m.stepFailures, &err)
	m.pollDuration = register(reg, m.pollDuration, &err)
	m.fetches = register(reg, m.fetches, &err)
	m.pollErrors = register(reg, m.pollErrors, &err)
	m.drift = register(reg, m.drift, &err)
	m.appliedRevision = register(reg, m.appliedRevision, &err)
	m.executions = register(reg, m.executions, &err)
	return m, err
}

// register adds c to reg; when an identical collector is already registered (several daemons
// in one process: tests, benchmarks) it is shared.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		if *errp == nil {
			*errp = err
		}
	}
	return c
}
