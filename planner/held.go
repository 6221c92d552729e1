package planner

import (
	"fmt"
	"strings"
)

// HeldError holds a commit whose repository has findings that make its intent unknown:
// an instance file kudod cannot read, an instance declared twice. Nothing of the commit is
// applied, as for an emptied branch: a file that cannot be read may hold instances that would
// otherwise be taken as removed, and of two declarations neither is known to be the one meant
// (docs/design.md, Plan selection).
type HeldError struct {
	// Findings are the repository's findings, FILE:LINE: MESSAGE, sorted.
	Findings []string
}

func (e *HeldError) Error() string {
	if len(e.Findings) == 0 {
		return "the commit is held"
	}
	msg := "the commit is held: " + e.Findings[0]
	if n := len(e.Findings) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more: %s)", n, strings.Join(e.Findings[1:], "; "))
	}
	return msg
}
