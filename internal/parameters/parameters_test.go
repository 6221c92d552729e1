package parameters_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/internal/parameters"
	"github.com/kudod-dev/kudod/manifests"
)

func pkg() *manifests.Package {
	def := manifests.StringValue("vault")
	return &manifests.Package{Name: "vault-db", OperatorVersion: "1.0.0", Parameters: []*manifests.Parameter{
		{Name: "DB_USER", Default: &def},
		{Name: "ROOT_CODE", Required: true, Sensitive: true, Trigger: "rotate"},
		{Name: "PORT", Type: manifests.TypeInteger, Default: &def},
	}}
}

func secret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

type fakeGit map[string]*manifests.Instance

func (g fakeGit) Instance(_ context.Context, _, _, key string) (*manifests.Instance, error) {
	if in, ok := g[key]; ok {
		return in, nil
	}
	return nil, errors.New("no such instance")
}

func instance(refs ...v1alpha1.ParameterSource) *v1alpha1.Instance {
	return &v1alpha1.Instance{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "db"}, Spec: v1alpha1.InstanceSpec{ParametersFrom: refs, Source: v1alpha1.SourceRef{Repository: "r", Revision: "abcdef0123"}}}
}

func resolver(objs ...client.Object) (*parameters.Resolver, *mask.Masker) {
	m := mask.New()
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(objs...).Build()
	return &parameters.Resolver{Reader: c, Git: fakeGit{}, Masker: m}, m
}

func TestResolveParametersFrom(t *testing.T) {
	creds := secret("db-creds", map[string]string{"password": "s3cr3t-root-code", "username": "admin"})
	whole := secret("all", map[string]string{"DB_USER": "alice", "ROOT_CODE": "s3cr3t-from-all", "unrelated": "x"})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "settings"}, Data: map[string]string{"port": "5432"}}
	r, m := resolver(creds, whole, cm)

	inst := instance(
		v1alpha1.ParameterSource{Kind: "Secret", Name: "db-creds", Key: "password", Parameter: "ROOT_CODE"},
		v1alpha1.ParameterSource{Kind: "ConfigMap", Name: "settings", Key: "port", Parameter: "PORT"},
		v1alpha1.ParameterSource{Kind: "Secret", Name: "missing", Optional: true},
	)
	inst.Spec.Parameters = map[string]string{"DB_USER": "bob"}
	v, err := r.Resolve(context.Background(), inst, pkg())
	if err != nil {
		t.Fatal(err)
	}
	if v.Params["ROOT_CODE"] != "s3cr3t-root-code" || v.Params["PORT"] != "5432" || v.Params["DB_USER"] != "bob" {
		t.Errorf("params = %v", v.Params)
	}
	if len(v.Sources) != 3 || v.Sources[0].Digest == "" || v.Sources[2].Digest != "" || strings.Join(v.Sources[0].Parameters, ",") != "ROOT_CODE" {
		t.Errorf("sources = %+v", v.Sources)
	}
	for _, s := range v.Sources {
		if strings.Contains(s.Digest, "s3cr3t") {
			t.Errorf("a digest holds the value: %s", s.Digest)
		}
	}
	if got := m.Mask("the password is s3cr3t-root-code"); got != "the password is <sensitive>" {
		t.Errorf("the masker did not learn the value: %q", got)
	}

	// A whole object: every key that is a parameter; inline values win.
	inst = instance(v1alpha1.ParameterSource{Kind: "Secret", Name: "all"})
	inst.Spec.Parameters = map[string]string{"DB_USER": "bob"}
	v, err = r.Resolve(context.Background(), inst, pkg())
	if err != nil {
		t.Fatal(err)
	}
	if v.Params["ROOT_CODE"] != "s3cr3t-from-all" || v.Params["DB_USER"] != "bob" || v.Params["unrelated"] != "" {
		t.Errorf("whole object: %v", v.Params)
	}
	if strings.Join(v.Sources[0].Parameters, ",") != "DB_USER,ROOT_CODE" {
		t.Errorf("whole object sources: %+v", v.Sources)
	}
}

func TestResolveFailures(t *testing.T) {
	bad := secret("bad", map[string]string{"port": "s3cr3t-not-a-number"})
	r, _ := resolver(secret("db-creds", map[string]string{"password": "x"}), bad)
	cases := []struct {
		name string
		refs []v1alpha1.ParameterSource
		msg  string
	}{
		{"a missing object", []v1alpha1.ParameterSource{{Kind: "Secret", Name: "nope", Key: "password", Parameter: "ROOT_CODE"}}, "spec.parametersFrom[0]: Secret nope not found in namespace ns"},
		{"a missing key", []v1alpha1.ParameterSource{{Kind: "Secret", Name: "db-creds", Key: "pass", Parameter: "ROOT_CODE"}}, "spec.parametersFrom[0]: Secret db-creds in namespace ns has no key pass"},
		{"an invalid value", []v1alpha1.ParameterSource{{Kind: "Secret", Name: "bad", Key: "port", Parameter: "PORT"}, {Kind: "Secret", Name: "db-creds", Key: "password", Parameter: "ROOT_CODE"}}, "spec.parametersFrom[0]: Secret bad: parameter PORT: <sensitive> is not an integer"},
		{"a required parameter nobody sets", []v1alpha1.ParameterSource{{Kind: "ConfigMap", Name: "absent", Optional: true}}, "parameter ROOT_CODE of vault-db-1.0.0 is required and has no default"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			v, err := r.Resolve(context.Background(), instance(tt.refs...), pkg())
			if err == nil || !parameters.IsError(err) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %v, want %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows a value: %v", err)
			}
			if v == nil || len(v.Sources) != len(tt.refs) {
				t.Errorf("no sources to record: %+v", v)
			}
		})
	}
}

func TestResolveSensitiveValuesFromGit(t *testing.T) {
	in := &manifests.Instance{Namespace: "ns", Name: "db", Parameters: map[string]manifests.Value{"ROOT_CODE": manifests.StringValue("s3cr3t-in-git")}}
	r, m := resolver()
	r.Git = fakeGit{"ns/db": in}
	inst := instance()
	inst.Spec.Parameters = map[string]string{"ROOT_CODE": manifests.SensitiveDigest("ns", "db", "ROOT_CODE", "s3cr3t-in-git"), "DB_USER": "bob"}
	v, err := r.Resolve(context.Background(), inst, pkg())
	if err != nil {
		t.Fatal(err)
	}
	if v.Params["ROOT_CODE"] != "s3cr3t-in-git" || v.Params["DB_USER"] != "bob" {
		t.Errorf("params = %v", v.Params)
	}
	if m.Mask("s3cr3t-in-git") != "<sensitive>" {
		t.Error("the masker did not learn the value")
	}
	inst.Spec.Parameters["ROOT_CODE"] = manifests.SensitiveDigest("ns", "db", "ROOT_CODE", "another")
	if _, err := r.Resolve(context.Background(), inst, pkg()); err == nil || !strings.Contains(err.Error(), "no longer holds the value") {
		t.Errorf("a digest git does not match: %v", err)
	}
}

func TestChanges(t *testing.T) {
	st := func(name, digest string, params ...string) v1alpha1.ParameterSourceStatus {
		return v1alpha1.ParameterSourceStatus{Kind: "Secret", Name: name, Parameters: params, Digest: digest}
	}
	recorded := []v1alpha1.ParameterSourceStatus{st("db-creds", "sha256:1", "ROOT_CODE"), st("all", "sha256:2", "DB_USER"), st("gone", "")}
	params, reasons := parameters.Changes(recorded, []v1alpha1.ParameterSourceStatus{st("db-creds", "sha256:9", "ROOT_CODE"), st("all", "sha256:2", "DB_USER"), st("gone", "sha256:3", "PORT")})
	if strings.Join(params, ",") != "PORT,ROOT_CODE" || strings.Join(reasons, ";") != "Secret db-creds changed;Secret gone changed" {
		t.Errorf("params %v, reasons %v", params, reasons)
	}
	if params, reasons := parameters.Changes(recorded, recorded); params != nil || reasons != nil {
		t.Errorf("no change: %v %v", params, reasons)
	}
}
