package config

import (
	"strings"
	"testing"
)

func TestParseDecryption(t *testing.T) {
	const head = "repositories:\n  - name: app\n    url: https://git.example.com/o/app.git\n"
	cfg, err := parse(t, head+"    decryption: {provider: sops, secretRef: {name: sops-age, namespace: kudod-system}}\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Decryption{Provider: "sops", SecretRef: SecretRef{Name: "sops-age", Namespace: "kudod-system"}}
	if got := cfg.Repositories[0].Decryption; got != want {
		t.Errorf("decryption = %+v", got)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown provider", "    decryption: {provider: vault, secretRef: {name: a, namespace: b}}\n", `kudod.yaml:4: repositories[0].decryption.provider: unknown provider "vault" (use sops)`},
		{"no provider", "    decryption: {secretRef: {name: a, namespace: b}}\n", "repositories[0].decryption: provider is required (sops)"},
		{"no secretRef", "    decryption: {provider: sops}\n", "repositories[0].decryption: secretRef is required"},
		{"no namespace", "    decryption: {provider: sops, secretRef: {name: a}}\n", "repositories[0].decryption.secretRef: name and namespace are required"},
		{"bad name", "    decryption: {provider: sops, secretRef: {name: A_B, namespace: b}}\n", `repositories[0].decryption.secretRef.name: "A_B" is not a valid name`},
		{"unknown field", "    decryption: {provider: sops, secretRef: {name: a, namespace: b}, keys: x}\n", `repositories[0].decryption: unknown field "keys"`},
		{"not a mapping", "    decryption: sops\n", "repositories[0].decryption: must be a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, head+tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
