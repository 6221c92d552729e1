package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kudod-dev/kudod/manifests"
)

func newVerifyCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "Check a KUDO operator package: every check of kubectl kudo package verify, and more",
		Long: `Check the KUDO operator package in DIR (operator.yaml, params.yaml, templates/) with every
check of 'kubectl kudo package verify' and kudod's own: every template must render with default
parameters into Kubernetes objects.

Warnings and errors are printed as FILE:LINE: SEVERITY: MESSAGE. The exit code is 1 when there is
any error (unreadable files included), 0 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			dir := args[0]
			_, findings := readPackage(dir)
			errs, warns := findings.Errors(), findings.Warnings()
			printFindings(s.Out, warns)
			printFindings(s.Out, errs)
			if len(errs) > 0 {
				return exitCode(1, fmt.Errorf("%s: %s, %s", dir, countNoun(len(errs), "error"), countNoun(len(warns), "warning")))
			}
			if len(warns) > 0 {
				fmt.Fprintf(s.Out, "package is valid (%s)\n", countNoun(len(warns), "warning"))
			} else {
				fmt.Fprintln(s.Out, "package is valid")
			}
			return nil
		},
	}
}

// readPackage loads and verifies the package in dir. The package is nil when it could not be
// read; the findings name files by their path on disk.
func readPackage(dir string) (*manifests.Package, manifests.Findings) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, manifests.Findings{{Severity: manifests.SeverityError, File: dir, Message: fmt.Sprintf("cannot read the package directory: %v", pathErrorCause(err))}}
	}
	if !fi.IsDir() {
		return nil, manifests.Findings{{Severity: manifests.SeverityError, File: dir, Message: "not a directory: give the directory holding operator.yaml"}}
	}
	p, err := manifests.Load(os.DirFS(dir), ".")
	if err != nil {
		var fs manifests.Findings
		if !errors.As(err, &fs) {
			fs = manifests.Findings{{Severity: manifests.SeverityError, File: dir, Message: err.Error()}}
		}
		return nil, onDisk(dir, fs)
	}
	return p, onDisk(dir, manifests.Verify(p))
}

// onDisk rewrites the files findings name, relative to the package, as paths on disk.
func onDisk(dir string, fs manifests.Findings) manifests.Findings {
	out := make(manifests.Findings, len(fs))
	for i, f := range fs {
		if f.File != dir {
			f.File = filepath.Join(dir, f.File)
		}
		out[i] = f
	}
	return out
}

// printFindings writes one finding per line, as compilers do: FILE:LINE: SEVERITY: MESSAGE.
func printFindings(w io.Writer, fs manifests.Findings) {
	for _, f := range fs {
		if f.Line > 0 {
			fmt.Fprintf(w, "%s:%d: %s: %s\n", f.File, f.Line, f.Severity, f.Message)
		} else {
			fmt.Fprintf(w, "%s: %s: %s\n", f.File, f.Severity, f.Message)
		}
	}
}

func pathErrorCause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func countNoun(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}
