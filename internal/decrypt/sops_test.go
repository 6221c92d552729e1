package decrypt_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/internal/decrypt"
	"github.com/kudod-dev/kudod/internal/decrypt/decrypttest"
)

const plain = `apiVersion: kudod.dev/v1alpha1
kind: Instance
metadata:
  name: db
  namespace: data
spec:
  operator:
    name: vault-db
  parameters:
    DB_PASSWORD: correct-horse-battery
    REPLICAS: 3
`

func keys(t *testing.T) (decrypt.Identities, string) {
	t.Helper()
	id, recipient, err := decrypttest.Key()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := decrypt.ParseIdentities("# a comment\n" + id + "\n")
	if err != nil {
		t.Fatal(err)
	}
	return ids, recipient
}

func TestSOPSDecryptsWithAgeKeys(t *testing.T) {
	ids, recipient := keys(t)
	for _, regex := range []string{"", "^parameters$"} {
		enc, err := decrypttest.Encrypt([]byte(plain), recipient, regex)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(enc), "correct-horse-battery") {
			t.Fatalf("encrypted file holds the value:\n%s", enc)
		}
		got, err := decrypt.NewSOPS(ids, "").Decrypt("instances/db.yaml", enc)
		if err != nil {
			t.Fatalf("regex %q: %v", regex, err)
		}
		if !strings.Contains(string(got), "DB_PASSWORD: correct-horse-battery") || !strings.Contains(string(got), "name: vault-db") {
			t.Errorf("regex %q: decrypted:\n%s", regex, got)
		}
	}
}

func TestSOPSFailures(t *testing.T) {
	ids, recipient := keys(t)
	other, _ := keys(t)
	enc, err := decrypttest.Encrypt([]byte(plain), recipient, "")
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(enc), "lastmodified:", "lastmodified: \"2001-01-01T00:00:00Z\"\n    x:", 1)
	cases := []struct {
		name string
		dec  *decrypt.SOPS
		data []byte
		msg  string
	}{
		{"no key", decrypt.NewSOPS(nil, "Secret kudod-system/sops-age not found"), enc, "no age key: Secret kudod-system/sops-age not found"},
		{"no key given", decrypt.NewSOPS(nil, ""), enc, "no age key: none was given"},
		{"another key", decrypt.NewSOPS(other, ""), enc, "no age key decrypts it (it is encrypted for " + recipient + ")"},
		{"not SOPS", decrypt.NewSOPS(ids, ""), []byte("a: b\n"), "not a SOPS file"},
		{"tampered", decrypt.NewSOPS(ids, ""), []byte(tampered), ""},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.dec.Decrypt("instances/db.yaml", tt.data)
			if err == nil {
				t.Fatal("decrypted")
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "correct-horse") {
				t.Errorf("error shows the value: %v", err)
			}
		})
	}
}

func TestFromEnvironment(t *testing.T) {
	id, _, err := decrypttest.Key()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(file, []byte(id+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", "")
	if ids, err := decrypt.FromEnvironment(""); err != nil || len(ids) != 0 {
		t.Errorf("nothing set: %v, %v", ids, err)
	}
	if ids, err := decrypt.FromEnvironment(file); err != nil || len(ids) != 1 {
		t.Errorf("flag: %v, %v", ids, err)
	}
	t.Setenv("SOPS_AGE_KEY_FILE", file)
	if ids, err := decrypt.FromEnvironment(""); err != nil || len(ids) != 1 {
		t.Errorf("SOPS_AGE_KEY_FILE: %v, %v", ids, err)
	}
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", id)
	if ids, err := decrypt.FromEnvironment(""); err != nil || len(ids) != 1 {
		t.Errorf("SOPS_AGE_KEY: %v, %v", ids, err)
	}
	t.Setenv("SOPS_AGE_KEY", "AGE-SECRET-KEY-1NOTAKEY")
	if _, err := decrypt.FromEnvironment(""); err == nil || strings.Contains(err.Error(), "NOTAKEY") {
		t.Errorf("a bad key: %v", err)
	}
}
