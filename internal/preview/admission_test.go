package preview

import (
	"context"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/internal/desired"
	"github.com/kudod-dev/kudod/internal/forge"
)

func TestAuthorsAdmit(t *testing.T) {
	branch := forge.PullRequest{Number: 1, Author: "anyone", HeadRepository: "ops/platform"}
	fork := forge.PullRequest{Number: 2, Author: "mallory", Fork: true, HeadRepository: "mallory/platform"}
	trusted := forge.PullRequest{Number: 3, Author: "bot-renovate", Fork: true, HeadRepository: "bots/platform"}
	for _, tc := range []struct {
		name    string
		authors Authors
		pr      forge.PullRequest
		want    bool
	}{
		{"the repository's own branch", Authors{}, branch, true},
		{"a fork by default", Authors{}, fork, false},
		{"forks admitted", Authors{Forks: true}, fork, true},
		{"an author pattern", Authors{Patterns: []string{"bot-*"}}, trusted, true},
		{"another author", Authors{Patterns: []string{"bot-*", "alice"}}, fork, false},
	} {
		ok, why := tc.authors.Admit(tc.pr)
		if ok != tc.want {
			t.Errorf("%s: Admit = %v (%s), want %v", tc.name, ok, why, tc.want)
		}
		if !ok && !strings.Contains(why, "comes from a fork (mallory/platform) by mallory") {
			t.Errorf("%s: the reason %q does not name the fork and its author", tc.name, why)
		}
	}
}

// fakeForge answers PullRequest from a map.
type fakeForge struct{ pulls map[int]forge.PullRequest }

func (f fakeForge) UpsertComment(context.Context, int, string, string) error { return nil }
func (f fakeForge) MaxCommentLength() int                                    { return 1000 }
func (f fakeForge) PullRequest(_ context.Context, n int) (forge.PullRequest, error) {
	return f.pulls[n], nil
}

func TestQueueAdmitsPullRequests(t *testing.T) {
	pulls := fakeForge{pulls: map[int]forge.PullRequest{
		1: {Number: 1, Author: "alice", HeadRepository: "ops/platform"},
		2: {Number: 2, Author: "mallory", Fork: true, HeadRepository: "mallory/platform"},
	}}
	q := NewQueue(QueueOptions{Commenters: map[string]Commenter{"forge": pulls}})
	repo := func(name string, a Authors) Repository {
		return Repository{Repository: desired.Repository{Name: name}, Authors: a}
	}
	for _, tc := range []struct {
		name string
		repo Repository
		ref  string
		want bool
	}{
		{"a branch", repo("forge", Authors{}), "refs/heads/feature", true},
		{"a pull request from a branch", repo("forge", Authors{}), "refs/pull/1/head", true},
		{"a pull request from a fork", repo("forge", Authors{}), "refs/pull/2/head", false},
		{"forks admitted", repo("forge", Authors{Forks: true}), "refs/pull/2/head", true},
		{"no forge to ask", repo("none", Authors{}), "refs/pull/1/head", false},
		{"no forge, forks admitted", repo("none", Authors{Forks: true}), "refs/pull/1/head", true},
		{"no forge at all", repo("none", Authors{}), "refs/merge-requests/1/head", false},
	} {
		ok, why, err := q.admit(context.Background(), tc.repo, tc.ref)
		if err != nil || ok != tc.want {
			t.Errorf("%s: admit = %v (%s), %v; want %v", tc.name, ok, why, err, tc.want)
		}
	}
}
