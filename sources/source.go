// Package sources reads the commits kudod works from out of git repositories. A Source tracks
// one configured repository: it keeps a bare clone in a cache directory, lists the remote's
// refs on each Poll and fetches only when the tracked ref moved, and hands out Snapshots: a
// commit and a read-only fs.FS of its tree, read straight from git objects.
package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
)

// DefaultTimeout bounds each remote operation when Options.Timeout is zero (Flux's default).
const DefaultTimeout = 60 * time.Second

// Options configures a Source.
type Options struct {
	// Name is the repository's name: it appears in errors and snapshots and names the cache.
	Name string
	// URL is an https://, http://, ssh:// (or scp-style user@host:path) or file:// URL, or a
	// local path.
	URL string
	// Ref is what to track; the zero Ref tracks DefaultBranch.
	Ref Ref
	// Auth names the credential files.
	Auth Auth
	// CacheDir holds the bare clones of all sources, one directory per Name.
	CacheDir string
	// Timeout bounds each remote operation; zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives what the source does; nil discards it. Secrets are never logged.
	Logger *slog.Logger
}

// Stats counts what a Source did, so that a test or a metric can see a poll's cost.
type Stats struct {
	// Polls is the number of Poll calls.
	Polls int64
	// ListRemotes is the number of times the remote's refs were listed (git ls-remote).
	ListRemotes int64
	// Fetches is the number of fetches of objects from the remote.
	Fetches int64
	// Reclones is the number of times an unusable cache was removed, to be cloned again.
	Reclones int64
}

// Source tracks one git repository. Its methods are safe for concurrent use: snapshots may be
// read while the source polls.
type Source struct {
	opts Options
	url  string // the URL for messages
	// remoteURL is the URL given to go-git: the configured one, local paths made absolute.
	remoteURL string
	ep        *transport.Endpoint
	dir       string
	log       *slog.Logger
	repo      *Repository

	polls, listRemotes, fetches, reclones atomic.Int64

	// mu serializes polls and fetches, which write to the cache through fetchStore while
	// repo reads it through its own storage.
	mu         sync.Mutex
	fetchStore *filesystem.Storage
	head       Snapshot
}

// New returns a Source for opts. It opens (or creates) the cache and, if the cache is
// unreadable, removes it; it does not contact the remote.
func New(opts Options) (*Source, error) {
	if opts.Name == "" || strings.ContainsAny(opts.Name, `/\`) || opts.Name == "." || opts.Name == ".." {
		return nil, fmt.Errorf("invalid source name %q", opts.Name)
	}
	if err := opts.Ref.Validate(); err != nil {
		return nil, fmt.Errorf("repository %q: %w", opts.Name, err)
	}
	opts.Ref = opts.Ref.withDefault()
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.CacheDir == "" {
		return nil, fmt.Errorf("repository %q: no cache directory", opts.Name)
	}
	ep, err := endpoint(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", opts.Name, err)
	}
	remoteURL := opts.URL
	if ep.Protocol == "file" {
		remoteURL = ep.Path
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		opts:      opts,
		url:       redactURL(opts.URL),
		remoteURL: remoteURL,
		ep:        ep,
		dir:       filepath.Join(opts.CacheDir, opts.Name+".git"),
		log:       log.With("repository", opts.Name),
	}
	if err := s.openCache(); err != nil {
		return nil, s.errorf("opening cache %s: %w", s.dir, err)
	}
	return s, nil
}

// endpoint parses a repository URL and rejects transports kudod does not support (git://).
func endpoint(rawURL string) (*transport.Endpoint, error) {
	if rawURL == "" {
		return nil, errors.New("no URL")
	}
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return nil, fmt.Errorf("invalid URL %q: %w", redactURL(rawURL), err)
	}
	if ep.Password != "" {
		// It would end up in the cache's config file and in messages.
		return nil, fmt.Errorf("URL %q holds a password; name a credential file instead", redactURL(rawURL))
	}
	switch ep.Protocol {
	case "http", "https", "ssh":
	case "file":
		abs, err := filepath.Abs(ep.Path)
		if err != nil {
			return nil, err
		}
		ep.Path = abs
	default:
		return nil, fmt.Errorf("unsupported URL scheme %q in %q (use https, http, ssh or file)", ep.Protocol, redactURL(rawURL))
	}
	return ep, nil
}

// Close releases the cache's open files.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.fetchStore.Close(), s.repo.Close())
}

// Stats returns what the source has done so far.
func (s *Source) Stats() Stats {
	return Stats{
		Polls:       s.polls.Load(),
		ListRemotes: s.listRemotes.Load(),
		Fetches:     s.fetches.Load(),
		Reclones:    s.reclones.Load(),
	}
}

// Poll returns the snapshot of the tracked ref and whether its commit differs from the last
// successful Poll's (always true the first time). It lists the remote's refs and fetches only
// when the commit is not in the cache; a pinned commit already in the cache needs no remote at
// all. A corrupt cache is removed and cloned again. On error the snapshot is the zero value.
func (s *Source) Poll(ctx context.Context) (Snapshot, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls.Add(1)
	snap, err := s.resolve(ctx, s.opts.Ref, s.head)
	if err != nil {
		return Snapshot{}, false, err
	}
	changed := snap.Commit != s.head.Commit
	s.head = snap
	return snap, changed, nil
}

// Fetch returns the snapshot of any ref of the repository (a pull request's head for a
// preview, say), fetching it unless its commit is in the cache. It does not change what Poll
// tracks.
func (s *Source) Fetch(ctx context.Context, ref Ref) (Snapshot, error) {
	if err := ref.Validate(); err != nil {
		return Snapshot{}, s.errorf("%w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resolve(ctx, ref.withDefault(), Snapshot{})
}

// SnapshotAt returns the snapshot of a commit already in the cache, by full SHA (or any
// revision go-git resolves in the cache, such as a fetched branch name). It never contacts
// the remote; a commit that is not cached is ErrCommitNotFound.
func (s *Source) SnapshotAt(ctx context.Context, sha string) (Snapshot, error) {
	snap, err := s.repo.SnapshotAt(ctx, sha)
	if err != nil {
		return Snapshot{}, s.errorf("%w", err)
	}
	return snap, nil
}

// ListRefs lists the remote's refs whose full names match any of the path.Match patterns
// (refs/pull/*/head), with the commit each points to (annotated tags peeled).
func (s *Source) ListRefs(ctx context.Context, patterns []string) (map[string]string, error) {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, s.errorf("invalid ref pattern %q: %w", p, err)
		}
	}
	refs, err := s.listRemote(ctx)
	if err != nil {
		return nil, s.errorf("%w", err)
	}
	out := map[string]string{}
	for name := range refs.hashes {
		for _, p := range patterns {
			if ok, _ := path.Match(p, name); ok {
				h, _ := refs.commit(name)
				out[name] = h.String()
				break
			}
		}
	}
	return out, nil
}

func (s *Source) errorf(format string, a ...any) error {
	return fmt.Errorf("repository %q (%s): %w", s.opts.Name, s.url, fmt.Errorf(format, a...))
}

// resolve returns the snapshot of ref, checking the cache first when a read from it failed
// and cloning again once when it is corrupt. prev is the last snapshot of ref, returned
// without reading the cache when the remote still points at it.
func (s *Source) resolve(ctx context.Context, ref Ref, prev Snapshot) (Snapshot, error) {
	err := s.checkSuspect(prev)
	var snap Snapshot
	if err == nil {
		snap, err = s.resolveOnce(ctx, ref, prev)
	}
	if errors.As(err, new(*corruptError)) {
		s.log.Warn("git cache is corrupt; removing it and cloning again", "dir", s.dir, "error", err)
		s.reclones.Add(1)
		if rerr := s.resetCache(); rerr != nil {
			return Snapshot{}, s.errorf("removing corrupt cache %s: %w (after %w)", s.dir, rerr, err)
		}
		snap, err = s.resolveOnce(ctx, ref, Snapshot{})
	}
	if err != nil {
		return Snapshot{}, s.errorf("%w", err)
	}
	return snap, nil
}

// checkSuspect re-reads the last snapshot's objects from disk after a read from the cache
// failed: a damaged object would otherwise go unnoticed while the remote does not move.
func (s *Source) checkSuspect(prev Snapshot) error {
	if prev.IsZero() || !s.repo.suspect.Swap(false) {
		return nil
	}
	return s.repo.verify(plumbing.NewHash(prev.Commit))
}

func (s *Source) resolveOnce(ctx context.Context, ref Ref, prev Snapshot) (Snapshot, error) {
	if ref.Commit != "" {
		return s.resolvePinned(ctx, ref, prev)
	}
	refs, err := s.listRemote(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	name, commit, err := refs.resolve(ref)
	if err != nil {
		return Snapshot{}, err
	}
	if prev.Commit == commit.String() && prev.RefName == name {
		return prev, nil
	}
	have, err := s.hasObject(commit)
	if err != nil {
		return Snapshot{}, err
	}
	if have {
		s.recordRef(name, refs.hashes[name])
	} else {
		spec := config.RefSpec("+" + name + ":" + name)
		if err := s.fetch(ctx, spec); err != nil {
			return Snapshot{}, err
		}
		// The ref may have moved again between listing and fetching: take what was fetched.
		if commit, err = s.localCommit(name); err != nil {
			return Snapshot{}, err
		}
	}
	return s.snapshot(commit, ref, name)
}

// resolvePinned returns the snapshot of a pinned commit, fetching only when it is not cached.
func (s *Source) resolvePinned(ctx context.Context, ref Ref, prev Snapshot) (Snapshot, error) {
	commit := plumbing.NewHash(ref.Commit)
	var name string
	specs := []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}
	if ref.Branch != "" {
		name = plumbing.NewBranchReferenceName(ref.Branch).String()
		specs = []config.RefSpec{config.RefSpec("+" + name + ":" + name)}
	}
	if prev.Commit == ref.Commit {
		return prev, nil
	}
	have, err := s.hasObject(commit)
	if err != nil {
		return Snapshot{}, err
	}
	if !have {
		if err := s.fetch(ctx, specs...); err != nil {
			return Snapshot{}, err
		}
		if have, err = s.hasObject(commit); err != nil {
			return Snapshot{}, err
		}
		if !have {
			return Snapshot{}, fmt.Errorf("%w: %s", ErrRefNotFound, ref)
		}
	}
	return s.snapshot(commit, ref, name)
}

func (s *Source) snapshot(commit plumbing.Hash, ref Ref, name string) (Snapshot, error) {
	snap, err := s.repo.snapshot(commit, ref, name)
	if errors.Is(err, ErrCommitNotFound) {
		// The cache said it had the commit, or a fetch said it brought it.
		return Snapshot{}, &corruptError{err}
	}
	return snap, err
}

// listRemote lists the remote's refs: one round trip, and all a poll needs when nothing moved.
func (s *Source) listRemote(ctx context.Context) (remoteRefs, error) {
	auth, err := s.opts.Auth.method(s.ep, s.opts.Timeout)
	if err != nil {
		return remoteRefs{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	s.listRemotes.Add(1)
	remote := git.NewRemote(memory.NewStorage(), s.remoteConfig())
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth, PeelingOption: git.AppendPeeled})
	if err != nil {
		return remoteRefs{}, remoteError("listing remote refs", err)
	}
	return newRemoteRefs(refs), nil
}

// fetch fetches specs into the cache and makes the new objects visible to readers.
func (s *Source) fetch(ctx context.Context, specs ...config.RefSpec) error {
	auth, err := s.opts.Auth.method(s.ep, s.opts.Timeout)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	s.fetches.Add(1)
	s.log.Debug("fetching", "refspecs", specs)
	remote := git.NewRemote(s.fetchStore, s.remoteConfig())
	err = remote.FetchContext(ctx, &git.FetchOptions{RefSpecs: specs, Auth: auth, Tags: git.NoTags, Force: true})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		err = nil
	}
	s.repo.reindex()
	if err == nil {
		return nil
	}
	if classifyRemote(err) == nil {
		// Not the remote's fault: maybe the cache's refs or objects are broken.
		if cerr := checkCache(s.fetchStore); cerr != nil {
			return corrupt("fetch failed (%w) and the cache is unreadable: %w", err, cerr)
		}
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return corrupt("fetch: %w", err)
		}
	}
	return remoteError("fetching", err)
}

func (s *Source) remoteConfig() *config.RemoteConfig {
	return &config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{s.remoteURL}}
}

// remoteError wraps an error from the remote with the kind of failure it is.
func remoteError(op string, err error) error {
	if kind := classifyRemote(err); kind != nil && !errors.Is(err, kind) {
		return fmt.Errorf("%s: %w: %w", op, kind, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// hasObject reports whether the cache holds object h.
func (s *Source) hasObject(h plumbing.Hash) (bool, error) {
	switch err := s.fetchStore.HasEncodedObject(h); {
	case err == nil:
		return true, nil
	case errors.Is(err, plumbing.ErrObjectNotFound):
		return false, nil
	default:
		return false, corrupt("looking up %s: %w", h, err)
	}
}

// recordRef points the cache's ref at what the remote advertised, when the cache has that
// object: later fetches then tell the server what the cache already holds.
func (s *Source) recordRef(name string, h plumbing.Hash) {
	if ok, err := s.hasObject(h); err != nil || !ok {
		return
	}
	if err := s.fetchStore.SetReference(plumbing.NewHashReference(plumbing.ReferenceName(name), h)); err != nil {
		s.log.Debug("cannot record ref in cache", "ref", name, "error", err)
	}
}

// localCommit returns the commit the cache's ref name points to, peeling annotated tags.
func (s *Source) localCommit(name string) (plumbing.Hash, error) {
	ref, err := s.fetchStore.Reference(plumbing.ReferenceName(name))
	if err != nil {
		return plumbing.ZeroHash, corrupt("reading fetched ref %s: %w", name, err)
	}
	h := ref.Hash()
	for range 10 {
		tag, err := object.GetTag(s.fetchStore, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return h, nil // not a tag object
		}
		if err != nil {
			return plumbing.ZeroHash, corrupt("reading tag %s: %w", h, err)
		}
		h = tag.Target
	}
	return plumbing.ZeroHash, fmt.Errorf("%w: %s: too many nested tags", ErrRefNotFound, name)
}
