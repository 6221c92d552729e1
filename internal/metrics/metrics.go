// Package metrics holds the daemon's own kudod_* series (docs/metrics.md): what polls, plans
// and drift checks record, on the registry the daemon serves (controller-runtime's).
package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// Metrics are the daemon's series. Several daemons in one process (tests, benchmarks) share
// them.
type Metrics struct {
	planRuns        *prometheus.CounterVec
	planDuration    *prometheus.HistogramVec
	stepFailures    *prometheus.CounterVec
	pollDuration    *prometheus.HistogramVec
	fetches         *prometheus.CounterVec
	pollErrors      *prometheus.CounterVec
	drift           *prometheus.CounterVec
	appliedRevision *prometheus.GaugeVec
	executions      prometheus.Gauge
	planWait        *prometheus.HistogramVec
}

// New registers the series with reg; series already registered by another daemon are shared.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
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
		planWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kudod_plan_wait_seconds", Help: "How long plans waited before they started (or were rejected or replaced), by what they waited for: dependency, approval, window.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}, []string{"reason"}),
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
	m.planWait = register(reg, m.planWait, &err)
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

// Polled records one poll of a repository: how long it took, how many fetches it made, and
// whether it failed.
func (m *Metrics) Polled(repository string, took time.Duration, fetches int64, failed bool) {
	m.pollDuration.WithLabelValues(repository).Observe(took.Seconds())
	if fetches > 0 {
		m.fetches.WithLabelValues(repository).Add(float64(fetches))
	}
	if failed {
		m.pollErrors.WithLabelValues(repository).Inc()
	}
}

// Acted records that the daemon carried out every decision of a repository's revision; the
// series of the revision it acted on before ("" if none) goes.
func (m *Metrics) Acted(repository, previous, revision string) {
	if previous != "" && previous != revision {
		m.appliedRevision.DeleteLabelValues(repository, previous)
	}
	m.appliedRevision.WithLabelValues(repository, revision).Set(1)
}

// PlanEnded counts a plan that ended, by outcome: complete, fatal_error, superseded, aborted.
func (m *Metrics) PlanEnded(plan string, trigger v1alpha1.Trigger, outcome string, took time.Duration) {
	m.planRuns.WithLabelValues(plan, string(trigger), outcome).Inc()
	m.planDuration.WithLabelValues(plan, string(trigger), outcome).Observe(took.Seconds())
}

// StepFailed counts a step of a plan that ended FATAL_ERROR.
func (m *Metrics) StepFailed(plan string) { m.stepFailures.WithLabelValues(plan).Inc() }

// Drifted counts objects of an instance found drifted; mode is corrected or reported.
func (m *Metrics) Drifted(namespace, instance, mode string, objects int) {
	m.drift.WithLabelValues(namespace, instance, mode).Add(float64(objects))
}

// ExecutionStarted and ExecutionEnded keep the count of running plans.
func (m *Metrics) ExecutionStarted() { m.executions.Inc() }

// ExecutionEnded: see ExecutionStarted.
func (m *Metrics) ExecutionEnded() { m.executions.Dec() }

// PlanWaited records how long a plan waited for one reason (dependency, approval, window)
// before that wait ended.
func (m *Metrics) PlanWaited(reason string, took time.Duration) {
	m.planWait.WithLabelValues(reason).Observe(max(took, 0).Seconds())
}
