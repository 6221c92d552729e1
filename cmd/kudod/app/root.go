// Package app is kudod's command line: one file per command, each a thin layer over the
// packages that do the work.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// ExitError carries a command's exit code: 1 for findings, 2 for usage and errors (docs/cli.md,
// Exit codes).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// exitCode wraps err so Execute exits with code; a nil err with a code exits silently.
func exitCode(code int, err error) error { return &ExitError{Code: code, Err: err} }

// streams are where a command writes: data to Out, messages to Err.
type streams struct {
	Out io.Writer
	Err io.Writer
}

// NewRootCommand builds the kudod command tree.
func NewRootCommand(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:           "kudod",
		Short:         "kudod runs KUDO operators' lifecycle plans from git",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return exitCode(2, fmt.Errorf("%w\nSee '%s --help'", err, c.CommandPath()))
	})
	root.AddCommand(
		newVersionCommand(s),
		newRunCommand(s),
		newPlanCommand(s),
		newPreviewCommand(s),
		newStatusCommand(s),
		newTriggerCommand(s),
		newAbortCommand(s),
		newRetryCommand(s), newRollbackCommand(s), newHistoryCommand(s),
		newApproveCommand(s), newRejectCommand(s),
		newReconcileCommand(s), newVerifyCommand(s), newRenderCommand(s),
		newUICommand(s),
	)
	return root
}

// Execute runs the command line and returns the process exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRootCommand(streams{Out: stdout, Err: stderr})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(stderr, "Error:", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintln(stderr, "Error:", err)
	// Cobra's own argument errors are usage errors.
	return 2
}
