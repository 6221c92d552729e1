package daemon

import (
	"github.com/go-logr/logr"

	"github.com/kudod-dev/kudod/internal/forge"
)

// Commit status states (SPEC §4).
const (
	StatePending = forge.StatePending
	StateSuccess = forge.StateSuccess
	StateFailure = forge.StateFailure
	StateError   = forge.StateError
)

// CommitStatus is one status on a commit of a repository.
type CommitStatus = forge.Status

// StatusReporter posts commit statuses. Report must not block plan execution.
type StatusReporter interface {
	Report(s CommitStatus)
}

// logReporter is the reporter when no forge is configured: statuses go to the log only (SPEC §4).
type logReporter struct{ log logr.Logger }

func (r logReporter) Report(s CommitStatus) {
	r.log.Info("commit status", "repository", s.Repository, "commit", s.SHA, "context", s.Context, "state", s.State, "description", s.Description)
}

// instanceContext is the commit status context of an instance.
func instanceContext(namespace, name string) string { return "kudod/" + namespace + "/" + name }

// truncate keeps descriptions under the forges' 140 characters.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
