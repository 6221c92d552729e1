package applier

import (
	"errors"
	"net"
	"strings"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FatalError ends a plan with FATAL_ERROR: retrying cannot help.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

func fatal(err error) error {
	var fe *FatalError
	if errors.As(err, &fe) {
		return err
	}
	return &FatalError{Err: err}
}

// IsFatal reports whether err ended a plan with FATAL_ERROR.
func IsFatal(err error) bool {
	var fe *FatalError
	return errors.As(err, &fe)
}

// isUndeclaredField reports server-side apply refusing an object with a field its kind does
// not have: the API server answers it with 500 Internal Server Error, "failed to create typed
// patch object (…): .spec.x: field not declared in schema" (kubernetes/kubernetes#139253),
// which retrying cannot fix.
func isUndeclaredField(err error) bool {
	return apierrors.IsInternalError(err) && strings.Contains(err.Error(), "failed to create typed patch object")
}

// classify marks errors that retrying cannot fix as fatal: the API server rejected the object
// (invalid, bad request, forbidden, unknown kind). Everything else (timeouts, 5xx, 429,
// connection errors, conflicts) is transient and retried until the step times out — KUDO
// retried those forever (KUDO #1764).
func classify(err error) error {
	if err == nil {
		return nil
	}
	var netErr net.Error
	switch {
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsForbidden(err),
		apierrors.IsMethodNotSupported(err), apierrors.IsNotAcceptable(err), apierrors.IsUnsupportedMediaType(err),
		apierrors.IsRequestEntityTooLargeError(err), meta.IsNoMatchError(err), isUndeclaredField(err):
		return fatal(err)
	case errors.As(err, &netErr), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsTooManyRequests(err), apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsConflict(err), apierrors.IsNotFound(err):
		return err
	}
	var dr *ssaerrors.DryRunErr
	if errors.As(err, &dr) {
		// A dry-run refused for a reason other than the above (webhook denial, admission) is final.
		if apierrors.ReasonForError(err) != metav1.StatusReasonUnknown {
			return fatal(err)
		}
	}
	return err
}
