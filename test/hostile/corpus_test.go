// Package hostile runs the hostile-input corpus (testdata/hostile, README there): every case
// through the command line (kudod verify, kudod render, kudod plan on a git repository) and
// through the daemon's planning path (manifests.IndexRepositoryContext and planner.Diff on a
// git snapshot, then each package's render as an execution renders it), each in a process of
// its own, bounded in time and memory.
package hostile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/test/testenv"
)

// The acceptance bounds of every run of a case (one process).
const (
	maxWall = 10 * time.Second
	maxRSS  = 300_000_000 // bytes
)

// runner is one way of feeding a case to kudod.
type runner string

const (
	runVerify runner = "verify" // kudod verify DIR...
	runRender runner = "render" // kudod render DIR
	runPlan   runner = "plan"   // kudod plan --repo REPO --to HEAD
	runIndex  runner = "index"  // the daemon's planning path, in a child of the test binary
)

// corpusCase is one case: what to build and what each runner must say.
type corpusCase struct {
	name string
	kind string // templates, packages, instances, repos
	path string
	// wants are the substrings each runner's output must hold; "*" for every runner. A want
	// of "-" skips the runner (the README says when).
	wants map[runner]string
	// params are parameter defaults of a template case (NAME=VALUE).
	params []string
}

func (c *corpusCase) runners() []runner {
	var rs []runner
	switch c.kind {
	case "templates", "packages":
		rs = []runner{runVerify, runRender, runIndex}
	default:
		rs = []runner{runPlan, runIndex}
	}
	var out []runner
	for _, r := range rs {
		if c.want(r) != "-" {
			out = append(out, r)
		}
	}
	return out
}

func (c *corpusCase) want(r runner) string {
	if w, ok := c.wants[r]; ok {
		return w
	}
	return c.wants["*"]
}

// figure is what one run cost.
type figure struct {
	run  string
	wall time.Duration
	rss  int64 // bytes
}

func TestHostileCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("the hostile-input corpus runs kudod in a process per case: make test runs it")
	}
	bin := kudodBinary(t)
	root := corpusDir(t)
	cases := loadCases(t, root)
	if len(cases) < 80 {
		t.Fatalf("the corpus has %d cases, fewer than 80", len(cases))
	}
	var mu sync.Mutex
	var figures []figure
	t.Run("case", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				b := build(t, root, c)
				for _, r := range c.runners() {
					out, f := run(t, bin, b, r)
					mu.Lock()
					figures = append(figures, figure{run: c.name + " (" + string(r) + ")", wall: f.wall, rss: f.rss})
					mu.Unlock()
					if want := c.want(r); !strings.Contains(out, want) {
						t.Errorf("%s: the output does not hold %q:\n%s", r, want, clip(out))
					}
				}
			})
		}
	})
	if len(figures) == 0 {
		return
	}
	sort.Slice(figures, func(i, j int) bool { return figures[i].rss > figures[j].rss })
	t.Logf("%d runs of %d cases; the five with the highest peak RSS:", len(figures), len(cases))
	for _, f := range figures[:min(5, len(figures))] {
		t.Logf("  %-60s %6.1f MB  %6.2fs", f.run, float64(f.rss)/1e6, f.wall.Seconds())
	}
	sort.Slice(figures, func(i, j int) bool { return figures[i].wall > figures[j].wall })
	t.Logf("the five longest:")
	for _, f := range figures[:min(5, len(figures))] {
		t.Logf("  %-60s %6.1f MB  %6.2fs", f.run, float64(f.rss)/1e6, f.wall.Seconds())
	}
}

// kudodBinary is $KUDOD_BIN (make test builds it), else a binary built for this test.
func kudodBinary(t *testing.T) string {
	if bin := os.Getenv("KUDOD_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "kudod")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/kudod-dev/kudod/cmd/kudod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kudod: %v\n%s", err, out)
	}
	return bin
}

func corpusDir(t *testing.T) string {
	return filepath.Join(filepath.Dir(testenv.FixtureOperatorsDir(t)), "hostile")
}

// loadCases reads the corpus: templates/*.yaml and instances/*.yaml are cases of one file,
// packages/* and repos/* cases of a directory.
func loadCases(t *testing.T, root string) []*corpusCase {
	var cases []*corpusCase
	for _, kind := range []string{"templates", "instances"} {
		files, err := filepath.Glob(filepath.Join(root, kind, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			header := data
			if w, err := os.ReadFile(f + ".want"); err == nil {
				header = w // the case's bytes cannot hold a header (UTF-16, invalid UTF-8)
			}
			c := &corpusCase{name: kind + "/" + filepath.Base(f), kind: kind, path: f}
			c.wants, c.params = parseHeader(t, f, header)
			cases = append(cases, c)
		}
	}
	for _, kind := range []string{"packages", "repos"} {
		dirs, err := os.ReadDir(filepath.Join(root, kind))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			if !d.IsDir() {
				continue
			}
			dir := filepath.Join(root, kind, d.Name())
			data, err := os.ReadFile(filepath.Join(dir, "want"))
			if err != nil {
				t.Fatalf("case %s: %v", dir, err)
			}
			c := &corpusCase{name: kind + "/" + d.Name(), kind: kind, path: dir}
			c.wants, _ = parseHeader(t, dir, data)
			cases = append(cases, c)
		}
	}
	return cases
}

// parseHeader reads "# want: TEXT", "# want-RUNNER: TEXT" and "# param: NAME=VALUE" lines.
func parseHeader(t *testing.T, name string, data []byte) (map[runner]string, []string) {
	wants := map[runner]string{}
	var params []string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		rest, ok := strings.CutPrefix(line, "# ")
		if !ok {
			continue
		}
		key, value, ok := strings.Cut(rest, ": ")
		switch {
		case !ok:
		case key == "want":
			wants["*"] = value
		case strings.HasPrefix(key, "want-"):
			wants[runner(strings.TrimPrefix(key, "want-"))] = value
		case key == "param":
			params = append(params, value)
		}
	}
	if len(wants) == 0 {
		t.Fatalf("case %s says no error it must give (# want: ...)", name)
	}
	return wants, params
}

// built is a case made ready to run: package directories for verify and render, a git
// repository for plan and the daemon's path.
type built struct {
	packages []string
	repo     string
}

// corpusOperator is the package of template cases: one Apply task of t.yaml.
const corpusOperator = `apiVersion: kudo.dev/v1beta1
name: hostile
operatorVersion: 0.1.0
kubernetesVersion: 1.20.0
tasks:
  - name: app
    kind: Apply
    spec:
      resources: [t.yaml]
plans:
  deploy:
    strategy: serial
    phases:
      - name: main
        strategy: serial
        steps:
          - name: app
            tasks: [app]
`

// corpusInstance is an Instance of the hostile package, for the repositories of template and
// package cases.
const corpusInstance = `apiVersion: kudod.dev/v1alpha1
kind: Instance
metadata:
  name: hostile
  namespace: hostile
spec:
  operator:
    name: hostile
`

func build(t *testing.T, root string, c *corpusCase) built {
	tmp := t.TempDir()
	repo := filepath.Join(tmp, "repo")
	var b built
	switch c.kind {
	case "templates":
		pkg := filepath.Join(repo, "operators", "hostile", "0.1.0")
		params := "apiVersion: kudo.dev/v1beta1\nparameters:\n"
		for _, p := range c.params {
			name, value, _ := strings.Cut(p, "=")
			params += fmt.Sprintf("  - name: %s\n    default: %s\n", name, strconv.Quote(value))
		}
		if len(c.params) == 0 {
			params = "apiVersion: kudo.dev/v1beta1\nparameters: []\n"
		}
		tpl, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, pkg, map[string]string{"operator.yaml": corpusOperator, "params.yaml": params, "templates/t.yaml": string(tpl)})
		writeFiles(t, repo, map[string]string{"clusters/hostile.yaml": corpusInstance})
		b.packages = []string{pkg}
	case "packages":
		pkgs := filepath.Join(repo, "operators")
		copyCase(t, c.path, pkgs)
		writeFiles(t, repo, map[string]string{"clusters/hostile.yaml": corpusInstance})
		if _, err := os.Stat(filepath.Join(pkgs, "operator.yaml")); err == nil {
			b.packages = []string{pkgs}
		} else {
			// A case of several packages: each subdirectory holding operator.yaml.
			matches, _ := filepath.Glob(filepath.Join(pkgs, "*", "operator.yaml"))
			for _, m := range matches {
				b.packages = append(b.packages, filepath.Dir(m))
			}
		}
	case "instances":
		pkg := filepath.Join(root, "instances", "_package")
		copyCase(t, pkg, filepath.Join(repo, "operators", "app", "1.0.0"))
		data, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, repo, map[string]string{"clusters/" + filepath.Base(c.path): string(data)})
	case "repos":
		copyCase(t, c.path, repo)
	}
	commit(t, repo)
	b.repo = repo
	return b
}

// copyCase copies a case directory without its want file, then carries out its setup file.
func copyCase(t *testing.T, src, dst string) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(dst, "want"))
	setup, err := os.ReadFile(filepath.Join(dst, "setup"))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dst, "setup")); err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(setup)) {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		path := filepath.Join(dst, filepath.FromSlash(f[1]))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		switch f[0] {
		case "link": // link PATH TARGET
			err = os.Symlink(f[2], path)
		case "fifo": // fifo PATH
			err = syscall.Mkfifo(path, 0o644)
		case "append": // append PATH COUNT "GO-QUOTED TEXT"
			var n int
			var text string
			n, err = strconv.Atoi(f[2])
			if err == nil {
				_, quoted, _ := strings.Cut(strings.TrimSpace(line), f[2]+" ")
				text, err = strconv.Unquote(quoted)
			}
			if err == nil {
				err = appendFile(path, strings.Repeat(text, n))
			}
		default:
			err = fmt.Errorf("unknown setup %q", f[0])
		}
		if err != nil {
			t.Fatalf("setup %q: %v", strings.TrimSpace(line), err)
		}
	}
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// commit makes repo a git repository with its files as one commit. Files git cannot hold
// (FIFOs) are left out of it.
func commit(t *testing.T, repo string) {
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-c", "init.defaultBranch=main", "-c", "core.autocrlf=false"}, args...)...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+repo,
			"GIT_AUTHOR_NAME=kudod test", "GIT_AUTHOR_EMAIL=test@kudod.invalid",
			"GIT_COMMITTER_NAME=kudod test", "GIT_COMMITTER_EMAIL=test@kudod.invalid")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git("init", "-q")
	var fifos []string
	_ = filepath.WalkDir(repo, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type()&os.ModeNamedPipe != 0 {
			rel, _ := filepath.Rel(repo, p)
			fifos = append(fifos, rel)
		}
		return nil
	})
	if len(fifos) > 0 {
		writeFiles(t, repo, map[string]string{".git/info/exclude": strings.Join(fifos, "\n") + "\n"})
	}
	git("add", "-A", ".")
	git("commit", "-q", "--allow-empty", "-m", "hostile")
}

// run runs one runner on a built case and returns its output with what the process cost. A
// run over the time or memory bound fails the case.
func run(t *testing.T, bin string, b built, r runner) (string, figure) {
	ctx, cancel := context.WithTimeout(context.Background(), maxWall+5*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	wantCode := 0
	switch r {
	case runVerify:
		cmd = exec.CommandContext(ctx, bin, append([]string{"verify"}, b.packages...)...)
		wantCode = 1
	case runRender:
		cmd = exec.CommandContext(ctx, bin, "render", b.packages[0])
		wantCode = 1
	case runPlan:
		cmd = exec.CommandContext(ctx, bin, "plan", "--repo", b.repo, "--to", "HEAD")
		wantCode = 2
	case runIndex:
		cmd = exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+b.repo)
	}
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	f := figure{wall: time.Since(start)}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			f.rss = ru.Maxrss * 1024 // kilobytes on Linux
		}
	}
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Errorf("%s: %v", r, err)
	}
	if f.wall > maxWall {
		t.Errorf("%s took %s, more than %s", r, f.wall.Round(time.Millisecond), maxWall)
	}
	if f.rss > maxRSS {
		t.Errorf("%s peaked at %.1f MB RSS, more than %d MB", r, float64(f.rss)/1e6, maxRSS/1_000_000)
	}
	if code != wantCode {
		t.Errorf("%s exited %d, want %d:\n%s", r, code, wantCode, clip(out.String()))
	}
	return out.String(), f
}

func clip(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "\n[...]"
	}
	return s
}
