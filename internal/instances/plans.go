package instances

import (
	"errors"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
)

// planStart says which plan to start and why.
type planStart struct {
	plan     string
	uid      string
	trigger  v1alpha1.Trigger
	revision string
	reasons  []string
	schedule string
	// replace lets a manual or scheduled plan supersede a running one.
	replace bool
	// resume continues the plan recorded in status.activePlan.
	resume bool
	user   string
	// Recovery and plan-scoped parameters (retry.go, rollback.go, planparams.go).
	recovery
	// sources are the digests of what parametersFrom gave the plan, recorded in
	// status.parametersFrom when sourcesRead.
	sources     []v1alpha1.ParameterSourceStatus
	sourcesRead bool
}

// recordSources records what parametersFrom gave the plan (digests only).
func recordSources(s *v1alpha1.InstanceStatus, ps planStart) {
	if ps.sourcesRead {
		s.ParametersFrom = ps.sources
	}
}

// errSuperseded ends a plan that a newer one replaces.
type errSuperseded struct{ by string }

func (e *errSuperseded) Error() string { return "superseded by " + e.by }

// errAborted ends a plan by `kudod abort`.
type errAborted struct{ user string }

func (e *errAborted) Error() string {
	if e.user == "" {
		return "aborted"
	}
	return "aborted by " + e.user
}

// errStopped ends an execution without judging the plan (daemon shutdown, lost leadership,
// Instance deleted): it resumes later.
var errStopped = errors.New("execution stopped")

// Outcomes of a plan that ended, as kudod_plan_runs_total counts them (docs/metrics.md).
const (
	outcomeComplete   = "complete"
	outcomeFatal      = "fatal_error"
	outcomeSuperseded = "superseded"
	outcomeAborted    = "aborted"
)

// outcome says how the plan of an execution that returned err ended; "" when it did not end
// but stopped (shutdown, lost leadership, an error kudod retries): it resumes later.
func outcome(err error) string {
	switch {
	case err == nil:
		return outcomeComplete
	case applier.IsFatal(err):
		return outcomeFatal
	case errors.As(err, new(*errSuperseded)):
		return outcomeSuperseded
	case errors.As(err, new(*errAborted)):
		return outcomeAborted
	}
	return ""
}

func userOr(u string) string {
	if u == "" {
		return "a user"
	}
	return u
}

// supersedes reports whether a wanted plan ends a running one at once: git always does
// (docs/design.md, Running a plan), a manual trigger with --replace does.
func supersedes(want, running planStart) bool {
	if want.uid == running.uid {
		return false
	}
	switch want.trigger {
	case v1alpha1.TriggerGit, v1alpha1.TriggerRollback:
		return true
	case v1alpha1.TriggerManual:
		return want.replace
	}
	return false
}

func describeStart(s planStart) string {
	switch s.trigger {
	case v1alpha1.TriggerGit:
		return v1alpha1.ShortRevision(s.revision)
	case v1alpha1.TriggerSchedule:
		return "schedule " + s.schedule
	case v1alpha1.TriggerRetry, v1alpha1.TriggerRollback:
		return describeRecovery(s)
	default:
		return "manual trigger of " + s.plan
	}
}

func describeTrigger(ps planStart) string {
	switch ps.trigger {
	case v1alpha1.TriggerGit:
		return "commit " + v1alpha1.ShortRevision(ps.revision)
	case v1alpha1.TriggerSchedule:
		return "schedule " + ps.schedule
	case v1alpha1.TriggerRetry, v1alpha1.TriggerRollback:
		return describeRecovery(ps) + " by " + recoveryUser(ps)
	default:
		return "manual trigger by " + userOr(ps.user)
	}
}
