package deploy_test

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/cmd/kudod/app"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	cmd  string // FROM, RUN, ...
	args string
}

func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// shellWords splits a command line on blanks, keeping double-quoted strings whole.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inQuote, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, inWord = !inQuote, true
		case (r == ' ' || r == '\t') && !inQuote:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// imageBuild is how the Dockerfile builds and runs kudod.
type imageBuild struct {
	buildImage, runImage string
	env                  map[string]string // ENV of the build stage
	goBuild              []string          // the arguments after `go build`
	user                 string
	entrypoint, cmd      []string
}

func parseDockerfile(t *testing.T) imageBuild {
	t.Helper()
	b := imageBuild{env: map[string]string{}}
	stage := 0
	for _, in := range readDockerfile(t) {
		switch in.cmd {
		case "FROM":
			stage++
			image := ""
			for _, w := range strings.Fields(in.args) {
				if !strings.HasPrefix(w, "--") {
					image = w
					break
				}
			}
			if stage == 1 {
				b.buildImage = image
			} else {
				b.runImage = image
			}
		case "ENV":
			if stage == 1 {
				for _, kv := range strings.Fields(in.args) {
					k, v, _ := strings.Cut(kv, "=")
					b.env[k] = v
				}
			}
		case "RUN":
			words := shellWords(in.args)
			if i := slices.Index(words, "go"); i >= 0 && i+1 < len(words) && words[i+1] == "build" {
				b.goBuild = words[i+2:]
			}
		case "USER":
			b.user = in.args
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &b.entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT %s is not in exec form: %v", in.args, err)
			}
		case "CMD":
			if err := json.Unmarshal([]byte(in.args), &b.cmd); err != nil {
				t.Fatalf("CMD %s is not in exec form: %v", in.args, err)
			}
		}
	}
	return b
}

// goFlag returns the value of a `-name value` flag of a go build command line.
func goFlag(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

var makeLDFlags = regexp.MustCompile(`(?m)^LDFLAGS\s*:?=\s*(.+)$`)

// TestImageBuildsLikeMake: the Dockerfile builds on golang:1.26 with cgo off, -trimpath and the
// Makefile's ldflags, into a distroless/static:nonroot image that runs as a numeric non-root
// user, with `kudod run --config /etc/kudod/kudod.yaml` as arguments kudod accepts.
func TestImageBuildsLikeMake(t *testing.T) {
	b := parseDockerfile(t)
	if b.buildImage != "golang:1.26" {
		t.Errorf("build stage FROM %s, want golang:1.26", b.buildImage)
	}
	if b.runImage != "gcr.io/distroless/static:nonroot" {
		t.Errorf("final stage FROM %s, want gcr.io/distroless/static:nonroot", b.runImage)
	}
	if b.env["CGO_ENABLED"] != "0" {
		t.Errorf("the build stage sets CGO_ENABLED=%q, want 0", b.env["CGO_ENABLED"])
	}
	if !slices.Contains(b.goBuild, "-trimpath") || b.goBuild[len(b.goBuild)-1] != "./cmd/kudod" {
		t.Errorf("go build %v: want -trimpath and ./cmd/kudod", b.goBuild)
	}
	if b.user != "65532:65532" {
		t.Errorf("USER %q, want 65532:65532", b.user)
	}
	if !slices.Equal(b.entrypoint, []string{"/kudod"}) || !slices.Equal(b.cmd, []string{"run", "--config", "/etc/kudod/kudod.yaml"}) {
		t.Errorf("ENTRYPOINT %v CMD %v, want [/kudod] [run --config /etc/kudod/kudod.yaml]", b.entrypoint, b.cmd)
	}
	if code := app.Execute(context.Background(), append(slices.Clone(b.cmd), "--help"), io.Discard, io.Discard); code != 0 {
		t.Errorf("kudod %s --help exited %d", strings.Join(b.cmd, " "), code)
	}

	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := makeLDFlags.FindSubmatch(makefile)
	if m == nil {
		t.Fatal("the Makefile defines no LDFLAGS")
	}
	if got, want := strings.ReplaceAll(goFlag(b.goBuild, "-ldflags"), "${VERSION}", "$(VERSION)"), strings.TrimSpace(string(m[1])); got != want {
		t.Errorf("the Dockerfile's ldflags %q differ from the Makefile's %q", got, want)
	}
	for _, want := range []string{"CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)'", "./cmd/kudod"} {
		if !strings.Contains(string(makefile), want) {
			t.Errorf("the Makefile's build target lacks %q", want)
		}
	}
}

// buildImageBinary builds kudod for this machine with the Dockerfile's own go build command
// line and build-stage environment, and returns its path.
func buildImageBinary(t *testing.T, version string) string {
	t.Helper()
	b := parseDockerfile(t)
	bin := filepath.Join(t.TempDir(), "kudod")
	args := []string{"build"}
	for _, a := range b.goBuild {
		if a == "/out/kudod" {
			a = bin
		}
		args = append(args, strings.ReplaceAll(a, "${VERSION}", version))
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	cmd.Env = os.Environ()
	for k, v := range b.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// TestImageBinaryIsStaticAndVersioned: kudod built as the image builds it has no dynamic
// loader or shared libraries (it runs on distroless/static) and reports the version given to
// the build. has no dynamic loader or shared libraries (it runs on
// distroless/static) and reports the version given to the build.
func TestImageBinaryIsStaticAndVersioned(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kudod")
	}
	const version = "v0.0.0-image-test"
	bin := buildImageBinary(t, version)

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it is not static", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}

	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("kudod version: %v", err)
	}
	var info struct{ Version string }
	if err := json.Unmarshal(out, &info); err != nil || info.Version != version {
		t.Errorf("kudod version printed %s, want version %s", out, version)
	}
}
