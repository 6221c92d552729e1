package manifests

import (
	"fmt"
	"sort"
	"strings"
)

// Severity of a Finding.
type Severity string

// Severities: an error fails verification, a warning is printed.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Finding is one problem in a file someone wrote (a package, an instance file, kudod.yaml): an
// error or a warning naming the file and, where known, the line. It is kudod's one
// error-with-position type, printed as FILE:LINE: MESSAGE.
type Finding struct {
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Line     int      `json:"line,omitempty"`
	Message  string   `json:"message"`
}

func (f Finding) Error() string {
	switch {
	case f.File == "":
		return f.Message
	case f.Line > 0:
		return fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.Message)
	default:
		return fmt.Sprintf("%s: %s", f.File, f.Message)
	}
}

// Findings is a list of findings; as an error it is the list of its errors.
type Findings []Finding

// Errors returns the findings with SeverityError.
func (fs Findings) Errors() Findings { return fs.filter(SeverityError) }

// Warnings returns the findings with SeverityWarning.
func (fs Findings) Warnings() Findings { return fs.filter(SeverityWarning) }

// HasErrors reports whether any finding is an error.
func (fs Findings) HasErrors() bool { return len(fs.Errors()) > 0 }

func (fs Findings) filter(s Severity) Findings {
	var out Findings
	for _, f := range fs {
		if f.Severity == s {
			out = append(out, f)
		}
	}
	return out
}

// Sort orders findings by file, line and message, so output is stable.
func (fs Findings) Sort() {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Message < b.Message
	})
}

func (fs Findings) Error() string {
	msgs := make([]string, 0, len(fs))
	for _, f := range fs {
		msgs = append(msgs, f.Error())
	}
	return strings.Join(msgs, "; ")
}

// Err returns the errors among the findings as an error, or nil when there are none.
func (fs Findings) Err() error {
	if errs := fs.Errors(); len(errs) > 0 {
		return errs
	}
	return nil
}

func errorf(file string, line int, format string, args ...any) Finding {
	return Finding{Severity: SeverityError, File: file, Line: line, Message: fmt.Sprintf(format, args...)}
}

func warnf(file string, line int, format string, args ...any) Finding {
	return Finding{Severity: SeverityWarning, File: file, Line: line, Message: fmt.Sprintf(format, args...)}
}
