package manifests_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kudod-dev/kudod/internal/decrypt"
	"github.com/kudod-dev/kudod/internal/decrypt/decrypttest"
	"github.com/kudod-dev/kudod/manifests"
)

const encPackage = `apiVersion: kudo.dev/v1beta1
name: demo
operatorVersion: 1.0.0
kubernetesVersion: 1.20.0
tasks:
  - name: app
    kind: Apply
    spec:
      resources: [config.yaml]
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: app
            tasks: [app]
`

const encInstance = `apiVersion: kudod.dev/v1alpha1
kind: Instance
metadata:
  name: db
  namespace: data
spec:
  operator:
    name: demo
  parameters:
    ROOT_CODE: s3cr3t-root-code
    NOTE: plain
`

func encRepo(t *testing.T, files map[string]string) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{
		"operators/demo/operator.yaml":         {Data: []byte(encPackage)},
		"operators/demo/params.yaml":           {Data: []byte("parameters:\n  - name: ROOT_CODE\n  - name: NOTE\n    default: x\n")},
		"operators/demo/templates/config.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: {{ .Params.ROOT_CODE }}\n  b: {{ .Params.NOTE }}\n")},
	}
	for k, v := range files {
		fsys[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return fsys
}

func encrypt(t *testing.T, plain, recipient, regex string) string {
	t.Helper()
	enc, err := decrypttest.Encrypt([]byte(plain), recipient, regex)
	if err != nil {
		t.Fatal(err)
	}
	return string(enc)
}

// TestEncryptedInstanceFiles: a SOPS-encrypted instance file is decrypted in memory with the
// key; its encrypted parameters are sensitive. Without a Decrypter it is listed as encrypted,
// key not available; with one that has no key it is an error naming the file, on the instance
// when its name is in plain text.
func TestEncryptedInstanceFiles(t *testing.T) {
	id, recipient, err := decrypttest.Key()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := decrypt.ParseIdentities(id)
	if err != nil {
		t.Fatal(err)
	}
	full := encrypt(t, encInstance, recipient, "")
	onlyCode := encrypt(t, encInstance, recipient, "^ROOT_CODE$")
	fsys := encRepo(t, map[string]string{"instances/full.yaml": full, "instances/code.yaml": strings.Replace(onlyCode, "name: db", "name: db2", 1)})

	// The replace above breaks the MAC of code.yaml: only full.yaml decrypts.
	idx, err := manifests.IndexRepository(fsys, manifests.IndexOptions{Decrypter: decrypt.NewSOPS(ids, "")})
	if err != nil {
		t.Fatal(err)
	}
	in := idx.Instance("data/db")
	if in == nil {
		t.Fatalf("not decrypted: %v", idx.Findings)
	}
	if in.Parameters["ROOT_CODE"].Text != "s3cr3t-root-code" || !in.Decrypted["ROOT_CODE"] || !in.Decrypted["NOTE"] {
		t.Errorf("parameters %v, decrypted %v", in.Parameters, in.Decrypted)
	}
	if msg := idx.InvalidFindings["data/db2"].Error(); !strings.Contains(msg, "instances/code.yaml: cannot decrypt: MAC mismatch") {
		t.Errorf("a tampered file: %v", idx.Findings)
	}

	// encrypted_regex: only ROOT_CODE is encrypted, so only it is sensitive.
	idx, err = manifests.IndexRepository(encRepo(t, map[string]string{"instances/code.yaml": onlyCode}), manifests.IndexOptions{Decrypter: decrypt.NewSOPS(ids, "")})
	if err != nil {
		t.Fatal(err)
	}
	if in := idx.Instance("data/db"); in == nil || !in.Decrypted["ROOT_CODE"] || in.Decrypted["NOTE"] || in.IsSensitive("NOTE") {
		t.Errorf("encrypted_regex: %+v %v", in, idx.Findings)
	}

	// No key: the file names the instance in plain text (code.yaml) or not (full.yaml).
	noKey := decrypt.NewSOPS(nil, "Secret kudod-system/sops-age not found")
	idx, err = manifests.IndexRepository(encRepo(t, map[string]string{"instances/full.yaml": full, "instances/code.yaml": strings.Replace(onlyCode, "name: db", "name: other", 1)}), manifests.IndexOptions{Decrypter: noKey})
	if err != nil {
		t.Fatal(err)
	}
	if msg := idx.BrokenFiles["instances/full.yaml"].Error(); msg != "instances/full.yaml: cannot decrypt: no age key: Secret kudod-system/sops-age not found" {
		t.Errorf("full.yaml: %q", msg)
	}
	if msg := idx.InvalidFindings["data/other"].Error(); !strings.Contains(msg, "instances/code.yaml: cannot decrypt: no age key") {
		t.Errorf("code.yaml: %q (%v)", msg, idx.Findings)
	}
	if len(idx.DecryptErrors) != 2 {
		t.Errorf("DecryptErrors = %v", idx.DecryptErrors)
	}

	// No Decrypter at all (kudod plan without a key): listed, not failed.
	idx, err = manifests.IndexRepository(encRepo(t, map[string]string{"instances/full.yaml": full}), manifests.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if idx.Encrypted["instances/full.yaml"] != manifests.NoKey || idx.Findings.HasErrors() {
		t.Errorf("without a key: %v %v", idx.Encrypted, idx.Findings)
	}

	// An encrypted file of another kind (a Secret Flux decrypts) is not kudod's.
	secret := encrypt(t, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  a: b\n", recipient, "^stringData$")
	values := encrypt(t, "password: abc\n", recipient, "")
	idx, err = manifests.IndexRepository(encRepo(t, map[string]string{"secrets/s.yaml": secret, "values.enc.yaml": values}), manifests.IndexOptions{Decrypter: noKey})
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Findings) > 0 || len(idx.Encrypted) > 0 {
		t.Errorf("other files: %v %v", idx.Findings, idx.Encrypted)
	}

	// Too large to decrypt.
	big := full + "# " + strings.Repeat("x", manifests.MaxEncryptedFileSize) + "\n"
	// (with a file limit above it: by default the instance file limit, 512 KiB, refuses it first)
	idx, err = manifests.IndexRepository(encRepo(t, map[string]string{"instances/full.yaml": big}), manifests.IndexOptions{Decrypter: decrypt.NewSOPS(ids, ""), MaxInstanceFileSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if msg := idx.BrokenFiles["instances/full.yaml"].Error(); !strings.Contains(msg, "too large to decrypt") {
		t.Errorf("a big file: %q", msg)
	}
}
