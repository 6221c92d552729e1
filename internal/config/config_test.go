package config

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/sources"
)

// dir is where the test configurations pretend to live; relative paths resolve against it.
const dir = "/etc/kudod"

func parse(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	return Parse([]byte(strings.TrimLeft(yaml, "\n")), filepath.Join(dir, "kudod.yaml"))
}

// repo is a repository with every default filled in, for comparisons.
func repo(name, url string, edit func(*Repository)) Repository {
	r := Repository{
		Name: name, URL: url, Ref: sources.Ref{Branch: "main"}, Interval: time.Minute, Path: ".",
		Prune: true, DriftInterval: 10 * time.Minute, Timeout: 60 * time.Second,
	}
	if edit != nil {
		edit(&r)
	}
	return r
}

var defaultCluster = Cluster{AllowClusterScoped: true}

func TestParseGood(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name string
		yaml string
		want *Config
	}{
		{"minimal", `
repositories:
  - name: platform
    url: https://git.example.com/ops/platform.git
`, &Config{Repositories: []Repository{repo("platform", "https://git.example.com/ops/platform.git", nil)}, Cluster: defaultCluster}},

		{"every field of the documented example", `
repositories:
  - name: platform
    url: https://git.example.com/ops/platform.git   # https, http, ssh, file
    ref: {branch: main}
    interval: 1m
    path: .
    auth: {tokenFile: secrets/token}
    webhook: {secretFile: /var/run/secrets/webhook}
    previews: {refs: ["refs/pull/*/head"]}
    status: {provider: gitea, url: https://git.example.com, tokenFile: secrets/gitea-token}
    prune: true
    driftInterval: 10m
    allowEmpty: false
cluster:
  kubeconfig: ""
  allowClusterScoped: true
`, &Config{Repositories: []Repository{repo("platform", "https://git.example.com/ops/platform.git", func(r *Repository) {
			r.Auth = sources.Auth{TokenFile: "/etc/kudod/secrets/token"}
			r.Webhook = Webhook{SecretFile: "/var/run/secrets/webhook"}
			r.Previews = Previews{Refs: []string{"refs/pull/*/head"}}
			r.Status = Status{Provider: "gitea", URL: "https://git.example.com", TokenFile: "/etc/kudod/secrets/gitea-token", Owner: "ops", Repo: "platform"}
		})}, Cluster: defaultCluster}},

		{"everything set", `
repositories:
  - name: apps-1
    url: ssh://git@git.example.com:2222/team/apps.git
    ref: {semver: ">=1.0.0 <2"}
    interval: 30s
    path: ./deploy/prod/
    auth:
      sshKeyFile: keys/id_ed25519
      sshPassphraseFile: keys/passphrase
      knownHostsFile: /etc/ssh/known_hosts
    status: {provider: gitlab, tokenEnv: GITLAB_TOKEN}
    prune: false
    driftInterval: 1h
    allowEmpty: true
    timeout: 2m
cluster:
  kubeconfig: kube/config
  allowClusterScoped: false
`, &Config{Repositories: []Repository{repo("apps-1", "ssh://git@git.example.com:2222/team/apps.git", func(r *Repository) {
			r.Ref = sources.Ref{SemVer: ">=1.0.0 <2"}
			r.Interval = 30 * time.Second
			r.Path = "deploy/prod"
			r.Auth = sources.Auth{SSHKeyFile: "/etc/kudod/keys/id_ed25519", SSHPassphraseFile: "/etc/kudod/keys/passphrase", KnownHostsFile: "/etc/ssh/known_hosts"}
			r.Status = Status{Provider: "gitlab", URL: "https://git.example.com", TokenEnv: "GITLAB_TOKEN", Project: "team/apps"}
			r.Prune = false
			r.DriftInterval = time.Hour
			r.AllowEmpty = true
			r.Timeout = 2 * time.Minute
		})}, Cluster: Cluster{Kubeconfig: "/etc/kudod/kube/config"}}},

		{"branch short form and ref kinds", `
repositories:
  - {name: a, url: /srv/git/a, branch: develop}
  - {name: b, url: /srv/git/b, ref: {tag: v1.2.0}}
  - {name: c, url: /srv/git/c, ref: {name: refs/pull/7/head}}
  - {name: d, url: /srv/git/d, ref: {commit: "0123456789ABCDEF0123456789abcdef01234567"}}
  - {name: e, url: /srv/git/e, ref: {commit: ` + sha + `, branch: release}}
`, &Config{Repositories: []Repository{
			repo("a", "/srv/git/a", func(r *Repository) { r.Ref = sources.Ref{Branch: "develop"} }),
			repo("b", "/srv/git/b", func(r *Repository) { r.Ref = sources.Ref{Tag: "v1.2.0"} }),
			repo("c", "/srv/git/c", func(r *Repository) { r.Ref = sources.Ref{Name: "refs/pull/7/head"} }),
			repo("d", "/srv/git/d", func(r *Repository) { r.Ref = sources.Ref{Commit: sha} }),
			repo("e", "/srv/git/e", func(r *Repository) { r.Ref = sources.Ref{Commit: sha, Branch: "release"} }),
		}, Cluster: defaultCluster}},

		{"URL forms", `
repositories:
  - {name: rel, url: ../git/app}
  - {name: file, url: "file:///srv/git/app"}
  - {name: http, url: "http://127.0.0.1:3000/ops/app.git"}
  - name: scp
    url: git@github.com:kudod-dev/kudod.git
    auth: {sshKeyFile: id, knownHostsFile: known_hosts}
    status: {provider: github, tokenFile: gh}
`, &Config{Repositories: []Repository{
			repo("rel", "/etc/git/app", nil),
			repo("file", "file:///srv/git/app", nil),
			repo("http", "http://127.0.0.1:3000/ops/app.git", nil),
			repo("scp", "git@github.com:kudod-dev/kudod.git", func(r *Repository) {
				r.Auth = sources.Auth{SSHKeyFile: "/etc/kudod/id", KnownHostsFile: "/etc/kudod/known_hosts"}
				r.Status = Status{Provider: "github", URL: "https://github.com", TokenFile: "/etc/kudod/gh", Owner: "kudod-dev", Repo: "kudod"}
			}),
		}, Cluster: defaultCluster}},

		{"status with explicit names and http basic auth", `
repositories:
  - name: app
    url: https://gitlab.example.com/group/sub/app.git
    auth: {usernameFile: user, passwordFile: pass}
    status: {provider: gitlab, url: "https://gitlab.example.com/", tokenFile: t, project: other/project}
  - name: gh
    url: https://github.com/o/r
    auth: {usernameFile: user, tokenFile: token}
    status: {provider: github, tokenFile: t, owner: me, repo: fork}
`, &Config{Repositories: []Repository{
			repo("app", "https://gitlab.example.com/group/sub/app.git", func(r *Repository) {
				r.Auth = sources.Auth{UsernameFile: "/etc/kudod/user", PasswordFile: "/etc/kudod/pass"}
				r.Status = Status{Provider: "gitlab", URL: "https://gitlab.example.com", TokenFile: "/etc/kudod/t", Project: "other/project"}
			}),
			repo("gh", "https://github.com/o/r", func(r *Repository) {
				r.Auth = sources.Auth{UsernameFile: "/etc/kudod/user", TokenFile: "/etc/kudod/token"}
				r.Status = Status{Provider: "github", URL: "https://github.com", TokenFile: "/etc/kudod/t", Owner: "me", Repo: "fork"}
			}),
		}, Cluster: defaultCluster}},

		{"empty cluster and null optional fields", `
repositories:
  - name: a
    url: https://h/o/a.git
    auth:
    previews:
cluster:
`, &Config{Repositories: []Repository{repo("a", "https://h/o/a.git", nil)}, Cluster: defaultCluster}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(t, tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestParseAliases: YAML anchors and aliases inside known fields are followed.
func TestParseAliases(t *testing.T) {
	got, err := parse(t, `
repositories:
  - name: a
    url: "https://h/o/a.git"
    auth: &auth {tokenFile: /run/token}
  - {name: b, url: "https://h/o/b.git", auth: *auth}
`)
	if err != nil {
		t.Fatal(err)
	}
	if got.Repositories[1].Auth.TokenFile != "/run/token" {
		t.Errorf("aliased auth = %+v", got.Repositories[1].Auth)
	}
}

func TestParseBad(t *testing.T) {
	const head = "repositories:\n  - name: app\n    url: https://git.example.com/o/app.git\n"
	for _, tc := range []struct {
		name string
		yaml string
		want string // the whole error, or a part of it after "…:"
	}{
		{"unknown repository field", head + "    intervall: 1m\n",
			`kudod.yaml:4: repositories[0]: unknown field "intervall"`},
		{"unknown top-level field", "repository: []\n",
			`kudod.yaml:1: unknown field "repository"`},
		{"anchors outside known fields", "x-auth: &auth {tokenFile: t}\n" + head + "    auth: *auth\n",
			`kudod.yaml:1: unknown field "x-auth"`},
		{"unknown auth field", head + "    auth: {token: abc}\n",
			`kudod.yaml:4: repositories[0].auth: unknown field "token"`},
		{"unknown ref field", head + "    ref: {branches: main}\n",
			`kudod.yaml:4: repositories[0].ref: unknown field "branches"`},
		{"unknown cluster field", head + "cluster:\n  kubeConfig: x\n",
			`kudod.yaml:5: cluster: unknown field "kubeConfig"`},
		{"repeated field", head + "    interval: 1m\n    interval: 2m\n",
			`kudod.yaml:5: repositories[0]: field "interval" is repeated (first on line 4)`},
		{"bad duration", head + "    interval: 1x\n",
			`kudod.yaml:4: repositories[0].interval: invalid duration "1x": use a number with a unit, like 30s, 1m or 1h30m`},
		{"duration without unit", head + "    timeout: 60\n",
			`kudod.yaml:4: repositories[0].timeout: invalid duration "60"`},
		{"zero duration", head + "    driftInterval: 0s\n",
			`kudod.yaml:4: repositories[0].driftInterval: must be positive, not "0s"`},
		{"negative duration", head + "    interval: -1m\n",
			`kudod.yaml:4: repositories[0].interval: must be positive, not "-1m"`},
		{"unknown provider", head + "    status: {provider: bitbucket, tokenFile: t}\n",
			`kudod.yaml:4: repositories[0].status.provider: unknown provider "bitbucket" (use gitea, github or gitlab)`},
		{"two ref kinds", head + "    ref: {branch: main, tag: v1}\n",
			`kudod.yaml:4: repositories[0].ref: ref must set one of branch, tag, semver, name or commit (commit may be combined with branch)`},
		{"commit with tag", head + "    ref: {commit: 0123456789abcdef0123456789abcdef01234567, tag: v1}\n",
			`kudod.yaml:4: repositories[0].ref: ref must set one of`},
		{"branch and ref", head + "    branch: main\n    ref: {tag: v1}\n",
			`kudod.yaml:4: repositories[0].branch: set either branch or ref, not both`},
		{"ref as a string", head + "    ref: main\n",
			`kudod.yaml:4: repositories[0].ref: must be a mapping like {branch: main}, not "main"`},
		{"empty ref", head + "    ref: {}\n",
			`kudod.yaml:4: repositories[0].ref: must set one of branch, tag, semver, name or commit`},
		{"bad semver", head + "    ref: {semver: latest}\n",
			`kudod.yaml:4: repositories[0].ref: invalid semver range "latest"`},
		{"short commit", head + "    ref: {commit: abc123}\n",
			`kudod.yaml:4: repositories[0].ref: invalid commit "abc123"`},
		{"ref name without refs/", head + "    ref: {name: pull/7/head}\n",
			`kudod.yaml:4: repositories[0].ref: invalid ref name "pull/7/head": must be a full name starting with refs/`},
		{"bad branch", head + "    branch: \"a..b\"\n",
			`kudod.yaml:4: repositories[0].branch: "a..b" is not a branch name`},
		{"name not a DNS label", "repositories:\n  - {name: My_Repo, url: /srv/git}\n",
			`kudod.yaml:2: repositories[0].name: "My_Repo" is not a DNS-1123 label`},
		{"name too long", "repositories:\n  - {name: " + strings.Repeat("a", 64) + ", url: /srv/git}\n",
			`is not a DNS-1123 label`},
		{"duplicate name", head + "  - name: app\n    url: /srv/git/other\n",
			`kudod.yaml:4: repositories[1].name: duplicate repository name "app" (also repositories[0], line 2)`},
		{"missing name", "repositories:\n  - url: /srv/git\n",
			`kudod.yaml:2: repositories[0]: name is required`},
		{"missing url", "repositories:\n  - name: app\n",
			`kudod.yaml:2: repositories[0]: url is required`},
		{"empty url", "repositories:\n  - name: app\n    url: \"\"\n",
			`kudod.yaml:3: repositories[0].url: must not be empty`},
		{"git scheme", "repositories:\n  - name: app\n    url: git://example.com/app.git\n",
			`kudod.yaml:3: repositories[0].url: unsupported URL scheme "git" (use https, http, ssh or file)`},
		{"ftp scheme", "repositories:\n  - name: app\n    url: ftp://example.com/app.git\n",
			`unsupported URL scheme "ftp"`},
		{"password in url", "repositories:\n  - name: app\n    url: https://user:hunter2@example.com/app.git\n",
			`kudod.yaml:3: repositories[0].url: must not contain a password; use auth.passwordFile or auth.tokenFile`},
		{"unparsable url with password", "repositories:\n  - name: app\n    url: \"https://u:hunter2@h/%zz\"\n",
			`kudod.yaml:3: repositories[0].url: invalid URL: invalid URL escape "%zz"`},
		{"relative file url", "repositories:\n  - name: app\n    url: file://srv/git\n",
			`file URLs need an absolute path`},
		{"https without host", "repositories:\n  - name: app\n    url: https:///app.git\n",
			`has no host`},
		{"ssh key on https", head + "    auth: {sshKeyFile: k, knownHostsFile: kh}\n",
			`kudod.yaml:4: repositories[0].auth: sshKeyFile, sshPassphraseFile and knownHostsFile apply to ssh URLs only`},
		{"ssh without known_hosts", "repositories:\n  - name: app\n    url: ssh://git@h/app.git\n    auth: {sshKeyFile: k}\n",
			`kudod.yaml:4: repositories[0].auth: ssh URLs need sshKeyFile and knownHostsFile (kudod never reads ~/.ssh)`},
		{"ssh without auth", "repositories:\n  - name: app\n    url: ssh://git@h/app.git\n",
			`kudod.yaml:3: repositories[0].url: ssh URLs need auth.sshKeyFile and auth.knownHostsFile`},
		{"token on ssh", "repositories:\n  - name: app\n    url: ssh://git@h/app.git\n    auth: {sshKeyFile: k, knownHostsFile: kh, tokenFile: t}\n",
			`tokenFile apply to http(s) URLs only`},
		{"password without username", head + "    auth: {passwordFile: p}\n",
			`kudod.yaml:4: repositories[0].auth: passwordFile needs usernameFile`},
		{"username alone", head + "    auth: {usernameFile: u}\n",
			`usernameFile needs passwordFile or tokenFile`},
		{"token and password", head + "    auth: {usernameFile: u, passwordFile: p, tokenFile: t}\n",
			`set tokenFile or passwordFile, not both`},
		{"empty secret file", head + "    auth: {tokenFile: \"\"}\n",
			`kudod.yaml:4: repositories[0].auth.tokenFile: must name a file`},
		{"auth on a local path", "repositories:\n  - name: app\n    url: /srv/git\n    auth: {tokenFile: t}\n",
			`kudod.yaml:4: repositories[0].auth: local repositories take no credentials`},
		{"webhook without secret", head + "    webhook: {}\n",
			`kudod.yaml:4: repositories[0].webhook: secretFile is required`},
		{"webhook secret inline", head + "    webhook: {secret: s3cr3t}\n",
			`kudod.yaml:4: repositories[0].webhook: unknown field "secret"`},
		{"preview pattern without refs/", head + "    previews: {refs: [\"pull/*/head\"]}\n",
			`kudod.yaml:4: repositories[0].previews.refs[0]: "pull/*/head" must be a full ref name pattern`},
		{"bad preview pattern", head + "    previews:\n      refs:\n        - refs/heads/*\n        - \"refs/pull/[/head\"\n",
			`kudod.yaml:7: repositories[0].previews.refs[1]: invalid pattern "refs/pull/[/head"`},
		{"preview refs not a list", head + "    previews: {refs: refs/pull/*/head}\n",
			`repositories[0].previews.refs: must be a list`},
		{"status without provider", head + "    status: {tokenFile: t}\n",
			`kudod.yaml:4: repositories[0].status: provider is required (gitea, github or gitlab)`},
		{"status without token", head + "    status: {provider: gitea}\n",
			`kudod.yaml:4: repositories[0].status: tokenFile or tokenEnv is required`},
		{"status with two tokens", head + "    status: {provider: gitea, tokenFile: t, tokenEnv: T}\n",
			`set tokenFile or tokenEnv, not both`},
		{"status token env not a name", head + "    status: {provider: gitea, tokenEnv: \"$TOKEN\"}\n",
			`kudod.yaml:4: repositories[0].status.tokenEnv: "$TOKEN" is not an environment variable name`},
		{"status url not http", head + "    status: {provider: gitea, tokenFile: t, url: git.example.com}\n",
			`repositories[0].status.url: "git.example.com" is not an http(s) URL`},
		{"gitlab with owner", head + "    status: {provider: gitlab, tokenFile: t, owner: o}\n",
			`owner and repo apply to gitea and github; gitlab takes project`},
		{"github with project", head + "    status: {provider: github, tokenFile: t, project: p}\n",
			`project applies to gitlab; github takes owner and repo`},
		{"status on a local path", "repositories:\n  - name: app\n    url: /srv/git\n    status: {provider: gitea, tokenFile: t}\n",
			`url is required: it cannot be derived from a local repository`},
		{"github repo not derivable", "repositories:\n  - name: app\n    url: https://github.com/app.git\n    status: {provider: github, tokenFile: t}\n",
			`owner and repo are required: they cannot be derived from the repository URL`},
		{"absolute path", head + "    path: /etc\n",
			`kudod.yaml:4: repositories[0].path: "/etc" must be a folder inside the repository`},
		{"path outside", head + "    path: ../other\n",
			`"../other" must be a folder inside the repository`},
		{"prune not a bool", head + "    prune: yes\n",
			`kudod.yaml:4: repositories[0].prune: must be true or false, not "yes"`},
		{"allowClusterScoped not a bool", head + "cluster: {allowClusterScoped: 1}\n",
			`kudod.yaml:4: cluster.allowClusterScoped: must be true or false, not "1"`},
		{"repositories not a list", "repositories: {name: app}\n",
			`kudod.yaml:1: repositories: must be a list, not a mapping`},
		{"repository not a mapping", "repositories: [app]\n",
			`kudod.yaml:1: repositories[0]: must be a mapping, not "app"`},
		{"no repositories", "repositories: []\n",
			`kudod.yaml:1: repositories: at least one repository is required`},
		{"only cluster", "cluster: {allowClusterScoped: true}\n",
			`kudod.yaml:1: repositories: at least one repository is required`},
		{"empty file", "",
			`kudod.yaml: the file is empty; at least one repository is required`},
		{"comments only", "# nothing\n",
			`kudod.yaml: the file is empty; at least one repository is required`},
		{"two documents", head + "---\n" + head,
			`kudod.yaml:4: only one YAML document is allowed`},
		{"invalid YAML", "cluster:\n  kubeconfig: a\n   allowClusterScoped: true\n",
			`kudod.yaml:3: invalid YAML: mapping values are not allowed in this context`},
		{"tab indentation", "repositories:\n  - name: app\n\turl: x\n",
			`invalid YAML: found a tab character that violates indentation`},
		{"top level not a mapping", "- a\n",
			`kudod.yaml:1: must be a mapping, not a list`},
		{"name is a list", "repositories:\n  - name: [a]\n    url: /srv\n",
			`kudod.yaml:2: repositories[0].name: must be a string, not a list`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(t, tc.yaml)
			if err == nil {
				t.Fatalf("parsed %+v, want error %q", got, tc.want)
			}
			if got != nil {
				t.Errorf("returned a config with the error")
			}
			full := strings.ReplaceAll(err.Error(), dir+"/", "")
			if !strings.Contains(full, tc.want) {
				t.Errorf("error:\n  %s\nwant it to contain:\n  %s", full, tc.want)
			}
			if strings.Contains(full, "hunter2") || strings.Contains(full, "s3cr3t") {
				t.Errorf("error shows a secret: %s", full)
			}
		})
	}
}

// TestParseReportsEveryError: all problems come back at once, in line order.
func TestParseReportsEveryError(t *testing.T) {
	_, err := parse(t, `
repositories:
  - name: Bad_Name
    url: git://x/y
    interval: soon
cluster:
  allowClusterScoped: maybe
`)
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`kudod.yaml:2: repositories[0].name: "Bad_Name" is not a DNS-1123 label`,
		`kudod.yaml:3: repositories[0].url: unsupported URL scheme "git"`,
		`kudod.yaml:4: repositories[0].interval: invalid duration "soon"`,
		`kudod.yaml:6: cluster.allowClusterScoped: must be true or false, not "maybe"`,
	}
	lines := strings.Split(strings.ReplaceAll(err.Error(), dir+"/", ""), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], want[i])
		}
	}
}

// TestLoadBuildsSources loads a file from disk, resolves its relative paths against the file's
// directory, and polls the repository it names through SourceOptions.
func TestLoadBuildsSources(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	root := t.TempDir()
	repoDir := filepath.Join(root, "git", "app")
	gitEnv := append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+root,
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	for _, args := range [][]string{
		{"init", "-q", "-b", "release", repoDir},
		{"-C", repoDir, "commit", "-q", "--allow-empty", "-m", "one"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Env = gitEnv
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	confDir := filepath.Join(root, "etc")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(confDir, "kudod.yaml")
	if err := os.WriteFile(file, []byte("repositories:\n  - name: app\n    url: ../git/app\n    branch: release\n    timeout: 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Repositories[0]
	if r.URL != repoDir {
		t.Fatalf("url = %q, want %q", r.URL, repoDir)
	}
	opts := r.SourceOptions(t.TempDir())
	if opts.Name != "app" || opts.Ref.Branch != "release" || opts.Timeout != 5*time.Second {
		t.Errorf("SourceOptions = %+v", opts)
	}
	src, err := sources.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	snap, _, err := src.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.RefName != "refs/heads/release" || snap.Repository != "app" {
		t.Errorf("snapshot = %s %s", snap.Repository, snap.RefName)
	}

	if _, err := Load(filepath.Join(root, "missing.yaml")); !os.IsNotExist(err) {
		t.Errorf("Load(missing) = %v, want a not-exist error", err)
	}
}
