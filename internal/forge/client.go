package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// tokenSource reads the API token when a request is sent, so that a rotated token file or a
// changed environment takes effect without a restart.
type tokenSource func() (string, error)

func newTokenSource(s Repository) (tokenSource, error) {
	switch {
	case s.TokenFile != "" && s.TokenEnv != "":
		return nil, errors.New("status provider: set tokenFile or tokenEnv, not both")
	case s.TokenFile != "":
		return func() (string, error) {
			data, err := os.ReadFile(s.TokenFile)
			if err != nil {
				// The error names the file, never its content.
				return "", fmt.Errorf("reading the API token: %w", err)
			}
			token := strings.TrimSpace(string(data))
			if token == "" {
				return "", fmt.Errorf("the API token file %s is empty", s.TokenFile)
			}
			return token, nil
		}, nil
	case s.TokenEnv != "":
		return func() (string, error) {
			token := strings.TrimSpace(os.Getenv(s.TokenEnv))
			if token == "" {
				return "", fmt.Errorf("the API token variable %s is unset or empty", s.TokenEnv)
			}
			return token, nil
		}, nil
	default:
		return nil, errors.New("status provider: tokenFile or tokenEnv is required")
	}
}

// APIError is a forge's answer other than success.
type APIError struct {
	Method, URL string
	StatusCode  int
	// Message is the start of the answer's body.
	Message string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// retryPolicy bounds how hard one API call tries.
type retryPolicy struct {
	// attempts is the most requests one call sends.
	attempts int
	// backoff spaces attempts after network errors and 5xx answers.
	backoff wait.Backoff
	// maxWait bounds the total time one call waits between attempts, rate-limit waits included:
	// a forge asking for a longer wait fails the call instead.
	maxWait time.Duration
}

// defaultRetry: up to 6 requests, 0.5s, 1s, 2s, ... apart plus up to 50% jitter, and at most
// 2 minutes of waiting in all.
func defaultRetry() retryPolicy {
	return retryPolicy{
		attempts: 6,
		backoff:  wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: 6, Cap: 30 * time.Second},
		maxWait:  2 * time.Minute,
	}
}

// clock is the time source of the retries; tests replace it to check waits without sleeping.
type clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// apiClient sends JSON requests to one forge's API with retries; the provider says how to
// authenticate and which headers to add.
type apiClient struct {
	base      *url.URL
	http      *http.Client
	token     tokenSource
	authorize func(h http.Header, token string)
	headers   http.Header
	retry     retryPolicy
	clock     clock

	// hidePath keeps a URL's path and query out of errors: a notification's URL is its secret.
	hidePath bool

	mu sync.Mutex
	// blockedUntil is when the forge's rate limit allows requests again (zero: now).
	blockedUntil time.Time
	// selfID is the token's own account, once read (self); selfToken the token it was read with.
	selfID    int64
	selfToken string
}

// self returns the ID of the account the API token belongs to, read once from target (the
// forge's "authenticated user" endpoint) and again only when the token changes.
func (c *apiClient) self(ctx context.Context, target string) (int64, error) {
	token, err := c.token()
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	id, known := c.selfID, c.selfToken == token && c.selfID != 0
	c.mu.Unlock()
	if known {
		return id, nil
	}
	var u user
	if _, err := c.call(ctx, http.MethodGet, target, nil, &u); err != nil {
		return 0, fmt.Errorf("reading the token's own account, to tell kudod's comments from others' (Gitea tokens need the read:user scope): %w", err)
	}
	if u.ID == 0 {
		return 0, fmt.Errorf("reading the token's own account: the answer of GET %s has no id", target)
	}
	c.mu.Lock()
	c.selfID, c.selfToken = u.ID, token
	c.mu.Unlock()
	return u.ID, nil
}

// show is how errors name a URL: without credentials, and only scheme and host when its path
// is secret.
func (c *apiClient) show(u *url.URL) string {
	if c.hidePath {
		return u.Scheme + "://" + u.Host + "/…"
	}
	return u.Redacted()
}

func newAPIClient(base string, token tokenSource, opts Options, authorize func(http.Header, string), headers http.Header) (*apiClient, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("status provider: %q is not an http(s) URL", base)
	}
	if u.User != nil {
		return nil, errors.New("status provider: the URL must not contain credentials")
	}
	h := headers.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("User-Agent", opts.UserAgent)
	return &apiClient{base: u, http: opts.HTTPClient, token: token, authorize: authorize, headers: h, retry: defaultRetry(), clock: realClock{}}, nil
}

// url joins the API base and path, whose segments the caller has escaped.
func (c *apiClient) url(path string, query url.Values) string {
	s := c.base.String() + path
	if len(query) > 0 {
		s += "?" + query.Encode()
	}
	return s
}

// call sends in (when not nil) as JSON with method to target, an absolute URL on the API's
// host, and decodes the JSON answer into out (when not nil). It returns the answer's headers.
func (c *apiClient) call(ctx context.Context, method, target string, in, out any) (http.Header, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	// Pagination links come from the forge: the token only ever goes to the configured host.
	if u.Scheme != c.base.Scheme || u.Host != c.base.Host {
		return nil, fmt.Errorf("%s %s: not on the forge's API host %s", method, target, c.base.Host)
	}
	var body []byte
	if in != nil {
		if body, err = json.Marshal(in); err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, target, err)
		}
	}
	return c.send(ctx, method, u, body, nil, out)
}

// send sends body (when not nil) as JSON with method to u, with the retries, backoff and
// rate-limit waits of call, adding header to the client's headers.
func (c *apiClient) send(ctx context.Context, method string, u *url.URL, body []byte, header http.Header, out any) (http.Header, error) {
	var waited time.Duration
	sleep := func(d time.Duration, cause error) error {
		if waited+d > c.retry.maxWait {
			return fmt.Errorf("%w (giving up: waiting %s more would exceed %s)", cause, d.Round(time.Second), c.retry.maxWait)
		}
		waited += d
		if err := c.clock.Sleep(ctx, d); err != nil {
			return fmt.Errorf("%w (while waiting to retry: %w)", cause, err)
		}
		return nil
	}
	if d := c.blockedFor(); d > 0 {
		if err := sleep(d, fmt.Errorf("%s %s: rate limited by the forge", method, c.show(u))); err != nil {
			return nil, err
		}
	}
	backoff := c.retry.backoff.DelayFunc()
	for attempt := 1; ; attempt++ {
		answer, wait, retry, err := c.attempt(ctx, method, u, body, header, out)
		if err == nil {
			return answer, nil
		}
		if !retry || attempt >= c.retry.attempts || ctx.Err() != nil {
			return nil, err
		}
		if wait <= 0 {
			wait = backoff()
		}
		if err := sleep(wait, err); err != nil {
			return nil, err
		}
	}
}

// attempt sends one request. It reports whether the failure is worth retrying and how long
// the forge asked to wait first (zero: the backoff decides).
func (c *apiClient) attempt(ctx context.Context, method string, u *url.URL, body []byte, extra http.Header, out any) (header http.Header, wait time.Duration, retry bool, err error) {
	token, err := c.token()
	if err != nil {
		return nil, 0, false, err
	}
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), reader)
	if err != nil {
		return nil, 0, false, fmt.Errorf("%s %s: %w", method, c.show(u), err)
	}
	for k, v := range c.headers {
		req.Header[k] = v
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if reader != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.authorize(req.Header, token)

	resp, err := c.http.Do(req)
	if err != nil {
		// Network errors are retried, cancellations are not; neither carries a header.
		return nil, 0, ctx.Err() == nil, fmt.Errorf("%s %s: %w", method, c.show(u), err)
	}
	defer resp.Body.Close()
	c.noteRateLimit(resp)

	if resp.StatusCode/100 == 2 {
		if out != nil && resp.StatusCode != http.StatusNoContent {
			if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(out); err != nil {
				return nil, 0, false, fmt.Errorf("%s %s: decoding the answer: %w", method, c.show(u), err)
			}
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return resp.Header, 0, false, nil
	}

	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	apiErr := &APIError{Method: method, URL: c.show(u), StatusCode: resp.StatusCode, Message: cleanMessage(msg, token)}
	wait, limited := c.rateLimitWait(resp)
	switch {
	case limited:
		return nil, wait, true, apiErr
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		return nil, 0, true, apiErr
	default:
		return nil, 0, false, apiErr
	}
}

// exhaustedUntil returns when an exhausted rate limit resets, from the answer's headers:
// GitHub's X-RateLimit-*, GitLab's RateLimit-* (reset in epoch seconds).
func exhaustedUntil(h http.Header) (time.Time, bool) {
	for _, prefix := range []string{"X-RateLimit-", "RateLimit-"} {
		if strings.TrimSpace(h.Get(prefix+"Remaining")) != "0" {
			continue
		}
		reset, err := strconv.ParseInt(strings.TrimSpace(h.Get(prefix+"Reset")), 10, 64)
		if err != nil {
			continue
		}
		return time.Unix(reset, 0), true
	}
	return time.Time{}, false
}

// noteRateLimit remembers an exhausted rate limit, so that the next call waits for its reset
// instead of spending a request on a certain refusal.
func (c *apiClient) noteRateLimit(resp *http.Response) {
	until, ok := exhaustedUntil(resp.Header)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if until.After(c.blockedUntil) {
		c.blockedUntil = until
	}
}

func (c *apiClient) blockedFor() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blockedUntil.Sub(c.clock.Now())
}

// rateLimitWait tells whether an answer is a rate limit, and how long it asks to wait: 429
// and 503 with Retry-After (seconds or an HTTP date), and GitHub's 403/429 with Retry-After
// (secondary limits) or X-RateLimit-Remaining: 0 (primary limits, until X-RateLimit-Reset).
func (c *apiClient) rateLimitWait(resp *http.Response) (time.Duration, bool) {
	code := resp.StatusCode
	if code != http.StatusTooManyRequests && code != http.StatusForbidden && code != http.StatusServiceUnavailable {
		return 0, false
	}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.clock.Now()); ok {
		return d, true
	}
	if code == http.StatusServiceUnavailable {
		return 0, false
	}
	if until, ok := exhaustedUntil(resp.Header); ok {
		// The reset is in whole seconds and clocks differ a little: wait at least a second.
		return max(until.Sub(c.clock.Now()), time.Second), true
	}
	// A 429 without hints is retried with the backoff; a bare 403 is a refusal.
	return 0, code == http.StatusTooManyRequests
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// cleanMessage shortens a forge's error answer for an error message, and blanks out the token
// should the forge echo it.
func cleanMessage(body []byte, token string) string {
	msg := strings.Join(strings.Fields(string(body)), " ")
	if token != "" {
		msg = strings.ReplaceAll(msg, token, "[token]")
	}
	return truncate(msg, 300)
}

// nextPage returns the rel="next" target of an RFC 8288 Link header, as GitHub, GitLab and
// Gitea send with paginated lists.
func nextPage(h http.Header) string {
	for _, value := range h.Values("Link") {
		for _, link := range strings.Split(value, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "rel") && strings.Trim(v, `"`) == "next" {
					return target[1 : len(target)-1]
				}
			}
		}
	}
	return ""
}
