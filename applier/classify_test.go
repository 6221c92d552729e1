package applier

import (
	"errors"
	"fmt"
	"net"
	"testing"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestClassify(t *testing.T) {
	gr := schema.GroupResource{Resource: "configmaps"}
	cm := &unstructured.Unstructured{}
	cm.SetAPIVersion("v1")
	cm.SetKind("ConfigMap")
	cm.SetName("a")
	undeclared := &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 500,
		Message: "failed to create typed patch object (default/a; /v1, Kind=ConfigMap): .binaryDatta: field not declared in schema"}}
	tests := []struct {
		name  string
		err   error
		fatal bool
	}{
		{"invalid object", apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, "a", field.ErrorList{field.Required(field.NewPath("data"), "")}), true},
		{"bad request", apierrors.NewBadRequest("no"), true},
		{"forbidden", apierrors.NewForbidden(gr, "a", errors.New("rbac")), true},
		{"unknown kind", &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "example.com", Kind: "Widget"}}, true},
		{"too large", apierrors.NewRequestEntityTooLargeError("big"), true},
		{"wrapped invalid", fmt.Errorf("apply: %w", apierrors.NewBadRequest("no")), true},
		{"a dry-run refused for another reason", ssaerrors.NewDryRunErr(apierrors.NewAlreadyExists(gr, "a"), cm), true},
		{"the same refusal outside a dry-run", apierrors.NewAlreadyExists(gr, "a"), false},
		{"timeout", apierrors.NewTimeoutError("slow", 1), false},
		{"server timeout", apierrors.NewServerTimeout(gr, "get", 1), false},
		{"too many requests", apierrors.NewTooManyRequests("later", 1), false},
		{"internal error", apierrors.NewInternalError(errors.New("etcd")), false},
		// Server-side apply's answer to a field the kind does not have, as the API server sends it.
		{"undeclared field", undeclared, true},
		{"undeclared field in a dry-run", ssaerrors.NewDryRunErr(undeclared, cm), true},
		{"unavailable", apierrors.NewServiceUnavailable("down"), false},
		{"conflict", apierrors.NewConflict(gr, "a", errors.New("modified")), false},
		{"not found", apierrors.NewNotFound(gr, "a"), false},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false},
		{"unknown error", errors.New("something"), false},
		{"already fatal", fatal(errors.New("render")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(tt.err)
			if IsFatal(err) != tt.fatal {
				t.Errorf("classify(%v) fatal = %v, want %v", tt.err, IsFatal(err), tt.fatal)
			}
			if !errors.Is(err, tt.err) && !errors.Is(tt.err, err) {
				t.Errorf("classify lost the error: %v", err)
			}
		})
	}
	if classify(nil) != nil {
		t.Error("classify(nil) is not nil")
	}
}
