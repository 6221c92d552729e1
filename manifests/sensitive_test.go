package manifests

import (
	"strings"
	"testing"
	"testing/fstest"
)

// leakyNames are the names the name-only test used to miss (issue: DB_PASS, ADMIN_PWD,
// PASSPHRASE, SMTP_AUTH, TLS_PRIVATE_PEM printed their values).
var leakyNames = []string{"DB_PASS", "ADMIN_PWD", "PASSPHRASE", "SMTP_AUTH", "TLS_PRIVATE_PEM"}

func TestIsSensitive(t *testing.T) {
	yes := append([]string{"DB_PASSWORD", "API_TOKEN", "CLIENT_SECRET", "SSL_KEYSTORE", "AWS_CREDENTIALS", "adminPassword", "smtpAuth",
		"dbPass", "ADMINPASSWORD", "GPG_PASSPHRASE", "JWT", "DB_DSN", "HMAC_SALT", "REDIS_PW", "db-pass", "ssh.private"}, leakyNames...)
	for _, n := range yes {
		if !IsSensitive(n) {
			t.Errorf("%s is not sensitive", n)
		}
	}
	for _, n := range []string{"REPLICAS", "NODE_COUNT", "PASSTHROUGH", "AUTHOR", "IMAGE", "VERSION", "COMPASS_URL", "PEMBROKE", "zone",
		"TLS_SECRET_NAME", "SSL_KEY_FILE", "SMTP_AUTH_ENABLED", "KAFKA_CONNECT_KEY_CONVERTER", "PASSWORD_LENGTH", "tokenTtl"} {
		if IsSensitive(n) {
			t.Errorf("%s is sensitive", n)
		}
	}
}

func TestSensitiveFlag(t *testing.T) {
	fsys := fstest.MapFS{}
	demoPackage(fsys, "operators/demo/1.0.0", "1.0.0", "")
	fsys["operators/demo/1.0.0/params.yaml"] = &fstest.MapFile{Data: []byte(`apiVersion: kudo.dev/v1beta1
parameters:
  - name: ROOT_CODE
    default: x
    sensitive: true
  - name: NOTE
    default: y
`)}
	p, err := Load(fsys, "operators/demo/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if !p.IsSensitive("ROOT_CODE") || !p.Parameter("ROOT_CODE").Sensitive {
		t.Error("sensitive: true is not read")
	}
	if p.IsSensitive("NOTE") {
		t.Error("NOTE is sensitive")
	}
	if !p.IsSensitive("UNDECLARED_TOKEN") {
		t.Error("an undeclared name is not judged by its name")
	}
}

func TestStoredParametersHoldDigests(t *testing.T) {
	in := &Instance{Namespace: "ns", Name: "a", Package: &Package{Parameters: []*Parameter{{Name: "ROOT_CODE", Sensitive: true}, {Name: "NOTE"}}},
		Parameters: map[string]Value{"ROOT_CODE": StringValue("hunter2-root"), "NOTE": StringValue("hi"), "DB_PASS": StringValue("hunter2-db"), "ENC": StringValue("hunter2-enc")},
		Decrypted:  map[string]bool{"ENC": true}}
	got := in.StoredParameters()
	if got["NOTE"] != "hi" {
		t.Errorf("NOTE = %q", got["NOTE"])
	}
	for _, n := range []string{"ROOT_CODE", "DB_PASS", "ENC"} {
		if !IsSensitiveDigest(got[n]) || strings.Contains(got[n], "hunter2") {
			t.Errorf("%s = %q, want a digest", n, got[n])
		}
		if !SameSensitive("ns", "a", n, got[n], in.Parameters[n].Text) {
			t.Errorf("%s: the digest does not match its value", n)
		}
		if SameSensitive("ns", "b", n, got[n], in.Parameters[n].Text) {
			t.Errorf("%s: the digest of another instance matches", n)
		}
	}
	if len(in.SensitiveValues()) != 3 {
		t.Errorf("SensitiveValues = %v", in.SensitiveValues())
	}
}

// TestValidationErrorsHideSensitiveValues: an invalid value of a sensitive parameter is
// reported without the value.
func TestValidationErrorsHideSensitiveValues(t *testing.T) {
	fsys := fstest.MapFS{}
	demoPackage(fsys, "operators/demo/1.0.0", "1.0.0", "")
	params := "apiVersion: kudo.dev/v1beta1\nparameters:\n"
	spec := "  parameters:\n"
	for _, n := range append(leakyNames, "ROOT_CODE") {
		params += "  - name: " + n + "\n    type: integer\n    default: 1\n"
		if n == "ROOT_CODE" {
			params += "    sensitive: true\n"
		}
		spec += "    " + n + ": s3cr3t-" + n + "\n"
	}
	fsys["operators/demo/1.0.0/params.yaml"] = &fstest.MapFile{Data: []byte(params)}
	fsys["operators/demo/1.0.0/templates/config.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n" + dataLines())}
	fsys["instances/a.yaml"] = &fstest.MapFile{Data: []byte(inst("data", "a", spec))}
	idx, err := IndexRepository(fsys, IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msg := idx.InvalidFindings["data/a"].Error()
	if msg == "" {
		t.Fatalf("no findings: %v", idx.Findings)
	}
	for _, n := range append(leakyNames, "ROOT_CODE") {
		if strings.Contains(msg, "s3cr3t-"+n) {
			t.Errorf("the finding shows %s's value: %s", n, msg)
		}
		if !strings.Contains(msg, "spec.parameters."+n+": <sensitive> is not an integer") {
			t.Errorf("no masked finding for %s: %s", n, msg)
		}
	}
}

func dataLines() string {
	var b strings.Builder
	for _, n := range append(leakyNames, "ROOT_CODE") {
		b.WriteString("  " + strings.ToLower(n) + ": {{ .Params." + n + " | quote }}\n")
	}
	return b.String()
}

func TestParametersFromAgainstThePackage(t *testing.T) {
	cases := []struct{ name, spec, msg string }{
		{"unknown parameter", "  parametersFrom:\n    - {kind: Secret, name: s, key: k, parameter: NOPE}\n", "spec.parametersFrom[0].parameter: unknown parameter NOPE for demo"},
		{"case", "  parametersFrom:\n    - {kind: Secret, name: s, key: k, parameter: token}\n", `did you mean "TOKEN"?`},
		{"both inline and from a Secret", token + "  parametersFrom:\n    - {kind: Secret, name: s, key: TOKEN}\n", "parameter TOKEN is also set in spec.parameters"},
		{"twice", "  parametersFrom:\n    - {kind: Secret, name: s, key: TOKEN}\n    - {kind: ConfigMap, name: c, key: TOKEN}\n", "parameter TOKEN is already taken from spec.parametersFrom[0]"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			idx, err := IndexRepository(demoRepo(map[string]string{"instances/a.yaml": inst("data", "a", tt.spec)}), IndexOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if msg := idx.InvalidFindings["data/a"].Error(); !strings.Contains(msg, tt.msg) {
				t.Errorf("findings %q lack %q", msg, tt.msg)
			}
		})
	}
	// A required parameter may come from a whole object: checked when the plan renders.
	idx, err := IndexRepository(demoRepo(map[string]string{"instances/a.yaml": inst("data", "a", "  parametersFrom:\n    - {kind: Secret, name: s}\n")}), IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in := idx.Instance("data/a"); in == nil || !in.IsSensitive("TOKEN") && !in.takesFromSources("TOKEN") {
		t.Errorf("findings: %v", idx.Findings)
	}
}
