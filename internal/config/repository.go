package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kudod-dev/kudod/sources"
)

// dnsLabel is a DNS-1123 label: repository names appear in URLs and object labels.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// scpURL is git's scp-like syntax, user@host:path, which has no scheme.
var scpURL = regexp.MustCompile(`^(?:[^@/]+@)?[^@/:]+:`)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (d *decoder) repositories(n *yaml.Node, field string) []Repository {
	names := map[string]string{} // name → where it was first used
	return list(d, n, field, func(item *yaml.Node, f string) Repository {
		r, nameNode := d.repository(item, f)
		if r.Name != "" {
			if first, dup := names[r.Name]; dup {
				d.errorf(nameNode, f+".name", "duplicate repository name %q (also %s)", r.Name, first)
			} else {
				names[r.Name] = fmt.Sprintf("%s, line %d", f, nameNode.Line)
			}
		}
		return r
	})
}

// repository reads one repository and returns it with the node of its name, for errors.
func (d *decoder) repository(n *yaml.Node, field string) (Repository, *yaml.Node) {
	r := Repository{
		Interval:      DefaultInterval,
		Path:          DefaultPath,
		Prune:         true,
		DriftInterval: DefaultDriftInterval,
		Timeout:       DefaultTimeout,
	}
	if m := deref(n); m.Kind != yaml.MappingNode {
		d.errorf(m, field, "must be a mapping, not %s", kindName(m))
		return r, m
	}
	var (
		nameNode, urlNode, refNode, branchNode, authNode, statusNode *yaml.Node
		scheme, branch                                               string
		ref                                                          sources.Ref
	)
	d.fields(n, field, fieldSet{
		"name": func(v *yaml.Node, f string) {
			nameNode = v
			r.Name = d.str(v, f)
			if r.Name != "" && (len(r.Name) > 63 || !dnsLabel.MatchString(r.Name)) {
				d.errorf(v, f, "%q is not a DNS-1123 label (lower case letters, digits and '-', at most 63, starting and ending with a letter or digit)", r.Name)
			}
		},
		"url": func(v *yaml.Node, f string) {
			urlNode = v
			r.URL, scheme = d.repositoryURL(v, f)
		},
		"ref": func(v *yaml.Node, f string) {
			refNode = v
			ref = d.ref(v, f)
		},
		"branch": func(v *yaml.Node, f string) {
			branchNode = v
			branch = d.str(v, f)
			if err := (sources.Ref{Branch: branch}).Validate(); branch == "" || err != nil {
				d.errorf(v, f, "%q is not a branch name", branch)
			}
		},
		"interval":      func(v *yaml.Node, f string) { r.Interval = d.duration(v, f) },
		"path":          func(v *yaml.Node, f string) { r.Path = d.repoPath(v, f) },
		"auth":          func(v *yaml.Node, f string) { authNode = v; r.Auth = d.auth(v, f) },
		"webhook":       func(v *yaml.Node, f string) { r.Webhook = d.webhook(v, f) },
		"previews":      func(v *yaml.Node, f string) { r.Previews = d.previews(v, f) },
		"status":        func(v *yaml.Node, f string) { statusNode = v; r.Status = d.status(v, f) },
		"prune":         func(v *yaml.Node, f string) { r.Prune = d.boolean(v, f) },
		"driftInterval": func(v *yaml.Node, f string) { r.DriftInterval = d.duration(v, f) },
		"allowEmpty":    func(v *yaml.Node, f string) { r.AllowEmpty = d.boolean(v, f) },
		"timeout":       func(v *yaml.Node, f string) { r.Timeout = d.duration(v, f) },
		"approval":      func(v *yaml.Node, f string) { r.Approval = d.approval(v, f) },
		"windows":       func(v *yaml.Node, f string) { r.Windows = d.windows(v, f) },
		// The repository's lane (tenancy.go).
		"namespaces":         func(v *yaml.Node, f string) { r.Namespaces = d.namespaces(v, f) },
		"allowClusterScoped": func(v *yaml.Node, f string) { b := d.boolean(v, f); r.AllowClusterScoped = &b },
		"serviceAccountName": func(v *yaml.Node, f string) { r.ServiceAccountName = d.serviceAccountName(v, f) },
		"decryption":         func(v *yaml.Node, f string) { r.Decryption = d.decryption(v, f) },
	})
	if nameNode == nil {
		nameNode = n
		d.errorf(n, field, "name is required")
	}
	if urlNode == nil {
		d.errorf(n, field, "url is required")
	}
	switch {
	case refNode != nil && branchNode != nil:
		d.errorf(branchNode, field+".branch", "set either branch or ref, not both")
	case refNode != nil:
		r.Ref = ref
	case branchNode != nil:
		r.Ref = sources.Ref{Branch: branch}
	}
	if r.Ref.IsZero() {
		r.Ref = sources.Ref{Branch: sources.DefaultBranch}
	}
	if authNode != nil && scheme != "" {
		d.checkAuth(authNode, field+".auth", r.Auth, scheme)
	} else if scheme == "ssh" {
		d.errorf(urlNode, field+".url", "ssh URLs need auth.sshKeyFile and auth.knownHostsFile (kudod never reads ~/.ssh)")
	}
	if statusNode != nil && r.Status.Provider != "" && r.URL != "" {
		d.completeStatus(statusNode, field+".status", &r.Status, r.URL, scheme)
	}
	return r, nameNode
}

// repositoryURL checks a repository URL and returns it (local paths made absolute) with its
// transport: https, http, ssh or file.
func (d *decoder) repositoryURL(n *yaml.Node, field string) (string, string) {
	raw := d.str(n, field)
	switch {
	case raw == "":
		d.errorf(n, field, "must not be empty")
		return "", ""
	case strings.Contains(raw, "://"):
		u, err := url.Parse(raw)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // without the URL, which may hold a password
			}
			d.errorf(n, field, "invalid URL: %v", err)
			return "", ""
		}
		if _, hasPassword := u.User.Password(); hasPassword {
			d.errorf(n, field, "must not contain a password; use auth.passwordFile or auth.tokenFile")
			return "", ""
		}
		scheme := strings.ToLower(u.Scheme)
		switch scheme {
		case "https", "http", "ssh":
			if u.Hostname() == "" {
				d.errorf(n, field, "%q has no host", u.Redacted())
				return "", ""
			}
		case "file":
			if (u.Host != "" && u.Host != "localhost") || !path.IsAbs(u.Path) {
				d.errorf(n, field, "file URLs need an absolute path, like file:///srv/git/repo")
				return "", ""
			}
		default:
			d.errorf(n, field, "unsupported URL scheme %q (use https, http, ssh or file)", u.Scheme)
			return "", ""
		}
		return raw, scheme
	case scpURL.MatchString(raw):
		return raw, "ssh"
	case filepath.IsAbs(raw):
		return filepath.Clean(raw), "file"
	}
	return filepath.Join(d.dir, raw), "file"
}

func (d *decoder) ref(n *yaml.Node, field string) sources.Ref {
	var r sources.Ref
	if n = deref(n); n.Kind == yaml.ScalarNode && !isNull(n) {
		d.errorf(n, field, "must be a mapping like {branch: main}, not %s (`branch: main` is accepted next to url too)", kindName(n))
		return r
	}
	d.fields(n, field, fieldSet{
		"branch": func(v *yaml.Node, f string) { r.Branch = d.str(v, f) },
		"tag":    func(v *yaml.Node, f string) { r.Tag = d.str(v, f) },
		"semver": func(v *yaml.Node, f string) { r.SemVer = d.str(v, f) },
		"name":   func(v *yaml.Node, f string) { r.Name = d.str(v, f) },
		"commit": func(v *yaml.Node, f string) { r.Commit = strings.ToLower(d.str(v, f)) },
	})
	if n.Kind != yaml.MappingNode && !isNull(n) {
		return r // reported by fields
	}
	if r.IsZero() {
		d.errorf(n, field, "must set one of branch, tag, semver, name or commit")
		return r
	}
	if err := r.Validate(); err != nil {
		d.errorf(n, field, "%v", err)
	}
	return r
}

// repoPath reads the folder to scan: relative to the repository root and inside it.
func (d *decoder) repoPath(n *yaml.Node, field string) string {
	s := d.str(n, field)
	clean := path.Clean(strings.ReplaceAll(s, `\`, "/"))
	if s == "" || path.IsAbs(clean) || !fs.ValidPath(clean) {
		d.errorf(n, field, "%q must be a folder inside the repository, like . or deploy/prod", s)
		return DefaultPath
	}
	return clean
}

func (d *decoder) auth(n *yaml.Node, field string) sources.Auth {
	var a sources.Auth
	d.fields(n, field, fieldSet{
		"usernameFile":      func(v *yaml.Node, f string) { a.UsernameFile = d.filePath(v, f) },
		"passwordFile":      func(v *yaml.Node, f string) { a.PasswordFile = d.filePath(v, f) },
		"tokenFile":         func(v *yaml.Node, f string) { a.TokenFile = d.filePath(v, f) },
		"sshKeyFile":        func(v *yaml.Node, f string) { a.SSHKeyFile = d.filePath(v, f) },
		"sshPassphraseFile": func(v *yaml.Node, f string) { a.SSHPassphraseFile = d.filePath(v, f) },
		"knownHostsFile":    func(v *yaml.Node, f string) { a.KnownHostsFile = d.filePath(v, f) },
	})
	return a
}

// checkAuth checks that the credentials fit each other and the URL's transport.
func (d *decoder) checkAuth(n *yaml.Node, field string, a sources.Auth, scheme string) {
	httpSet := a.UsernameFile != "" || a.PasswordFile != "" || a.TokenFile != ""
	sshSet := a.SSHKeyFile != "" || a.SSHPassphraseFile != "" || a.KnownHostsFile != ""
	switch scheme {
	case "file":
		if httpSet || sshSet {
			d.errorf(n, field, "local repositories take no credentials")
		}
	case "http", "https":
		if sshSet {
			d.errorf(n, field, "sshKeyFile, sshPassphraseFile and knownHostsFile apply to ssh URLs only")
		}
		switch {
		case a.TokenFile != "" && a.PasswordFile != "":
			d.errorf(n, field, "set tokenFile or passwordFile, not both")
		case a.PasswordFile != "" && a.UsernameFile == "":
			d.errorf(n, field, "passwordFile needs usernameFile")
		case a.UsernameFile != "" && a.PasswordFile == "" && a.TokenFile == "":
			d.errorf(n, field, "usernameFile needs passwordFile or tokenFile")
		}
	case "ssh":
		if httpSet {
			d.errorf(n, field, "usernameFile, passwordFile and tokenFile apply to http(s) URLs only; ssh takes the user from the URL")
		}
		if a.SSHKeyFile == "" || a.KnownHostsFile == "" {
			d.errorf(n, field, "ssh URLs need sshKeyFile and knownHostsFile (kudod never reads ~/.ssh)")
		}
		if a.SSHPassphraseFile != "" && a.SSHKeyFile == "" {
			d.errorf(n, field, "sshPassphraseFile needs sshKeyFile")
		}
	}
}

func (d *decoder) webhook(n *yaml.Node, field string) Webhook {
	var w Webhook
	set := false
	d.fields(n, field, fieldSet{
		"secretFile": func(v *yaml.Node, f string) { set = true; w.SecretFile = d.filePath(v, f) },
	})
	if !set {
		d.errorf(n, field, "secretFile is required")
	}
	return w
}

func (d *decoder) previews(n *yaml.Node, field string) Previews {
	var p Previews
	d.fields(n, field, fieldSet{
		"refs": func(v *yaml.Node, f string) {
			v = deref(v)
			p.Refs = d.stringList(v, f)
			for i, pattern := range p.Refs {
				_, err := path.Match(pattern, "")
				switch {
				case !strings.HasPrefix(pattern, "refs/"):
					d.errorf(v.Content[i], fmt.Sprintf("%s[%d]", f, i), "%q must be a full ref name pattern, like refs/pull/*/head", pattern)
				case err != nil:
					d.errorf(v.Content[i], fmt.Sprintf("%s[%d]", f, i), "invalid pattern %q: %v", pattern, err)
				}
			}
		},
		"authors": func(v *yaml.Node, f string) { p.Authors = d.previewAuthors(v, f) },
		"forks":   func(v *yaml.Node, f string) { p.Forks = d.boolean(v, f) },
	})
	return p
}

func (d *decoder) status(n *yaml.Node, field string) Status {
	var s Status
	providerSet := false
	d.fields(n, field, fieldSet{
		"provider": func(v *yaml.Node, f string) {
			providerSet = true
			s.Provider = d.str(v, f)
			switch s.Provider {
			case ProviderGitea, ProviderGitHub, ProviderGitLab:
			default:
				d.errorf(v, f, "unknown provider %q (use gitea, github or gitlab)", s.Provider)
				s.Provider = ""
			}
		},
		"url": func(v *yaml.Node, f string) {
			s.URL = strings.TrimSuffix(d.str(v, f), "/")
			if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				d.errorf(v, f, "%q is not an http(s) URL", s.URL)
			} else if u.User != nil {
				d.errorf(v, f, "must not contain credentials; use tokenFile or tokenEnv")
			}
		},
		"tokenFile": func(v *yaml.Node, f string) { s.TokenFile = d.filePath(v, f) },
		"tokenEnv": func(v *yaml.Node, f string) {
			s.TokenEnv = d.str(v, f)
			if !envName.MatchString(s.TokenEnv) {
				d.errorf(v, f, "%q is not an environment variable name", s.TokenEnv)
			}
		},
		"owner":   func(v *yaml.Node, f string) { s.Owner = d.str(v, f) },
		"repo":    func(v *yaml.Node, f string) { s.Repo = d.str(v, f) },
		"project": func(v *yaml.Node, f string) { s.Project = d.str(v, f) },
	})
	if !providerSet {
		d.errorf(n, field, "provider is required (gitea, github or gitlab)")
	}
	return s
}

// completeStatus checks the status settings against each other and fills in the URL and the
// repository's name on the provider from the repository URL.
func (d *decoder) completeStatus(n *yaml.Node, field string, s *Status, repoURL, scheme string) {
	switch {
	case s.TokenFile == "" && s.TokenEnv == "":
		d.errorf(n, field, "tokenFile or tokenEnv is required")
	case s.TokenFile != "" && s.TokenEnv != "":
		d.errorf(n, field, "set tokenFile or tokenEnv, not both")
	}
	host, repoPath := splitRepositoryURL(repoURL, scheme)
	if s.URL == "" {
		if host == "" {
			d.errorf(n, field, "url is required: it cannot be derived from a local repository")
		} else {
			s.URL = host
		}
	}
	repoPath = strings.TrimSuffix(strings.Trim(repoPath, "/"), ".git")
	switch s.Provider {
	case ProviderGitLab:
		if s.Owner != "" || s.Repo != "" {
			d.errorf(n, field, "owner and repo apply to gitea and github; gitlab takes project")
		}
		if s.Project == "" {
			s.Project = repoPath
		}
		if s.Project == "" {
			d.errorf(n, field, "project is required: it cannot be derived from the repository URL")
		}
	default:
		if s.Project != "" {
			d.errorf(n, field, "project applies to gitlab; %s takes owner and repo", s.Provider)
		}
		parts := strings.Split(repoPath, "/")
		if s.Owner == "" && s.Repo == "" && len(parts) >= 2 {
			s.Owner, s.Repo = parts[len(parts)-2], parts[len(parts)-1]
		}
		if s.Owner == "" || s.Repo == "" {
			d.errorf(n, field, "owner and repo are required: they cannot be derived from the repository URL")
		}
	}
}

// splitRepositoryURL returns the base URL of a repository's host (https for ssh) and the
// repository's path on it; the host is empty for local repositories.
func splitRepositoryURL(raw, scheme string) (host, repoPath string) {
	switch scheme {
	case "http", "https":
		u, err := url.Parse(raw)
		if err != nil {
			return "", ""
		}
		return scheme + "://" + u.Host, u.Path
	case "ssh":
		if !strings.Contains(raw, "://") {
			hostPart, p, _ := strings.Cut(raw, ":")
			if _, h, ok := strings.Cut(hostPart, "@"); ok {
				hostPart = h
			}
			return "https://" + hostPart, p
		}
		u, err := url.Parse(raw)
		if err != nil {
			return "", ""
		}
		return "https://" + u.Hostname(), u.Path
	}
	return "", ""
}
