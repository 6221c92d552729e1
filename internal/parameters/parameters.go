// Package parameters gives a plan the values it renders with (docs/secrets.md): the Instance's
// spec.parameters, where a sensitive value is held only as its digest and is read again from
// the instance file at the Instance's revision (decrypted when the file is encrypted), and the
// values of spec.parametersFrom, read from Secrets and ConfigMaps in the instance's namespace
// when the plan renders. None of these values is ever written to the Instance; the Masker
// learns each of them, so no output shows one.
package parameters

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/manifests"
)

// GitInstances reads instance files at a revision (store.Store).
type GitInstances interface {
	Instance(ctx context.Context, repository, revision, key string) (*manifests.Instance, error)
}

// Resolver resolves an instance's parameter values.
type Resolver struct {
	// Reader reads Secrets and ConfigMaps. It must read the API server directly (the manager's
	// API reader): a cached client would watch every Secret of the cluster.
	Reader client.Reader
	// Git reads the instance file at the Instance's revision.
	Git GitInstances
	// Masker learns every sensitive value resolved.
	Masker *mask.Masker
}

// Values are what a plan renders with.
type Values struct {
	// Params are the instance's explicit values, sensitive ones as they are.
	Params map[string]string
	// Sources are the digests of what each parametersFrom reference gave, for
	// status.parametersFrom.
	Sources []v1alpha1.ParameterSourceStatus
}

// Error is a problem with what an instance names (a missing Secret or key, a value its
// parameter does not accept): the plan fails with it, nothing written. Other errors (the API
// server cannot be reached) are worth retrying.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

func errorf(format string, args ...any) error { return &Error{msg: fmt.Sprintf(format, args...)} }

// IsError reports whether err is an Error.
func IsError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// Resolve returns the values an Instance's plans render with.
func (r *Resolver) Resolve(ctx context.Context, inst *v1alpha1.Instance, pkg *manifests.Package) (*Values, error) {
	params := maps.Clone(inst.Spec.Parameters)
	if params == nil {
		params = map[string]string{}
	}
	var fromGit *manifests.Instance
	for name, v := range params {
		if !manifests.IsSensitiveDigest(v) {
			continue
		}
		if fromGit == nil {
			src := inst.Spec.Source
			in, err := r.Git.Instance(ctx, src.Repository, src.Revision, inst.Namespace+"/"+inst.Name)
			if err != nil {
				return nil, fmt.Errorf("read the sensitive values of %s/%s from git: %w", inst.Namespace, inst.Name, err)
			}
			fromGit = in
		}
		value, ok := fromGit.Parameters[name]
		if !ok || !manifests.SameSensitive(inst.Namespace, inst.Name, name, v, value.Text) {
			return nil, errorf("parameter %s: the instance file at %s no longer holds the value the Instance was planned with", name, v1alpha1.ShortRevision(inst.Spec.Source.Revision))
		}
		params[name] = value.Text
		r.Masker.Add(value.Text)
	}
	values, sources, err := r.ReadSources(ctx, inst.Namespace, inst.Name, inst.Spec.ParametersFrom, pkg)
	if err != nil {
		if sources != nil {
			return &Values{Sources: sources}, err // what the references hold, to record
		}
		return nil, err
	}
	// Values written in the instance file win over whole objects, as Flux's inline values win
	// over valuesFrom; a parameter named by both is refused when the file is read.
	for k, v := range values {
		if _, inline := params[k]; !inline {
			params[k] = v
		}
	}
	for _, par := range pkg.Parameters {
		if _, ok := params[par.Name]; !ok && par.Required && par.Default == nil && len(inst.Spec.ParametersFrom) > 0 {
			return &Values{Sources: sources}, errorf("parameter %s of %s is required and has no default, and spec.parametersFrom did not set it", par.Name, pkg.ID())
		}
	}
	return &Values{Params: params, Sources: sources}, nil
}

// ReadSources reads the values of parametersFrom references: each Secret or ConfigMap in the
// instance's namespace with one GET, checked against the package's parameters. Every value is
// sensitive. A missing object or key is an Error naming it, unless the reference is optional;
// the statuses are complete even then (a missing one without a digest), so that the object's
// appearance is a change.
func (r *Resolver) ReadSources(ctx context.Context, namespace, instance string, refs []v1alpha1.ParameterSource, pkg *manifests.Package) (map[string]string, []v1alpha1.ParameterSourceStatus, error) {
	if len(refs) == 0 {
		return nil, nil, nil
	}
	values := map[string]string{}
	statuses := make([]v1alpha1.ParameterSourceStatus, 0, len(refs))
	var problem error
	fail := func(err error) {
		if problem == nil {
			problem = err
		}
	}
	for i, ref := range refs {
		where := fmt.Sprintf("spec.parametersFrom[%d]", i)
		data, found, err := r.read(ctx, namespace, ref)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: read %s %s/%s: %w", where, ref.Kind, namespace, ref.Name, err)
		}
		st := v1alpha1.ParameterSourceStatus{Kind: ref.Kind, Name: ref.Name, Key: ref.Key}
		if !found {
			if !ref.Optional {
				fail(errorf("%s: %s %s not found in namespace %s", where, ref.Kind, ref.Name, namespace))
			}
			statuses = append(statuses, st)
			continue
		}
		got := map[string]string{}
		if ref.Key != "" {
			v, ok := data[ref.Key]
			if !ok {
				if !ref.Optional {
					fail(errorf("%s: %s %s in namespace %s has no key %s", where, ref.Kind, ref.Name, namespace, ref.Key))
				}
				statuses = append(statuses, st)
				continue
			}
			parameter := ref.Parameter
			if parameter == "" {
				parameter = ref.Key
			}
			got[parameter] = v
		} else {
			// Every key that is a parameter of the package; others (a username next to a
			// password) are not kudod's.
			for k, v := range data {
				if pkg.Parameter(k) != nil {
					got[k] = v
				}
			}
		}
		names := make([]string, 0, len(got))
		for name, v := range got {
			r.Masker.Add(v)
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			v := got[name]
			if par := pkg.Parameter(name); par == nil {
				fail(errorf("%s: %s %s: %s has no parameter %s", where, ref.Kind, ref.Name, pkg.ID(), name))
			} else if err := par.ValidateValue(manifests.StringValue(v)); err != nil {
				fail(errorf("%s: %s %s: parameter %s: %s", where, ref.Kind, ref.Name, name, manifests.HideValue(err.Error(), v)))
			}
			values[name] = v
		}
		st.Parameters = names
		st.Digest = digest(namespace, instance, ref, names, got)
		statuses = append(statuses, st)
	}
	return values, statuses, problem
}

// read returns an object's data as strings; found is false when it does not exist.
func (r *Resolver) read(ctx context.Context, namespace string, ref v1alpha1.ParameterSource) (map[string]string, bool, error) {
	key := types.NamespacedName{Namespace: namespace, Name: ref.Name}
	var err error
	data := map[string]string{}
	switch ref.Kind {
	case "Secret":
		s := &corev1.Secret{}
		if err = r.Reader.Get(ctx, key, s); err == nil {
			for k, v := range s.Data {
				data[k] = string(v)
			}
			for k, v := range s.StringData {
				data[k] = v
			}
		}
	case "ConfigMap":
		cm := &corev1.ConfigMap{}
		if err = r.Reader.Get(ctx, key, cm); err == nil {
			maps.Copy(data, cm.Data)
			for k, v := range cm.BinaryData {
				data[k] = string(v)
			}
		}
	default:
		return nil, false, errorf("kind %q is not Secret or ConfigMap", ref.Kind)
	}
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return data, true, nil
}

// digest is a salted SHA-256 digest of what a reference gave: it changes when a value changes
// and shows none of them.
func digest(namespace, instance string, ref v1alpha1.ParameterSource, names []string, values map[string]string) string {
	h := sha256.New()
	for _, s := range []string{"kudod.dev/parametersFrom", namespace, instance, ref.Kind, ref.Name, ref.Key} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(values[n]))
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Changes compares what the references give now with what the last plan rendered with
// (status.parametersFrom): the parameters whose values may have changed and a reason per
// changed object ("Secret db-creds changed"). References added or removed in git are the
// planner's (planner.Decide); only those in both are compared here.
func Changes(recorded, now []v1alpha1.ParameterSourceStatus) (parameters, reasons []string) {
	seen := map[string]bool{}
	described := map[string]bool{}
	for _, n := range now {
		for _, r := range recorded {
			if r.Kind != n.Kind || r.Name != n.Name || r.Key != n.Key || r.Digest == n.Digest {
				continue
			}
			for _, p := range append(append([]string{}, r.Parameters...), n.Parameters...) {
				if !seen[p] {
					seen[p] = true
					parameters = append(parameters, p)
				}
			}
			if what := n.Kind + " " + n.Name; !described[what] {
				described[what] = true
				reasons = append(reasons, what+" changed")
			}
		}
	}
	sort.Strings(parameters)
	return parameters, reasons
}
