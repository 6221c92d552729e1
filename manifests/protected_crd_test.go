package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// A v1beta1 CRD in a protected group (*.k8s.io, *.kubernetes.io) gets the annotation v1
// requires when kudod upgrades it (kubernetes/enhancements#1111).
func TestUpgradeCRDOfAProtectedGroup(t *testing.T) {
	const crd = `apiVersion: apiextensions.k8s.io/v1beta1
kind: CustomResourceDefinition
metadata: {name: snapshots.snapshot.storage.k8s.io%s}
spec: {group: %s, names: {kind: Snapshot, plural: snapshots}, version: v1beta1}
`
	tests := []struct {
		name, group, annotations string
		want                     string // the annotation after the upgrade; "" for none
	}{
		{name: "a *.k8s.io group", group: "snapshot.storage.k8s.io", want: unapprovedValue},
		{name: "a *.kubernetes.io group", group: "x.kubernetes.io", want: unapprovedValue},
		{name: "k8s.io itself", group: "k8s.io", want: unapprovedValue},
		{name: "an annotation the template sets is kept", group: "snapshot.storage.k8s.io", annotations: `, annotations: {api-approved.kubernetes.io: "https://github.com/kubernetes-csi/external-snapshotter/pull/419"}`, want: "https://github.com/kubernetes-csi/external-snapshotter/pull/419"},
		{name: "another group needs none", group: "example.com"},
		{name: "a group that merely ends in k8s.io needs none", group: "notk8s.io"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := yamlObject(t, strings.Replace(strings.Replace(crd, "%s", tt.annotations, 1), "%s", tt.group, 1))
			up, err := UpgradeAPIVersion(obj, servedGA)
			if err != nil {
				t.Fatal(err)
			}
			got := obj.GetAnnotations()[AnnotationAPIApproved]
			if got != tt.want {
				t.Fatalf("annotation %q, want %q", got, tt.want)
			}
			added := tt.want == unapprovedValue
			if mentioned := strings.Contains(up.String(), AnnotationAPIApproved); mentioned != added {
				t.Errorf("upgrade message %q: mentions the annotation %v, want %v", up, mentioned, added)
			}
		})
	}
}

// kudod verify warns about such a CRD, naming the template and line.
func TestVerifyWarnsAboutProtectedCRDs(t *testing.T) {
	p, err := Load(os.DirFS(filepath.Join("..", "testdata", "operators", "protected-crd", "0.1.0")), ".")
	if err != nil {
		t.Fatal(err)
	}
	fs := Verify(p)
	if fs.HasErrors() {
		t.Fatalf("errors: %v", fs.Errors())
	}
	var found bool
	for _, f := range fs.Warnings() {
		if f.File == "templates/crd.yaml" && f.Line == 2 && strings.Contains(f.Message, "apiextensions.k8s.io/v1beta1 in the protected group fixtures.k8s.io") && strings.Contains(f.Message, AnnotationAPIApproved) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no warning at templates/crd.yaml:2 about the annotation: %v", fs.Warnings())
	}

	v1 := func(annotations string) Findings {
		fsys := fstest.MapFS{
			"operator.yaml": {Data: []byte("apiVersion: kudo.dev/v1beta1\nname: v1crd\noperatorVersion: 0.1.0\nkubernetesVersion: 1.22.0\ntasks:\n  - name: crds\n    kind: Apply\n    spec:\n      resources: [crds.yaml]\nplans:\n  deploy:\n    phases:\n      - name: main\n        steps:\n          - name: crds\n            tasks: [crds]\n")},
			"params.yaml":   {Data: []byte("apiVersion: kudo.dev/v1beta1\nparameters: []\n")},
			"templates/crds.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: things.x.k8s.io\n" + annotations +
				"spec: {group: x.k8s.io, scope: Namespaced, names: {kind: Thing, plural: things}, versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]}\n")},
		}
		p, err := Load(fsys, ".")
		if err != nil {
			t.Fatal(err)
		}
		return Verify(p).Warnings()
	}
	if ws := v1(""); len(ws) != 1 || ws[0].Line != 6 || !strings.Contains(ws[0].Message, "the API server refuses it") {
		t.Errorf("a v1 CRD in a protected group without the annotation: %v", ws)
	}
	if ws := v1("  annotations: {api-approved.kubernetes.io: \"unapproved, experimental-only\"}\n"); len(ws) != 0 {
		t.Errorf("a v1 CRD with the annotation: %v", ws)
	}
}
