package testenv

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestNamespaceName(t *testing.T) {
	label := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	tests := []struct {
		testName   string
		wantPrefix string
	}{
		{"TestApply", "testapply-"},
		{"TestApply/serial_steps", "testapply-serial-steps-"},
		{"TestX/__weird--Name__", "testx-weird-name-"},
		{"///", "t-"},
		{strings.Repeat("VeryLongTestName", 10), "verylongtestname"},
	}
	for _, tt := range tests {
		t.Run(tt.testName, func(t *testing.T) {
			got := namespaceName(tt.testName)
			if !label.MatchString(got) || len(got) > 63 {
				t.Errorf("namespaceName(%q) = %q, not a DNS label of at most 63 characters", tt.testName, got)
			}
			if !strings.HasPrefix(got, tt.wantPrefix) {
				t.Errorf("namespaceName(%q) = %q, want prefix %q", tt.testName, got, tt.wantPrefix)
			}
			if again := namespaceName(tt.testName); again == got {
				t.Errorf("namespaceName(%q) returned %q twice", tt.testName, got)
			}
		})
	}
}

func TestAuditEventDryRun(t *testing.T) {
	tests := []struct {
		uri  string
		want bool
	}{
		{"/api/v1/namespaces/a/configmaps?dryRun=All&fieldManager=kudod", true},
		{"/apis/apps/v1/namespaces/a/deployments/web?fieldManager=kudod&dryRun=All&force=true", true},
		{"/api/v1/namespaces/a/configmaps?fieldManager=kudod", false},
		{"/api/v1/namespaces/a/configmaps", false},
		{"/api/v1/namespaces/a/configmaps/dryRun", false},
	}
	for _, tt := range tests {
		if got := (AuditEvent{RequestURI: tt.uri}).DryRun(); got != tt.want {
			t.Errorf("DryRun() of %s = %v, want %v", tt.uri, got, tt.want)
		}
	}
}

func TestReadAuditLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	complete := `{"verb":"create","requestURI":"/api/v1/namespaces/a/configmaps?dryRun=All","user":{"username":"kudod"},"objectRef":{"resource":"configmaps","namespace":"a","name":"x"}}` + "\n" +
		`{"verb":"delete","requestURI":"/api/v1/namespaces/a/configmaps/x","user":{"username":"kudod"},"objectRef":{"resource":"configmaps","namespace":"a","name":"x"}}` + "\n"

	if events, err := readAuditLog(path); err != nil || events != nil {
		t.Errorf("a missing log: %v, %v; want no events and no error", events, err)
	}

	// The API server may be in the middle of writing the last line.
	if err := os.WriteFile(path, []byte(complete+`{"verb":"upd`), 0o600); err != nil {
		t.Fatal(err)
	}
	events, err := readAuditLog(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.Verb+" "+e.ObjectRef.Name+" "+strconv.FormatBool(e.DryRun()))
	}
	if want := []string{"create x true", "delete x false"}; !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}

	// A broken line before the end is corruption, not a write in progress.
	if err := os.WriteFile(path, []byte("{broken\n"+complete), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readAuditLog(path); err == nil || !strings.Contains(err.Error(), "audit.log:1") {
		t.Errorf("a broken first line: error %v, want one naming audit.log:1", err)
	}
}

func TestReadEnvFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gitea.env")
	if err := os.WriteFile(path, []byte("GITEA_URL=http://127.0.0.1:1234\nGITEA_PASSWORD=a=b\n\nnot a pair\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"GITEA_URL": "http://127.0.0.1:1234", "GITEA_PASSWORD": "a=b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("readEnvFile = %v, want %v", got, want)
	}
	if _, err := readEnvFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("reading a missing file succeeded")
	}
}

func TestRepoRootHoldsTheHackScripts(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, script := range []string{"local-cluster.sh", "gitea.sh", "build-binaries.sh"} {
		if fi, err := os.Stat(filepath.Join(root, "hack", script)); err != nil || fi.Mode().Perm()&0o100 == 0 {
			t.Errorf("hack/%s in %s: %v, want an executable script", script, root, err)
		}
	}
}
