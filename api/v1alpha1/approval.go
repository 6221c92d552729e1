package v1alpha1

import "strings"

// Matches reports whether an approval (or a rejection) is for a plan of revision: the same
// commit, named in full or by a prefix of at least seven hex digits, and the same plan when
// it names one. Approvals are per commit: a later commit needs its own (docs/operations.md).
func (a *PlanApproval) Matches(revision, plan string) bool {
	if a == nil || revision == "" || len(a.Revision) < shortRevisionLength {
		return false
	}
	if !strings.HasPrefix(strings.ToLower(revision), strings.ToLower(a.Revision)) {
		return false
	}
	return a.Plan == "" || a.Plan == plan
}
