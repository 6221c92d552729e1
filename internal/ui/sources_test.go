package ui

import "testing"

func TestCommitURL(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	for _, tt := range []struct{ url, want string }{
		{"https://github.com/kudod-dev/kudod.git", "https://github.com/kudod-dev/kudod/commit/" + sha},
		{"https://github.com/kudod-dev/kudod", "https://github.com/kudod-dev/kudod/commit/" + sha},
		{"https://user:token@gitea.example.com:3000/ops/platform.git", "https://gitea.example.com:3000/ops/platform/commit/" + sha},
		{"http://127.0.0.1:3000/kudod/demo.git", "http://127.0.0.1:3000/kudod/demo/commit/" + sha},
		{"ssh://git@gitea.example.com:2222/ops/platform.git", "https://gitea.example.com/ops/platform/commit/" + sha},
		{"git@github.com:kudod-dev/kudod.git", "https://github.com/kudod-dev/kudod/commit/" + sha},
		{"https://gitlab.com/group/sub/project.git", "https://gitlab.com/group/sub/project/-/commit/" + sha},
		{"file:///srv/git/repo", ""},
		{"/srv/git/repo", ""},
		{"https://example.com/repo.git", ""}, // no owner: not a forge's layout
		{"", ""},
	} {
		if got := commitURL(tt.url, sha); got != tt.want {
			t.Errorf("commitURL(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
	if got := commitURL("https://github.com/a/b", "main"); got != "" {
		t.Errorf("a branch name is no commit: %q", got)
	}
	if got := commitURL("https://github.com/a/b", `0123456"><script>`); got != "" {
		t.Errorf("a revision that is not hex: %q", got)
	}
}

func TestRedactURLs(t *testing.T) {
	if got := redactURL("https://user:token@example.com/a.git"); got != "https://example.com/a.git" {
		t.Errorf("redactURL: %q", got)
	}
	got := redactURLs(`fetch "https://x:secret@example.com/a.git": 401`)
	if got != `fetch "https://example.com/a.git": 401` {
		t.Errorf("redactURLs: %q", got)
	}
	if got := redactURLs("no url here"); got != "no url here" {
		t.Errorf("redactURLs changed %q", got)
	}
}
