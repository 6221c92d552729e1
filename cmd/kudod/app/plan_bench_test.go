package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkPlan1000Instances times `kudod plan` between two commits of a repository with
// 1,000 instance files of one package (the second commit changes one parameter).
func BenchmarkPlan1000Instances(b *testing.B) {
	dir := b.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	git("init", "-q", "-b", "main")
	write("operators/app/1.0.0/operator.yaml", "name: app\noperatorVersion: 1.0.0\nkubernetesVersion: 1.20.0\ntasks:\n  - name: app\n    kind: Apply\n    spec:\n      resources: [config.yaml]\nplans:\n  deploy:\n    phases:\n      - name: main\n        steps:\n          - name: app\n            tasks: [app]\n")
	write("operators/app/1.0.0/params.yaml", "parameters:\n  - name: VALUE\n    default: one\n")
	write("operators/app/1.0.0/templates/config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}\ndata:\n  value: {{ .Params.VALUE | quote }}\n")
	instance := func(i int, value string) string {
		return fmt.Sprintf("apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: app-%d\n  namespace: ns-%d\nspec:\n  operator:\n    name: app\n  parameters:\n    VALUE: %s\n", i, i%50, value)
	}
	for i := 0; i < 1000; i++ {
		write(fmt.Sprintf("instances/ns-%d/app-%d.yaml", i%50, i), instance(i, "one"))
	}
	git("add", "-A")
	git("-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "1000 instances")
	from := git("rev-parse", "HEAD")
	write("instances/ns-7/app-7.yaml", instance(7, "two"))
	git("-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qam", "change one")
	to := git("rev-parse", "HEAD")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var out, errb bytes.Buffer
		if code := Execute(context.Background(), []string{"plan", "--repo", dir, "--from", from, "--to", to, "-o", "json"}, &out, &errb); code != 1 {
			b.Fatalf("exit %d: %s", code, errb.String())
		}
		if !strings.Contains(out.String(), `"action": "update"`) {
			b.Fatalf("unexpected plan: %s", out.String())
		}
	}
}
