package manifests

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kudod-dev/kudod/test/testenv"
)

// servedBy is a cluster serving exactly the given "group/version/Kind"s ("v1/Kind" for core).
func servedBy(gvks ...string) Served {
	set := map[string]bool{}
	for _, s := range gvks {
		set[s] = true
	}
	return func(gvk schema.GroupVersionKind) bool {
		return set[gvk.GroupVersion().String()+"/"+gvk.Kind]
	}
}

// A Kubernetes 1.37 cluster: only GA versions.
var servedGA = servedBy(
	"policy/v1/PodDisruptionBudget", "apps/v1/Deployment", "apps/v1/StatefulSet", "apps/v1/DaemonSet",
	"apiextensions.k8s.io/v1/CustomResourceDefinition", "rbac.authorization.k8s.io/v1/ClusterRole",
	"batch/v1/CronJob", "networking.k8s.io/v1/NetworkPolicy", "networking.k8s.io/v1/Ingress", "v1/ConfigMap",
)

func yamlObject(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := sigsyaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUpgradeAPIVersion(t *testing.T) {
	tests := []struct {
		name    string
		served  Served
		in      string
		want    string // the object after the upgrade, as YAML
		upgrade *APIUpgrade
		wantErr string
	}{
		{
			name:    "PDB policy/v1beta1 to v1 on a cluster without v1beta1",
			served:  servedGA,
			in:      "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: zk}\nspec: {maxUnavailable: 1, selector: {matchLabels: {app: zk}}}\n",
			want:    "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: zk}\nspec: {maxUnavailable: 1, selector: {matchLabels: {app: zk}}}\n",
			upgrade: &APIUpgrade{Object: "PodDisruptionBudget/zk", From: "policy/v1beta1", To: "policy/v1"},
		},
		{
			name:   "PDB left alone where v1beta1 is served",
			served: servedBy("policy/v1beta1/PodDisruptionBudget", "policy/v1/PodDisruptionBudget"),
			in:     "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: zk}\n",
			want:   "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: zk}\n",
		},
		{
			name:    "apps/v1beta2 Deployment without selector gets one from the pod labels",
			served:  servedGA,
			in:      "apiVersion: apps/v1beta2\nkind: Deployment\nmetadata: {name: web}\nspec: {template: {metadata: {labels: {app: web, tier: front}}}}\n",
			want:    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {selector: {matchLabels: {app: web, tier: front}}, template: {metadata: {labels: {app: web, tier: front}}}}\n",
			upgrade: &APIUpgrade{Object: "Deployment/web", From: "apps/v1beta2", To: "apps/v1"},
		},
		{
			name:    "extensions/v1beta1 Deployment keeps its selector",
			served:  servedGA,
			in:      "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: web}\nspec: {selector: {matchLabels: {app: x}}, template: {metadata: {labels: {app: x, v: '2'}}}}\n",
			want:    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {selector: {matchLabels: {app: x}}, template: {metadata: {labels: {app: x, v: '2'}}}}\n",
			upgrade: &APIUpgrade{Object: "Deployment/web", From: "extensions/v1beta1", To: "apps/v1"},
		},
		{
			name:   "CRD v1beta1 to v1: version, schema, subresources and columns move under the version",
			served: servedGA,
			in: `apiVersion: apiextensions.k8s.io/v1beta1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec:
  group: example.com
  names: {kind: Thing, plural: things}
  version: v1alpha1
  validation:
    openAPIV3Schema: {type: object, properties: {spec: {type: object}}}
  subresources: {status: {}}
  additionalPrinterColumns:
    - {name: Age, type: date, JSONPath: .metadata.creationTimestamp}
`,
			want: `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec:
  group: example.com
  names: {kind: Thing, plural: things}
  scope: Namespaced
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, properties: {spec: {type: object}}}
      subresources: {status: {}}
      additionalPrinterColumns:
        - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
`,
			upgrade: &APIUpgrade{Object: "CustomResourceDefinition/things.example.com", From: "apiextensions.k8s.io/v1beta1", To: "apiextensions.k8s.io/v1"},
		},
		{
			name:   "CRD with versions and no schema accepts any field; the first version stores",
			served: servedGA,
			in: `apiVersion: apiextensions.k8s.io/v1beta1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec:
  scope: Cluster
  versions: [{name: v1}, {name: v2, storage: false}]
  conversion: {strategy: Webhook, webhookClientConfig: {url: "https://x"}}
`,
			want: `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec:
  scope: Cluster
  versions:
    - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
    - {name: v2, served: true, storage: false, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
  conversion: {strategy: Webhook, webhook: {clientConfig: {url: "https://x"}, conversionReviewVersions: [v1beta1]}}
`,
			upgrade: &APIUpgrade{Object: "CustomResourceDefinition/things.example.com", From: "apiextensions.k8s.io/v1beta1", To: "apiextensions.k8s.io/v1"},
		},
		{
			name:    "CRD without a version",
			served:  servedGA,
			in:      "apiVersion: apiextensions.k8s.io/v1beta1\nkind: CustomResourceDefinition\nmetadata: {name: t.example.com}\nspec: {group: example.com}\n",
			wantErr: "CustomResourceDefinition/t.example.com: upgrade to apiextensions.k8s.io/v1: neither spec.version nor spec.versions is set",
		},
		{
			name:    "an unserved version without a compatible successor names the object",
			served:  servedGA,
			in:      "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: web}\n",
			wantErr: "Ingress/web: the cluster does not serve extensions/v1beta1 Ingress and kudod knows no compatible successor",
		},
		{
			name:    "a successor the cluster does not serve either",
			served:  servedBy("v1/ConfigMap"),
			in:      "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: zk}\n",
			wantErr: "PodDisruptionBudget/zk: the cluster serves neither policy/v1beta1 nor policy/v1",
		},
		{
			name:   "a served GA object is untouched",
			served: servedGA,
			in:     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
			want:   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := yamlObject(t, tt.in)
			up, err := UpgradeAPIVersion(obj, tt.served)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(up, tt.upgrade) {
				t.Errorf("upgrade %+v, want %+v", up, tt.upgrade)
			}
			if want := yamlObject(t, tt.want); !reflect.DeepEqual(obj.Object, want.Object) {
				got, _ := sigsyaml.Marshal(obj.Object)
				t.Errorf("got\n%s", got)
			}
		})
	}
}

// quorum ships a policy/v1beta1 PDB, as packages written for Kubernetes 1.14 do, and 1.37
// rejects it: rendered and upgraded, it becomes policy/v1, with a message naming the object.
func TestUpgradePDB(t *testing.T) {
	upgradePDB(t, testenv.FixtureOperator(t, "quorum", "1.37.0-0.2.0"))
}

// The same with zookeeper's PDB.
func TestCatalogUpgradePDB(t *testing.T) {
	upgradePDB(t, testenv.CatalogOperator(t, "zookeeper", "3.6.2-0.3.3"))
}

func upgradePDB(t *testing.T, dir string) {
	p := loadDir(t, dir)
	objs, err := p.Render("pdb.yaml", RenderInput{Name: "zk", Namespace: "data"})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].GetAPIVersion() != "policy/v1beta1" {
		t.Fatalf("%s's pdb.yaml renders %d objects, first %s", p.Name, len(objs), objs[0].GetAPIVersion())
	}
	up, err := UpgradeAPIVersion(objs[0], servedGA)
	if err != nil {
		t.Fatal(err)
	}
	if objs[0].GetAPIVersion() != "policy/v1" || up == nil {
		t.Fatalf("apiVersion %s, upgrade %v", objs[0].GetAPIVersion(), up)
	}
	if msg := up.String(); !strings.Contains(msg, "PodDisruptionBudget/zk-pdb upgraded from policy/v1beta1 to policy/v1") {
		t.Errorf("message %q", msg)
	}
}

// Every object of the legacy package is in a retired API version and moves to its successor
// on a cluster that serves only GA versions.
func TestUpgradeLegacyPackage(t *testing.T) {
	p := loadDir(t, testenv.FixtureOperator(t, "legacy", "1.0.0"))
	served := servedBy("policy/v1/PodDisruptionBudget", "apps/v1/Deployment", "apps/v1/StatefulSet",
		"apiextensions.k8s.io/v1/CustomResourceDefinition", "rbac.authorization.k8s.io/v1/Role", "rbac.authorization.k8s.io/v1/RoleBinding")
	want := map[string]string{
		"CustomResourceDefinition": "apiextensions.k8s.io/v1", "Role": "rbac.authorization.k8s.io/v1", "RoleBinding": "rbac.authorization.k8s.io/v1",
		"PodDisruptionBudget": "policy/v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1",
	}
	for _, key := range p.TemplateKeys() {
		objs, err := p.Render(key, RenderInput{Name: "old", Namespace: "data"})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			up, err := UpgradeAPIVersion(o, served)
			if err != nil {
				t.Errorf("%s: %v", key, err)
				continue
			}
			if up == nil || o.GetAPIVersion() != want[o.GetKind()] {
				t.Errorf("%s: %s is %s after the upgrade %v, want %s", key, o.GetKind(), o.GetAPIVersion(), up, want[o.GetKind()])
			}
			delete(want, o.GetKind())
		}
	}
	if len(want) != 0 {
		t.Errorf("legacy has no %v", want)
	}
}
