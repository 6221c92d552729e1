package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/internal/decrypt/decrypttest"
	"github.com/kudod-dev/kudod/test/testenv"
)

// leaky are the parameter names whose values `kudod plan` used to print, and one only
// params.yaml's `sensitive: true` marks.
var leaky = []string{"DB_PASS", "ADMIN_PWD", "PASSPHRASE", "SMTP_AUTH", "TLS_PRIVATE_PEM", "ROOT_CODE"}

func secretsRepo(t *testing.T) *testenv.GitRepo {
	t.Helper()
	r := testenv.NewGitRepo(t)
	params := "parameters:\n"
	data := ""
	for _, n := range leaky {
		params += "  - name: " + n + "\n    default: d\n"
		if n == "ROOT_CODE" {
			params += "    sensitive: true\n    immutable: true\n"
		}
		data += "  " + strings.ToLower(n) + ": {{ .Params." + n + " | quote }}\n"
	}
	r.Write(map[string]string{
		"operators/vault/operator.yaml":         "apiVersion: kudo.dev/v1beta1\nname: vault\noperatorVersion: 1.0.0\nkubernetesVersion: 1.20.0\ntasks:\n  - name: app\n    kind: Apply\n    spec:\n      resources: [secret.yaml]\nplans:\n  deploy:\n    phases:\n      - name: main\n        steps:\n          - name: app\n            tasks: [app]\n",
		"operators/vault/params.yaml":           params,
		"operators/vault/templates/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Name }}\nstringData:\n" + data,
	})
	return r
}

func vaultInstance(name string, values map[string]string) string {
	doc := "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: " + name + "\n  namespace: ns\nspec:\n  operator:\n    name: vault\n  parameters:\n"
	for _, n := range leaky {
		if v, ok := values[n]; ok {
			doc += "    " + n + ": " + v + "\n"
		}
	}
	return doc
}

func planOutputs(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var all string
	code := 0
	for _, o := range []string{"text", "json"} {
		var out, errb bytes.Buffer
		code = Execute(context.Background(), append(append([]string{"plan"}, args...), "-o", o), &out, &errb)
		all += out.String() + errb.String()
	}
	return all, code
}

// TestPlanNeverPrintsSensitiveValues: `kudod plan`, text and JSON, shows that each sensitive
// parameter changed, was set or rejected as immutable, never a value.
func TestPlanNeverPrintsSensitiveValues(t *testing.T) {
	r := secretsRepo(t)
	first, second := map[string]string{}, map[string]string{}
	for _, n := range leaky {
		first[n], second[n] = "old-s3cr3t-"+n, "new-s3cr3t-"+n
	}
	a := r.Commit("first", map[string]string{"instances/a.yaml": vaultInstance("a", first)})
	delete(second, "ROOT_CODE")
	b := r.Commit("second", map[string]string{"instances/a.yaml": vaultInstance("a", second)})
	c := r.Commit("third", map[string]string{"instances/a.yaml": vaultInstance("a", map[string]string{"ROOT_CODE": "third-s3cr3t"})})
	for _, tc := range []struct {
		from, to string
		want     []string
	}{
		{"", a, []string{"ns/a: deploy"}},
		{a, b, []string{"parameter DB_PASS: (sensitive value changed)", "parameter TLS_PRIVATE_PEM: (sensitive value changed)", "ROOT_CODE is immutable but was changed (sensitive value changed)"}},
		{b, c, []string{"parameter ROOT_CODE set: <sensitive>", "parameter SMTP_AUTH unset: the default applies"}},
	} {
		out, _ := planOutputs(t, "--repo", r.Dir, "--from", tc.from, "--to", tc.to)
		if strings.Contains(out, "s3cr3t") {
			t.Errorf("%.7s..%.7s shows a value:\n%s", tc.from, tc.to, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%.7s..%.7s lacks %q:\n%s", tc.from, tc.to, w, out)
			}
		}
	}
}

// TestPlanEncryptedRepository: `kudod plan` decrypts SOPS files with the key of
// --age-key-file or SOPS_AGE_KEY_FILE, and without one says the file is encrypted, key not
// available, instead of failing.
func TestPlanEncryptedRepository(t *testing.T) {
	id, recipient, err := decrypttest.Key()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keyFile, []byte(id+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := secretsRepo(t)
	enc := func(values map[string]string) string {
		out, err := decrypttest.Encrypt([]byte(vaultInstance("a", values)), recipient, "")
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	a := r.Commit("plain", map[string]string{"instances/a.yaml": vaultInstance("a", map[string]string{"DB_PASS": "plain-s3cr3t"})})
	b := r.Commit("encrypted", map[string]string{"instances/a.yaml": enc(map[string]string{"DB_PASS": "enc-s3cr3t", "ROOT_CODE": "d"})})
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", "")

	out, code := planOutputs(t, "--repo", r.Dir, "--from", a, "--to", b)
	if code != 0 || !strings.Contains(out, "instances/a.yaml: encrypted, key not available") || strings.Contains(out, "cleanup") {
		t.Errorf("without a key (exit %d):\n%s", code, out)
	}
	for _, args := range [][]string{{"--age-key-file", keyFile}, {}} {
		if len(args) == 0 {
			t.Setenv("SOPS_AGE_KEY_FILE", keyFile)
		}
		out, code = planOutputs(t, append([]string{"--repo", r.Dir, "--from", a, "--to", b}, args...)...)
		if code != 1 || !strings.Contains(out, "parameter DB_PASS: (sensitive value changed)") || strings.Contains(out, "s3cr3t") {
			t.Errorf("with a key %v (exit %d):\n%s", args, code, out)
		}
	}
}
