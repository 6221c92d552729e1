package deploy_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kudod-dev/kudod/internal/config"
)

// yamlBlocks returns the ```yaml blocks of a markdown file.
func yamlBlocks(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(data, -1) {
		blocks = append(blocks, string(m[1]))
	}
	return blocks
}

// remoteBase is how the documented overlay refers to deploy/.
const remoteBase = "github.com/kudod-dev/kudod//deploy?ref=v0.1.0"

// buildDocumentedOverlay writes the overlay whose files a markdown file shows as ```yaml blocks
// starting with "# <dir>/<file>", with deploy/ in place of the remote base, builds it with
// kustomize and returns the objects and the overlay's directory.
func buildDocumentedOverlay(t *testing.T, markdown, dir string) (*install, string) {
	t.Helper()
	deployDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(t.TempDir(), dir)
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	base, err := filepath.Rel(overlay, deployDir)
	if err != nil {
		t.Fatal(err)
	}
	written := 0
	for _, b := range yamlBlocks(t, markdown) {
		name, ok := strings.CutPrefix(strings.SplitN(b, "\n", 2)[0], "# "+dir+"/")
		if !ok {
			continue
		}
		b = strings.ReplaceAll(b, remoteBase, base)
		if err := os.WriteFile(filepath.Join(overlay, name), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
		written++
	}
	if written != 2 {
		t.Fatalf("%s shows %d files of %s, want kustomization.yaml and kudod.yaml", markdown, written, dir)
	}
	in := kustomize(t, overlay)
	return in, overlay
}

// configuration returns the kudod.yaml of an install's ConfigMap, which must equal want.
func (in *install) configuration(t *testing.T, want string) *config.Config {
	t.Helper()
	var data string
	for _, o := range in.objects {
		if o.GetKind() == "ConfigMap" {
			data = decode[corev1.ConfigMap](t, o).Data["kudod.yaml"]
		}
	}
	if data != want {
		t.Fatalf("the ConfigMap holds\n%s\nnot the overlay's kudod.yaml\n%s", data, want)
	}
	cfg, err := config.Parse([]byte(data), "/etc/kudod/kudod.yaml")
	if err != nil {
		t.Fatalf("the documented kudod.yaml is invalid:\n%v", err)
	}
	return cfg
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestDocumentedOverlayBuilds: the production overlay in docs/configuration.md builds against
// deploy/, replaces the configuration with a valid kudod.yaml, pins the image, and mounts the
// Secret where that kudod.yaml looks for every credential file.
func TestDocumentedOverlayBuilds(t *testing.T) {
	in, overlay := buildDocumentedOverlay(t, "../docs/configuration.md", "overlays/production")
	cfg := in.configuration(t, readFile(t, filepath.Join(overlay, "kudod.yaml")))

	pod := in.deployment(t).Spec.Template.Spec
	if image := pod.Containers[0].Image; image != "ghcr.io/kudod-dev/kudod:v0.1.0" {
		t.Errorf("image %s, want the pinned ghcr.io/kudod-dev/kudod:v0.1.0", image)
	}
	secretMounts := map[string]bool{}
	for _, m := range pod.Containers[0].VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == "kudod-credentials" {
				secretMounts[m.MountPath] = true
			}
		}
	}
	r := cfg.Repositories[0]
	for _, file := range []string{r.Auth.TokenFile, r.Webhook.SecretFile, r.Status.TokenFile} {
		if file == "" || !secretMounts[filepath.Dir(file)] {
			t.Errorf("credential file %q is not in the mounted Secret kudod-credentials (mounts %v)", file, secretMounts)
		}
	}
}

// TestDocumentedRolesAggregate: every ClusterRole in docs/configuration.md is a valid
// ClusterRole labelled for aggregation into kudod-operators, without wildcards.
func TestDocumentedRolesAggregate(t *testing.T) {
	roles := 0
	for _, b := range yamlBlocks(t, "../docs/configuration.md") {
		for _, doc := range bytes.Split([]byte(b), []byte("\n---\n")) {
			var head struct{ Kind string }
			if err := sigsyaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("a YAML block of docs/configuration.md does not parse: %v\n%s", err, doc)
			}
			if head.Kind != "ClusterRole" {
				continue
			}
			roles++
			role := &rbacv1.ClusterRole{}
			if err := sigsyaml.UnmarshalStrict(doc, role); err != nil {
				t.Fatalf("documented ClusterRole: %v\n%s", err, doc)
			}
			if role.Labels["kudod.dev/aggregate-to-manager"] != "true" {
				t.Errorf("documented ClusterRole %s lacks the label kudod.dev/aggregate-to-manager: \"true\"", role.Name)
			}
			for _, rule := range role.Rules {
				if slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Resources, "*") {
					t.Errorf("documented ClusterRole %s uses *", role.Name)
				}
			}
		}
	}
	if roles == 0 {
		t.Error("docs/configuration.md shows no ClusterRole")
	}
}

// TestDocumentedShardBuilds: the shard overlay in docs/scaling.md puts every namespaced object
// in the shard's namespace, prefixes every cluster-wide object but the shared CRD, binds the
// shard's own ServiceAccount, and gives the daemon its own repositories.
func TestDocumentedShardBuilds(t *testing.T) {
	in, overlay := buildDocumentedOverlay(t, "../docs/scaling.md", "shards/team-a")
	cfg := in.configuration(t, readFile(t, filepath.Join(overlay, "kudod.yaml")))
	if len(cfg.Repositories) == 0 {
		t.Fatal("the shard follows no repository")
	}
	const ns, prefix = "kudod-team-a", "team-a-"
	for _, o := range in.objects {
		id := o.GetKind() + "/" + o.GetName()
		switch o.GetKind() {
		case "CustomResourceDefinition":
		case "Namespace":
			if o.GetName() != ns {
				t.Errorf("the shard creates %s, want its namespace %s", id, ns)
			}
		case "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
			if !strings.HasPrefix(o.GetName(), prefix) {
				t.Errorf("%s is not prefixed %s: it would replace the default install's", id, prefix)
			}
		default:
			if o.GetNamespace() != ns {
				t.Errorf("%s is in namespace %q, want %s", id, o.GetNamespace(), ns)
			}
		}
		if kind := o.GetKind(); kind == "ClusterRoleBinding" || kind == "RoleBinding" {
			b := decode[rbacv1.RoleBinding](t, o)
			if len(b.Subjects) == 1 && b.Subjects[0].Kind == "User" && b.Subjects[0].Name == "kudod-preview" {
				continue // the preview user, shared by every install
			}
			if len(b.Subjects) != 1 || b.Subjects[0].Namespace != ns || b.Subjects[0].Name != prefix+"kudod" {
				t.Errorf("%s binds %+v, want the shard's ServiceAccount %s/%skudod", id, b.Subjects, ns, prefix)
			}
		}
	}
	pod := in.deployment(t).Spec.Template.Spec
	if pod.ServiceAccountName != prefix+"kudod" {
		t.Errorf("the shard's daemon runs as %s", pod.ServiceAccountName)
	}
	if got := flagValue(pod.Containers[0].Args, "--leader-election-namespace"); got != "$(POD_NAMESPACE)" {
		t.Errorf("--leader-election-namespace=%s, want the pod's namespace", got)
	}
}
