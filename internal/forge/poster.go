package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// Poster posts JSON documents to URLs outside the forges — plan notifications
// (internal/notify) — with the retries, backoff and rate-limit waits of the forge clients: up
// to 6 requests per post, 429 and 503 answers waited out as Retry-After says, at most 2
// minutes of waiting in all. Its errors never show a URL's path or query, which for Slack,
// Teams and most webhooks is the secret.
type Poster struct {
	c *apiClient
}

// NewPoster returns a poster; opts are those of the forge providers.
func NewPoster(opts Options) *Poster {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: defaultRequestTimeout}
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "kudod"
	}
	c := &apiClient{
		http:      opts.HTTPClient,
		token:     func() (string, error) { return "", nil },
		authorize: func(http.Header, string) {},
		headers:   http.Header{"User-Agent": {opts.UserAgent}},
		retry:     defaultRetry(),
		clock:     realClock{},
		hidePath:  true,
	}
	return &Poster{c: c}
}

// Post sends body, a JSON document, to target with the given extra headers.
func (p *Poster) Post(ctx context.Context, target string, body []byte, header http.Header) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("the URL is not an http(s) URL")
	}
	if u.User != nil {
		return fmt.Errorf("%s://%s/…: the URL must not contain credentials", u.Scheme, u.Host)
	}
	_, err = p.c.send(ctx, http.MethodPost, u, body, header, nil)
	return err
}
