package forge

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/kudod-dev/kudod/test/testenv"
)

// tree writes files (path → content) into a new directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// giteaProvider is a provider for repo with an access token of the scopes statuses and
// comments need.
func giteaProvider(t *testing.T, g *testenv.GiteaServer, repo *testenv.GiteaRepo) Provider {
	t.Helper()
	tok := g.CreateToken(t, "forge", "write:repository", "write:issue", "read:user")
	p, err := NewProvider(Repository{
		Kind: Gitea, URL: g.URL, TokenFile: tokenFile(t, tok), Owner: repo.Owner, Repo: repo.Name,
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGiteaStatuses(t *testing.T) {
	g := testenv.Gitea(t)
	repo := g.CreateRepo(t, "statuses")
	sha := repo.Push(t, tree(t, map[string]string{"instances/zk.yaml": "v1\n"}), "main", "first")
	p := giteaProvider(t, g, repo)

	long := "deploy FATAL_ERROR in step zookeeper: " + strings.Repeat("the pod did not become ready; ", 10)
	for _, s := range []Status{
		{Repository: "platform", SHA: sha, Context: "kudod/kafka/zk", State: StatePending, Description: "deploy plan IN_PROGRESS"},
		{Repository: "platform", SHA: sha, Context: "kudod/kafka/zk", State: StateSuccess, Description: "deploy plan COMPLETE (3/3 steps, 14s)"},
		{Repository: "platform", SHA: sha, Context: "kudod/kafka/broker", State: StateFailure, Description: long},
		{Repository: "platform", SHA: sha, Context: "kudod/kafka/old", State: StateError, Description: "superseded by 89abcde", TargetURL: "https://kudod.example.com/plans/1"},
	} {
		if err := p.SetStatus(ctxT(t), s); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]testenv.CommitStatus{}
	for _, s := range repo.CombinedStatus(t, sha).Statuses {
		got[s.Context] = s
	}
	want := map[string]testenv.CommitStatus{
		"kudod/kafka/zk":     {State: "success", Context: "kudod/kafka/zk", Description: "deploy plan COMPLETE (3/3 steps, 14s)"},
		"kudod/kafka/broker": {State: "failure", Context: "kudod/kafka/broker", Description: truncate(long, MaxDescriptionLength)},
		"kudod/kafka/old":    {State: "error", Context: "kudod/kafka/old", Description: "superseded by 89abcde", TargetURL: "https://kudod.example.com/plans/1"},
	}
	if len(got) != len(want) {
		t.Errorf("statuses %+v, want %+v", got, want)
	}
	for ctx, w := range want {
		if got[ctx] != w {
			t.Errorf("status %s = %+v, want %+v", ctx, got[ctx], w)
		}
	}
	if d := got["kudod/kafka/broker"].Description; len([]rune(d)) != MaxDescriptionLength || !strings.HasSuffix(d, "…") {
		t.Errorf("long description stored as %q", d)
	}
}

func TestGiteaReporterPostsTheLatestState(t *testing.T) {
	g := testenv.Gitea(t)
	repo := g.CreateRepo(t, "reporter")
	sha := repo.Push(t, tree(t, map[string]string{"a": "b"}), "main", "first")
	r, err := NewReporter(ReporterOptions{Providers: map[string]Provider{"platform": giteaProvider(t, g, repo)}, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	r.Report(Status{Repository: "platform", SHA: sha, Context: "kudod/ns/zk", State: StatePending, Description: "deploy plan IN_PROGRESS"})
	r.Report(Status{Repository: "platform", SHA: sha, Context: "kudod/ns/zk", State: StateSuccess, Description: "deploy plan COMPLETE"})
	cancel() // Start drains the queue before it returns
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := repo.CombinedStatus(t, sha)
	if got.State != "success" || len(got.Statuses) != 1 || got.Statuses[0].Description != "deploy plan COMPLETE" {
		t.Errorf("combined status %+v, want success: deploy plan COMPLETE", got)
	}
}

func TestGiteaUpsertComment(t *testing.T) {
	g := testenv.Gitea(t)
	repo := g.CreateRepo(t, "comments")
	repo.Push(t, tree(t, map[string]string{"instances/zk.yaml": "v1\n"}), "main", "first")
	repo.Push(t, tree(t, map[string]string{"instances/zk.yaml": "v2\n"}), "feature", "change zk")
	pr := repo.OpenPullRequest(t, "feature", "main", "change zk")
	p := giteaProvider(t, g, repo)
	if p.MaxCommentLength() != 65535 {
		t.Errorf("Gitea MaxCommentLength %d, want 65535", p.MaxCommentLength())
	}

	const marker = "<!-- kudod-preview:platform -->"
	other := "<!-- kudod-preview:apps -->"
	if err := p.UpsertComment(ctxT(t), pr, marker, "## kudod plan preview\n1 instance: 1 update"); err != nil {
		t.Fatal(err)
	}
	if err := p.UpsertComment(ctxT(t), pr, other, "apps' preview"); err != nil {
		t.Fatal(err)
	}
	first := repo.Comments(t, pr)
	if err := p.UpsertComment(ctxT(t), pr, marker, "## kudod plan preview\n1 instance: 1 update, pushed again"); err != nil {
		t.Fatal(err)
	}
	second := repo.Comments(t, pr)
	if len(first) != 2 || len(second) != 2 {
		t.Fatalf("comments %+v then %+v, want one per marker", first, second)
	}
	if second[0].ID != first[0].ID || second[0].Body != marker+"\n## kudod plan preview\n1 instance: 1 update, pushed again" {
		t.Errorf("comment %+v after the second upsert, want comment %d updated in place", second[0], first[0].ID)
	}
	if second[1] != first[1] {
		t.Errorf("the other repository's comment changed: %+v → %+v", first[1], second[1])
	}
}

func TestGiteaWebhookTriggersAPoll(t *testing.T) {
	g := testenv.Gitea(t)
	repo := g.CreateRepo(t, "hooks")
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("gitea-hook-secret-0b7f\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	polls := make(chan string, 10)
	previews := make(chan string, 10)
	hook, err := NewWebhook(WebhookOptions{
		SecretFiles:   map[string]string{"platform": secretFile},
		OnPush:        func(r string) { polls <- r },
		OnPullRequest: func(r string) { previews <- r },
		Logger:        logr.Discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	repo.CreateWebhook(t, srv.URL+"/hooks/platform", "gitea-hook-secret-0b7f", "push", "pull_request")
	repo.Push(t, tree(t, map[string]string{"a": "b"}), "main", "first")
	select {
	case r := <-polls:
		if r != "platform" {
			t.Errorf("poll of %q, want platform", r)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Gitea's push delivery did not trigger a poll within 60s")
	}
	repo.Push(t, tree(t, map[string]string{"a": "c"}), "feature", "change")
	repo.OpenPullRequest(t, "feature", "main", "change")
	select {
	case r := <-previews:
		if r != "platform" {
			t.Errorf("preview of %q, want platform", r)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Gitea's pull-request delivery did not trigger a preview within 60s")
	}
}

// TestGiteaPullRequestAndCommentOwner: Gitea tells a pull request's author and whether it comes
// from a fork; the comment upsert never edits a comment another user wrote with kudod's marker,
// although the admin's token could.
func TestGiteaPullRequestAndCommentOwner(t *testing.T) {
	g := testenv.Gitea(t)
	repo := g.CreateRepo(t, "authors")
	repo.Push(t, tree(t, map[string]string{"a": "1\n"}), "main", "first")
	repo.Push(t, tree(t, map[string]string{"a": "2\n"}), "feature", "change")
	own := repo.OpenPullRequest(t, "feature", "main", "from a branch")
	stranger := g.CreateUser(t, "stranger")
	repo.AddCollaborator(t, stranger)
	fork := repo.ForkAs(t, stranger)
	fork.Push(t, tree(t, map[string]string{"a": "3\n"}), "evil", "from a fork")
	forked := repo.OpenPullRequestAs(t, stranger, stranger+":evil", "main", "from a fork")
	p := giteaProvider(t, g, repo)

	got, err := p.PullRequest(ctxT(t), own)
	if want := (PullRequest{Number: own, Author: g.User, HeadRepository: repo.Owner + "/" + repo.Name}); err != nil || got != want {
		t.Errorf("PullRequest(%d) = %+v, %v; want %+v", own, got, err, want)
	}
	got, err = p.PullRequest(ctxT(t), forked)
	if want := (PullRequest{Number: forked, Author: stranger, Fork: true, HeadRepository: fork.Owner + "/" + fork.Name}); err != nil || got != want {
		t.Errorf("PullRequest(%d) = %+v, %v; want %+v", forked, got, err, want)
	}

	const marker = "<!-- kudod-preview:platform -->"
	planted := repo.CommentAs(t, stranger, forked, marker+"\nnot kudod's")
	for _, body := range []string{"first", "second"} {
		if err := p.UpsertComment(ctxT(t), forked, marker, body); err != nil {
			t.Fatal(err)
		}
	}
	comments := repo.Comments(t, forked)
	if len(comments) != 2 || comments[0].ID != planted || comments[0].Body != marker+"\nnot kudod's" || comments[1].Body != marker+"\nsecond" {
		t.Errorf("comments %+v, want the stranger's untouched and kudod's own edited in place", comments)
	}
}
