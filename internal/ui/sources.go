package ui

import (
	"net/url"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// labelSourceStatus marks the daemon's repository-status ConfigMaps (api/v1alpha1's wire format).
const labelSourceStatus = v1alpha1.LabelSourceStatus

// Source is one repository as the Sources page shows it.
type Source struct {
	Repository string `json:"repository"`
	URL        string `json:"url,omitempty"`
	Ref        string `json:"ref,omitempty"`
	Revision   string `json:"revision,omitempty"`
	// RevisionURL links the revision on the forge when the URL names one.
	RevisionURL string     `json:"revisionURL,omitempty"`
	LastPoll    *time.Time `json:"lastPoll,omitempty"`
	NextPoll    *time.Time `json:"nextPoll,omitempty"`
	Interval    string     `json:"interval,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
}

// parseSource reads a repository's status ConfigMap. The URL loses any credentials it carries.
func parseSource(cm *corev1.ConfigMap) Source {
	st := v1alpha1.ParseSourceStatus(cm)
	s := Source{
		Repository: st.Repository, URL: redactURL(st.URL), Ref: st.Ref, Revision: st.Revision,
		Interval: st.Interval, LastError: redactURLs(st.LastError),
		LastPoll: timeOrNil(st.LastPoll), NextPoll: timeOrNil(st.NextPoll),
		RevisionURL: commitURL(st.URL, st.Revision),
	}
	if s.Repository == "" {
		s.Repository = strings.TrimPrefix(cm.Name, v1alpha1.SourceStatusPrefix)
	}
	return s
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() || t.Unix() <= 0 {
		return nil
	}
	return &t
}

func sortSources(s []Source) {
	sort.Slice(s, func(i, j int) bool { return s[i].Repository < s[j].Repository })
}

// commitLinker links commits of the repositories whose URL is known.
type commitLinker map[string]string // repository → clone URL

func (l commitLinker) commitURL(repository, revision string) string {
	return commitURL(l[repository], revision)
}

// commitURL is the web page of a commit for a clone URL of a forge (GitHub, Gitea, Forgejo,
// GitLab): https://host/owner/repo.git, ssh://git@host/owner/repo.git and git@host:owner/repo
// all become https://host/owner/repo/commit/SHA (/-/commit/ on GitLab). Local repositories
// (file://, paths) have no page.
func commitURL(cloneURL, revision string) string {
	if cloneURL == "" || len(revision) < 7 {
		return ""
	}
	for _, r := range revision {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return ""
		}
	}
	host, path, scheme := "", "", "https"
	if u, err := url.Parse(cloneURL); err == nil && u.Scheme != "" && u.Host != "" {
		switch u.Scheme {
		case "http", "https":
			scheme = u.Scheme
			host = u.Host
		case "ssh", "git", "git+ssh", "ssh+git":
			host = u.Hostname() // the SSH port is not the web port
		default:
			return ""
		}
		path = u.Path
	} else if at := strings.Index(cloneURL, "@"); at >= 0 && strings.Contains(cloneURL[at:], ":") && !strings.Contains(cloneURL, "://") {
		// scp-like: git@host:owner/repo.git
		rest := cloneURL[at+1:]
		colon := strings.Index(rest, ":")
		host, path = rest[:colon], "/"+strings.TrimPrefix(rest[colon+1:], "/")
	} else {
		return ""
	}
	path = strings.TrimSuffix(strings.TrimSuffix(path, "/"), ".git")
	if host == "" || strings.Count(strings.Trim(path, "/"), "/") < 1 {
		return ""
	}
	sep := "/commit/"
	if strings.Contains(strings.ToLower(host), "gitlab") {
		sep = "/-/commit/"
	}
	return scheme + "://" + host + path + sep + revision
}

// redactURL drops the user information (tokens) of a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}

// redactURLs drops user information from URLs inside a message, such as a fetch error.
func redactURLs(s string) string {
	fields := strings.Fields(s)
	changed := false
	for i, f := range fields {
		if strings.Contains(f, "://") && strings.Contains(f, "@") {
			trimmed := strings.Trim(f, `"'(),:;`)
			if r := redactURL(trimmed); r != trimmed {
				fields[i] = strings.Replace(f, trimmed, r, 1)
				changed = true
			}
		}
	}
	if !changed {
		return s
	}
	return strings.Join(fields, " ")
}
