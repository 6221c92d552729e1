package forge

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
)

// PullRequest is what previews need to know of a pull request (GitLab: merge request).
type PullRequest struct {
	Number int
	// Author is the forge user name of whoever opened it.
	Author string
	// Fork: its head branch is not in the repository it asks to merge into (a deleted fork's
	// head counts as a fork).
	Fork bool
	// HeadRepository is where its head branch lives: owner/name on Gitea and GitHub, the project
	// ID on GitLab; empty when that repository is gone.
	HeadRepository string
}

// pullBranch is the head or base of a Gitea or GitHub pull request.
type pullBranch struct {
	Repo *struct {
		ID       int64  `json:"id"`
		FullName string `json:"full_name"`
	} `json:"repo"`
}

// pull is the part of a Gitea or GitHub pull request kudod reads (Gitea: GET
// /repos/{owner}/{repo}/pulls/{index}; GitHub: GET /repos/{owner}/{repo}/pulls/{pull_number}).
type pull struct {
	User *user      `json:"user"`
	Head pullBranch `json:"head"`
	Base pullBranch `json:"base"`
}

func (p pull) pullRequest(number int) (PullRequest, error) {
	if p.User == nil || p.User.Login == "" {
		return PullRequest{}, fmt.Errorf("pull request #%d: the answer names no author", number)
	}
	pr := PullRequest{Number: number, Author: p.User.Login, Fork: true}
	if p.Head.Repo != nil {
		pr.HeadRepository = p.Head.Repo.FullName
		pr.Fork = p.Base.Repo == nil || p.Head.Repo.ID != p.Base.Repo.ID
	}
	return pr, nil
}

func (g *gitea) PullRequest(ctx context.Context, number int) (PullRequest, error) {
	var p pull
	if _, err := g.c.call(ctx, http.MethodGet, g.c.url(g.repo+"/pulls/"+strconv.Itoa(number), nil), nil, &p); err != nil {
		return PullRequest{}, fmt.Errorf("gitea %s: pull request #%d: %w", g.name, number, err)
	}
	pr, err := p.pullRequest(number)
	if err != nil {
		return PullRequest{}, fmt.Errorf("gitea %s: %w", g.name, err)
	}
	return pr, nil
}

func (g *gitHub) PullRequest(ctx context.Context, number int) (PullRequest, error) {
	var p pull
	if _, err := g.c.call(ctx, http.MethodGet, g.c.url(g.repo+"/pulls/"+strconv.Itoa(number), nil), nil, &p); err != nil {
		return PullRequest{}, fmt.Errorf("github %s: pull request #%d: %w", g.name, number, err)
	}
	pr, err := p.pullRequest(number)
	if err != nil {
		return PullRequest{}, fmt.Errorf("github %s: %w", g.name, err)
	}
	return pr, nil
}

// gitLabMergeRequest is the part of "Get single MR" (GET
// /projects/:id/merge_requests/:merge_request_iid) kudod reads.
type gitLabMergeRequest struct {
	Author          *user `json:"author"`
	SourceProjectID int64 `json:"source_project_id"`
	TargetProjectID int64 `json:"target_project_id"`
}

func (g *gitLab) PullRequest(ctx context.Context, number int) (PullRequest, error) {
	var mr gitLabMergeRequest
	if _, err := g.c.call(ctx, http.MethodGet, g.c.url(g.project+"/merge_requests/"+strconv.Itoa(number), nil), nil, &mr); err != nil {
		return PullRequest{}, fmt.Errorf("gitlab %s: merge request !%d: %w", g.name, number, err)
	}
	if mr.Author == nil || mr.Author.Username == "" {
		return PullRequest{}, fmt.Errorf("gitlab %s: merge request !%d: the answer names no author", g.name, number)
	}
	pr := PullRequest{Number: number, Author: mr.Author.Username, Fork: mr.SourceProjectID == 0 || mr.SourceProjectID != mr.TargetProjectID}
	if mr.SourceProjectID != 0 {
		pr.HeadRepository = strconv.FormatInt(mr.SourceProjectID, 10)
	}
	return pr, nil
}
