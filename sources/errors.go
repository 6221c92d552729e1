package sources

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/skeema/knownhosts"
)

// Kinds of failure a caller can tell apart with errors.Is. Every error returned by a Source
// wraps exactly one of them when the cause is known, next to the underlying error.
var (
	// ErrAuthentication: the remote refused the credentials (HTTP 401/403, SSH publickey).
	ErrAuthentication = errors.New("authentication failed")
	// ErrUnknownHostKey: the SSH server's key is not in knownHostsFile, or differs from it.
	ErrUnknownHostKey = errors.New("host key verification failed")
	// ErrUnreachable: the host cannot be resolved or connected to, or did not answer in time.
	ErrUnreachable = errors.New("remote unreachable")
	// ErrRepositoryNotFound: the server has no repository at that URL (go-git's own error).
	ErrRepositoryNotFound = transport.ErrRepositoryNotFound
	// ErrRefNotFound: the branch, tag, ref name or pinned commit does not exist on the remote.
	ErrRefNotFound = errors.New("ref not found")
	// ErrNoMatchingTag: no tag on the remote satisfies the semver range.
	ErrNoMatchingTag = errors.New("no tag matches the semver range")
	// ErrCommitNotFound: SnapshotAt was asked for a commit the local repository does not hold.
	ErrCommitNotFound = errors.New("commit not found")
	// ErrCredentials: a secret file named in the options cannot be read or is unusable.
	ErrCredentials = errors.New("invalid credentials")
	// ErrCorruptCache: the cache stayed unreadable after it was removed and cloned again.
	ErrCorruptCache = errors.New("corrupt cache")
)

// corruptError marks a failure to read the on-disk cache; Poll answers it by removing the cache
// and cloning again.
type corruptError struct{ err error }

func (e *corruptError) Error() string       { return "corrupt cache: " + e.err.Error() }
func (e *corruptError) Unwrap() []error     { return []error{ErrCorruptCache, e.err} }
func corrupt(format string, a ...any) error { return &corruptError{fmt.Errorf(format, a...)} }

// classifyRemote maps an error from talking to a remote onto one of the sentinel errors. It
// returns nil when the error is of no known kind.
func classifyRemote(err error) error {
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		// golang.org/x/crypto/ssh has no typed error for a refused key; this text is stable
		// since 2012 (client_auth.go).
		strings.Contains(err.Error(), "ssh: unable to authenticate"):
		return ErrAuthentication
	case knownhosts.IsHostUnknown(err), knownhosts.IsHostKeyChanged(err):
		return ErrUnknownHostKey
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return ErrRepositoryNotFound
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return ErrRefNotFound
	case isUnreachable(err):
		return ErrUnreachable
	}
	return nil
}

func isUnreachable(err error) bool {
	var (
		dnsErr *net.DNSError
		opErr  *net.OpError
	)
	return errors.As(err, &dnsErr) || errors.As(err, &opErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded)
}

// redactURL returns rawURL without a password, for errors and logs, even when it does not
// parse.
func redactURL(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		if _, ok := u.User.Password(); !ok {
			return rawURL
		}
		return u.Redacted()
	}
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return rawURL
	}
	authority, _, _ := strings.Cut(rest, "/")
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return rawURL
	}
	user, _, hasPassword := strings.Cut(authority[:at], ":")
	if !hasPassword {
		return rawURL
	}
	return scheme + "://" + user + ":xxxxx@" + rest[at+1:]
}
