package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kudod-dev/kudod/manifests"
)

func newVerifyCommand(s streams) *cobra.Command {
	var limits limitFlags
	cmd := &cobra.Command{
		Use:   "verify DIR...",
		Short: "Check a KUDO operator package: every check of kubectl kudo package verify, and more",
		Long: `Check the KUDO operator package in DIR (operator.yaml, params.yaml, templates/) with every
check of 'kubectl kudo package verify' and kudod's own: every template must render with default
parameters into Kubernetes objects, within the render limits (--render-timeout).

With several DIRs, each package is checked, and KudoOperator tasks among them must not form
a cycle (a → b → a). Symbolic links leading out of DIR are errors.

Warnings and errors are printed as FILE:LINE: SEVERITY: MESSAGE. The exit code is 1 when there is
any error (unreadable files included), 0 otherwise.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := limits.context(cmd.Context())
			var findings manifests.Findings
			var pkgs []*manifests.Package
			dirOf := map[*manifests.Package]string{}
			for _, dir := range args {
				p, fs := readPackage(ctx, dir)
				findings = append(findings, fs...)
				if p != nil {
					pkgs = append(pkgs, p)
					dirOf[p] = dir
				}
			}
			if err := ctx.Err(); err != nil {
				return exitCode(2, fmt.Errorf("interrupted: %w", context.Cause(ctx)))
			}
			for p, fs := range manifests.PackageCycles(pkgs) {
				findings = append(findings, onDisk(dirOf[p], fs)...)
			}
			errs, warns := findings.Errors(), findings.Warnings()
			printFindings(s.Out, warns)
			printFindings(s.Out, errs)
			what := strings.Join(args, ", ")
			if len(args) > 1 {
				what = fmt.Sprintf("%d packages", len(args))
			}
			if len(errs) > 0 {
				return exitCode(1, fmt.Errorf("%s: %s, %s", what, countNoun(len(errs), "error"), countNoun(len(warns), "warning")))
			}
			valid := "package is valid"
			if len(args) > 1 {
				valid = "packages are valid"
			}
			if len(warns) > 0 {
				fmt.Fprintf(s.Out, "%s (%s)\n", valid, countNoun(len(warns), "warning"))
			} else {
				fmt.Fprintln(s.Out, valid)
			}
			return nil
		},
	}
	limits.addRender(cmd.Flags())
	return cmd
}

// readPackage loads and verifies the package in dir, within the render limits of ctx. The
// package is nil when it could not be read; the findings name files by their path on disk.
// Symbolic links leading out of dir are not followed (localFS).
func readPackage(ctx context.Context, dir string) (*manifests.Package, manifests.Findings) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, manifests.Findings{{Severity: manifests.SeverityError, File: dir, Message: fmt.Sprintf("cannot read the package directory: %v", pathErrorCause(err))}}
	}
	if !fi.IsDir() {
		return nil, manifests.Findings{{Severity: manifests.SeverityError, File: dir, Message: "not a directory: give the directory holding operator.yaml"}}
	}
	fsys, err := openLocal(dir)
	if err != nil {
		return nil, manifests.Findings{{Severity: manifests.SeverityError, File: dir, Message: fmt.Sprintf("cannot read the package directory: %v", pathErrorCause(err))}}
	}
	defer fsys.Close()
	p, err := manifests.Load(fsys, ".")
	if err != nil {
		var fs manifests.Findings
		if !errors.As(err, &fs) {
			fs = manifests.Findings{{Severity: manifests.SeverityError, File: dir, Message: err.Error()}}
		}
		return nil, onDisk(dir, fs)
	}
	return p, onDisk(dir, manifests.VerifyContext(ctx, p))
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
