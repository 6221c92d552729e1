package daemon

import (
	"fmt"

	"github.com/go-logr/logr"
)

// Commit status states (SPEC §4).
const (
	StatePending = "pending"
	StateSuccess = "success"
	StateFailure = "failure"
	StateError   = "error"
)

// CommitStatus is one status on a commit of a repository.
type CommitStatus struct {
	// Repository is the configured repository name.
	Repository string
	// SHA is the full commit SHA.
	SHA string
	// Context is kudod/<namespace>/<instance> (or kudod/<namespace>/<instance>/<plan> for
	// scheduled plans, kudod/preview for previews).
	Context     string
	State       string
	Description string
}

func (s CommitStatus) String() string {
	return fmt.Sprintf("%s@%s %s %s: %s", s.Repository, short(s.SHA), s.Context, s.State, s.Description)
}

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
