package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Longest comment bodies the forges accept, in characters.
const (
	// GitHub refuses longer issue and pull-request comments ("body is too long (maximum is
	// 65536 characters)").
	gitHubMaxComment = 65536
	// GitLab's notes API refuses notes over 1,000,000 characters.
	gitLabMaxComment = 1000000
	// Gitea stores comments as LONGTEXT and sets no limit of its own; kudod keeps to 65535,
	// what fits a MySQL TEXT column, so that comments stay readable.
	giteaMaxComment = 65535
)

// maxCommentPages bounds how many pages of comments UpsertComment reads looking for its own.
const maxCommentPages = 50

// comment is the part of a forge's comment (GitLab: note) kudod reads: its author is "user"
// on Gitea and GitHub, "author" on GitLab.
type comment struct {
	ID     int64  `json:"id"`
	Body   string `json:"body"`
	User   *user  `json:"user,omitempty"`
	Author *user  `json:"author,omitempty"`
}

// user is a forge account as the APIs return it: GitHub and Gitea call the name login, GitLab
// username.
type user struct {
	ID       int64  `json:"id"`
	Login    string `json:"login,omitempty"`
	Username string `json:"username,omitempty"`
}

// writtenBy reports whether the comment's author is the account with that ID.
func (c comment) writtenBy(id int64) bool {
	switch {
	case c.User != nil:
		return c.User.ID == id
	case c.Author != nil:
		return c.Author.ID == id
	}
	return false
}

// commentAPI says where a forge keeps one pull request's comments.
type commentAPI struct {
	// list is the first page of the pull request's comments, oldest first.
	list string
	// create takes a POST of {"body": ...}.
	create string
	// update is the method and URL that replace a comment's body.
	update func(id int64) (method, target string)
	// self is the URL of the token's own account (GET).
	self string
}

// upsertComment edits the first comment of the pull request that contains marker and that
// kudod's own account wrote to read body, or creates one. A comment someone else wrote is never
// edited, whatever it contains: with a token that may edit every comment (a maintainer's), a
// pull request author could otherwise plant the marker and have kudod overwrite their comment,
// or someone else's.
func upsertComment(ctx context.Context, c *apiClient, api commentAPI, limit int, marker, body string) error {
	if strings.TrimSpace(marker) == "" {
		return errors.New("the comment marker is empty")
	}
	if !strings.Contains(body, marker) {
		body = marker + "\n" + body
	}
	if n := utf8.RuneCountInString(body); n > limit {
		return fmt.Errorf("the comment has %d characters; the forge takes at most %d", n, limit)
	}
	self, err := c.self(ctx, api.self)
	if err != nil {
		return err
	}
	var matches []int64
	page := api.list
	for pages := 0; page != "" && pages < maxCommentPages; pages++ {
		var comments []comment
		h, err := c.call(ctx, http.MethodGet, page, nil, &comments)
		if err != nil {
			return fmt.Errorf("listing the comments: %w", err)
		}
		for _, cm := range comments {
			if strings.Contains(cm.Body, marker) && cm.writtenBy(self) {
				matches = append(matches, cm.ID)
			}
		}
		page = nextPage(h)
	}
	payload := map[string]string{"body": body}
	for _, id := range matches {
		method, target := api.update(id)
		_, err := c.call(ctx, method, target, payload, nil)
		if err == nil {
			return nil
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusForbidden || apiErr.StatusCode == http.StatusNotFound) {
			continue
		}
		return fmt.Errorf("updating comment %d: %w", id, err)
	}
	if _, err := c.call(ctx, http.MethodPost, api.create, payload, nil); err != nil {
		return fmt.Errorf("creating the comment: %w", err)
	}
	return nil
}
