package sources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// recentTrees is how many commits' trees a Repository keeps for SnapshotAt: the head, the
// commits instances were last applied from, and the two sides of a plan.
const recentTrees = 8

// Repository reads commits of a git repository on disk. A Source keeps its cache in one;
// Open gives one for a local repository (kudod plan --repo DIR). Safe for concurrent use.
type Repository struct {
	name string
	// suspect is set when reading an object failed: the next Poll checks the cache.
	suspect atomic.Bool

	// mu guards everything below, and every read through store: go-git's filesystem
	// storage is not safe for concurrent use.
	mu    sync.Mutex
	store *filesystem.Storage
	git   *git.Repository
	// recent holds the trees of the last commits read, most recent first.
	recent []recentTree
	// blobs lets snapshots share a file's content with any other live snapshot.
	blobs      map[plumbing.Hash]weak.Pointer[blob]
	blobsSwept int
}

type recentTree struct {
	commit plumbing.Hash
	fs     *treeFS
}

// Open opens the git repository at dir, a work tree or a bare repository, to read commits.
func Open(dir string) (*Repository, error) {
	st, err := openStorage(dir)
	if err != nil {
		return nil, fmt.Errorf("opening git repository %s: %w", dir, err)
	}
	r, err := newRepository(filepath.Base(dir), st)
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("opening git repository %s: %w", dir, err)
	}
	return r, nil
}

// openStorage opens the git directory of dir with the storage options snapshots want;
// linked work trees, whose .git is a file, are left to go-git to find.
func openStorage(dir string) (*filesystem.Storage, error) {
	gitDir := filepath.Join(dir, git.GitDirName)
	switch fi, err := os.Stat(gitDir); {
	case err == nil && fi.IsDir():
		return newStorage(gitDir), nil
	case err == nil:
		r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
		if err != nil {
			return nil, err
		}
		st, ok := r.Storer.(*filesystem.Storage)
		if !ok {
			return nil, fmt.Errorf("unexpected storage %T", r.Storer)
		}
		return st, nil
	case errors.Is(err, os.ErrNotExist):
		return newStorage(dir), nil // bare
	default:
		return nil, err
	}
}

func newRepository(name string, st *filesystem.Storage) (*Repository, error) {
	r := &Repository{name: name, blobs: map[plumbing.Hash]weak.Pointer[blob]{}}
	if err := r.setStore(st); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Repository) setStore(st *filesystem.Storage) error {
	g, err := git.Open(st, nil)
	if err != nil {
		return err
	}
	r.store, r.git, r.recent = st, g, nil
	return nil
}

// Close releases the repository's open files. Snapshots already read stay readable as far
// as their contents were loaded.
func (r *Repository) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.store.Close()
}

// SnapshotAt returns the snapshot of a commit in this repository: a full commit SHA, or any
// revision go-git resolves locally (a local branch or tag name, HEAD~1, ...). It never
// touches the network; ErrCommitNotFound says the commit is not here.
func (r *Repository) SnapshotAt(ctx context.Context, rev string) (Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.resolveLocked(rev)
	if err != nil {
		return Snapshot{}, err
	}
	return r.snapshotLocked(h, Ref{Commit: h.String()}, "")
}

func (r *Repository) resolveLocked(rev string) (plumbing.Hash, error) {
	if commitSHA.MatchString(rev) {
		return plumbing.NewHash(rev), nil
	}
	h, err := r.git.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("%w: revision %q: %w", ErrCommitNotFound, rev, err)
	}
	return *h, nil
}

// snapshot returns the snapshot of commit, tracked as ref through refName.
func (r *Repository) snapshot(commit plumbing.Hash, ref Ref, refName string) (Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked(commit, ref, refName)
}

func (r *Repository) snapshotLocked(commit plumbing.Hash, ref Ref, refName string) (Snapshot, error) {
	tree, err := r.treeLocked(commit)
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{
		Repository: r.name,
		Ref:        ref,
		RefName:    refName,
		Commit:     commit.String(),
		Time:       tree.modTime,
		FS:         tree,
	}, nil
}

// treeLocked returns the file system of commit, from recent or read from git. A missing
// commit is ErrCommitNotFound; any other failure to read it is corruption of the repository.
func (r *Repository) treeLocked(commit plumbing.Hash) (*treeFS, error) {
	for i, t := range r.recent {
		if t.commit == commit {
			copy(r.recent[1:i+1], r.recent[:i])
			r.recent[0] = t
			return t.fs, nil
		}
	}
	c, err := object.GetCommit(r.store, commit)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrCommitNotFound, commit)
	}
	if err != nil {
		return nil, corrupt("reading commit %s: %w", commit, err)
	}
	root := &node{name: ".", mode: fs.ModeDir | 0o555}
	var links []pendingLink
	if err := r.readTreeLocked(c.TreeHash, root, ".", &links); err != nil {
		return nil, corrupt("reading tree of commit %s: %w", commit, err)
	}
	resolveLinks(root, links)
	t := &treeFS{root: root, modTime: c.Committer.When}
	r.recent = append([]recentTree{{commit, t}}, r.recent[:min(len(r.recent), recentTrees-1)]...)
	return t, nil
}

// pendingLink is a symbolic link waiting for the whole tree to be read.
type pendingLink struct {
	parent *node
	link   *node
	dir    string // slash path of parent
	target string
}

func (r *Repository) readTreeLocked(h plumbing.Hash, dir *node, dirPath string, links *[]pendingLink) error {
	t, err := object.GetTree(r.store, h)
	if err != nil {
		return fmt.Errorf("tree %s (%s): %w", h, dirPath, err)
	}
	dir.entries = make([]*node, 0, len(t.Entries))
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Dir:
			sub := &node{name: e.Name, mode: fs.ModeDir | 0o555}
			if err := r.readTreeLocked(e.Hash, sub, path.Join(dirPath, e.Name), links); err != nil {
				return err
			}
			dir.entries = append(dir.entries, sub)
		case filemode.Regular, filemode.Deprecated:
			dir.entries = append(dir.entries, &node{name: e.Name, mode: 0o444, blob: r.blobLocked(e.Hash)})
		case filemode.Executable:
			dir.entries = append(dir.entries, &node{name: e.Name, mode: 0o555, blob: r.blobLocked(e.Hash)})
		case filemode.Symlink:
			target, err := r.readBlobLocked(e.Hash)
			if err != nil {
				return fmt.Errorf("symbolic link %s: %w", path.Join(dirPath, e.Name), err)
			}
			n := &node{name: e.Name, mode: 0o444}
			dir.entries = append(dir.entries, n)
			*links = append(*links, pendingLink{parent: dir, link: n, dir: dirPath, target: string(target)})
		}
		// Submodules (gitlinks) have no content in this repository.
	}
	// Git orders a directory "a" as "a/", after "a.yaml"; fs.FS wants plain name order.
	sort.Slice(dir.entries, func(i, j int) bool { return dir.entries[i].name < dir.entries[j].name })
	return nil
}

// resolveLinks makes each link to a file inside the tree read as that file, and removes the
// others (directories, targets outside the tree, dangling links), so that every entry of the
// FS is a plain file or directory.
func resolveLinks(root *node, links []pendingLink) {
	byNode := make(map[*node]pendingLink, len(links))
	for _, l := range links {
		byNode[l.link] = l
	}
	var follow func(l pendingLink, hops int) *blob
	follow = func(l pendingLink, hops int) *blob {
		if hops > 40 || path.IsAbs(l.target) {
			return nil
		}
		target := path.Join(l.dir, l.target)
		if !fs.ValidPath(target) {
			return nil // outside the tree
		}
		n := lookupNode(root, target)
		switch {
		case n == nil || n.isDir():
			return nil
		case n.blob != nil:
			return n.blob
		}
		next, ok := byNode[n]
		if !ok {
			return nil
		}
		return follow(next, hops+1)
	}
	resolved := make(map[*node]*blob, len(links))
	for _, l := range links {
		resolved[l.link] = follow(l, 0)
	}
	for _, l := range links {
		if b := resolved[l.link]; b != nil {
			l.link.blob = b
			continue
		}
		l.parent.entries = slices.DeleteFunc(l.parent.entries, func(e *node) bool { return e == l.link })
	}
}

func lookupNode(root *node, name string) *node {
	if name == "." {
		return root
	}
	n := root
	for elem := range strings.SplitSeq(name, "/") {
		i := sort.Search(len(n.entries), func(i int) bool { return n.entries[i].name >= elem })
		if i == len(n.entries) || n.entries[i].name != elem {
			return nil
		}
		n = n.entries[i]
	}
	return n
}

// blobLocked returns the blob for h, shared with any live snapshot that holds it already, so
// an unchanged file is read once however many commits are looked at.
func (r *Repository) blobLocked(h plumbing.Hash) *blob {
	if b := r.blobs[h].Value(); b != nil {
		return b
	}
	b := &blob{hash: h, repo: r}
	r.blobs[h] = weak.Make(b)
	if len(r.blobs) > 2*r.blobsSwept+4096 {
		for k, p := range r.blobs {
			if p.Value() == nil {
				delete(r.blobs, k)
			}
		}
		r.blobsSwept = len(r.blobs)
	}
	return b
}

// blobSize reads a blob's size from its object header, without its content.
func (r *Repository) blobSize(h plumbing.Hash) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.store.EncodedObjectSize(h)
	if err != nil {
		return 0, fmt.Errorf("reading the size of git object %s of repository %q: %w", h, r.name, err)
	}
	return n, nil
}

// readBlob reads a blob's content for a treeFS.
func (r *Repository) readBlob(h plumbing.Hash) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	data, err := r.readBlobLocked(h)
	if err != nil {
		r.suspect.Store(true)
		return nil, fmt.Errorf("reading git object %s of repository %q: %w", h, r.name, err)
	}
	return data, nil
}

func (r *Repository) readBlobLocked(h plumbing.Hash) (data []byte, err error) {
	obj, err := r.store.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, err
	}
	rd, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := rd.Close(); err == nil {
			err = cerr
		}
	}()
	var buf bytes.Buffer
	buf.Grow(int(obj.Size()))
	if _, err := buf.ReadFrom(rd); err != nil {
		return nil, err
	}
	if int64(buf.Len()) != obj.Size() {
		return nil, fmt.Errorf("object %s is truncated: read %d of %d bytes", h, buf.Len(), obj.Size())
	}
	return buf.Bytes(), nil
}

// verify reads commit and every object of its tree from disk, bypassing what is in memory.
func (r *Repository) verify(commit plumbing.Hash) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := object.GetCommit(r.store, commit)
	if err != nil {
		return corrupt("reading commit %s: %w", commit, err)
	}
	if err := r.verifyTreeLocked(c.TreeHash); err != nil {
		return corrupt("reading tree of commit %s: %w", commit, err)
	}
	return nil
}

func (r *Repository) verifyTreeLocked(h plumbing.Hash) error {
	t, err := object.GetTree(r.store, h)
	if err != nil {
		return err
	}
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Dir:
			err = r.verifyTreeLocked(e.Hash)
		case filemode.Submodule:
		default:
			_, err = r.readBlobLocked(e.Hash)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
	}
	return nil
}

// reindex makes objects written to disk since the last read visible.
func (r *Repository) reindex() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.store.Reindex()
}
