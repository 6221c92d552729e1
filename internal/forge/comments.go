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

// comment is the part of a forge's comment (GitLab: note) kudod reads.
type comment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
}

// commentAPI says where a forge keeps one pull request's comments.
type commentAPI struct {
	// list is the first page of the pull request's comments, oldest first.
	list string
	// create takes a POST of {"body": ...}.
	create string
	// update is the method and URL that replace a comment's body.
	update func(id int64) (method, target string)
}

// upsertComment edits the first comment of the pull request that contains marker to read
// body, or creates one. A matching comment the token may not edit (someone quoted the marker)
// is passed over.
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
	var matches []int64
	page := api.list
	for pages := 0; page != "" && pages < maxCommentPages; pages++ {
		var comments []comment
		h, err := c.call(ctx, http.MethodGet, page, nil, &comments)
		if err != nil {
			return fmt.Errorf("listing the comments: %w", err)
		}
		for _, cm := range comments {
			if strings.Contains(cm.Body, marker) {
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
