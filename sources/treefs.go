package sources

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// treeFS is the read-only file system of one commit's tree. The tree structure is read from
// git when the snapshot is made and never changes; file contents are read from git objects on
// first use and kept, shared with every other snapshot holding the same blob. All methods are
// safe for concurrent use.
type treeFS struct {
	root    *node
	modTime time.Time
}

var (
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.ReadFileFS = (*treeFS)(nil)
	_ fs.StatFS     = (*treeFS)(nil)
)

// node is a file or directory of the tree; name is its base name ("." for the root).
type node struct {
	name    string
	mode    fs.FileMode
	blob    *blob   // files
	entries []*node // directories, sorted by name
}

func (n *node) isDir() bool { return n.mode.IsDir() }

// blob is the content of a git blob, loaded once.
type blob struct {
	hash plumbing.Hash
	repo *Repository
	data atomic.Pointer[[]byte]
	// size is the blob's size from its object header, -1 until read: Stat tells a reader the
	// size of a file without loading it, so a huge file can be refused unread.
	size atomic.Int64
}

// length returns the blob's size, from its content when loaded, else from the object header.
func (b *blob) length() (int64, error) {
	if p := b.data.Load(); p != nil {
		return int64(len(*p)), nil
	}
	if n := b.size.Load(); n > 0 {
		return n, nil
	}
	n, err := b.repo.blobSize(b.hash)
	if err != nil {
		return 0, err
	}
	b.size.Store(n)
	return n, nil
}

func (b *blob) bytes() ([]byte, error) {
	if p := b.data.Load(); p != nil {
		return *p, nil
	}
	data, err := b.repo.readBlob(b.hash)
	if err != nil {
		return nil, err
	}
	b.data.Store(&data)
	return data, nil
}

func (f *treeFS) lookup(op, name string) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n := f.root
	if name == "." {
		return n, nil
	}
	for elem := range strings.SplitSeq(name, "/") {
		if !n.isDir() {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		i := sort.Search(len(n.entries), func(i int) bool { return n.entries[i].name >= elem })
		if i == len(n.entries) || n.entries[i].name != elem {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		n = n.entries[i]
	}
	return n, nil
}

// Open opens the named file or directory.
func (f *treeFS) Open(name string) (fs.File, error) {
	n, err := f.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return &openDir{fsys: f, n: n}, nil
	}
	data, err := n.blob.bytes()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &openFile{info: f.info(n, int64(len(data))), Reader: bytes.NewReader(data)}, nil
}

// ReadFile returns the content of the named file. The caller may not modify it.
func (f *treeFS) ReadFile(name string) ([]byte, error) {
	n, err := f.lookup("readfile", name)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errIsDir}
	}
	data, err := n.blob.bytes()
	if err != nil {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: err}
	}
	// A copy: fs.ReadFileFS callers own the slice, and the cached content is shared.
	return bytes.Clone(data), nil
}

// FileHash returns the git blob hash of the named file without reading it: an index of a
// later commit reuses what it parsed from a file with the same hash
// (manifests.FileHasher).
func (f *treeFS) FileHash(name string) (string, error) {
	n, err := f.lookup("hash", name)
	if err != nil {
		return "", err
	}
	if n.isDir() {
		return "", &fs.PathError{Op: "hash", Path: name, Err: errIsDir}
	}
	return n.blob.hash.String(), nil
}

// ReadDir returns the entries of the named directory, sorted by name.
func (f *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	return f.dirEntries(n.entries), nil
}

// Stat describes the named file or directory.
func (f *treeFS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	info, err := f.stat(n)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return info, nil
}

var (
	errIsDir  = errors.New("is a directory")
	errNotDir = errors.New("not a directory")
)

func (f *treeFS) dirEntries(nodes []*node) []fs.DirEntry {
	out := make([]fs.DirEntry, len(nodes))
	for i, n := range nodes {
		out[i] = dirEntry{fsys: f, n: n}
	}
	return out
}

// stat reads a file's size from its object header: git trees do not record sizes.
func (f *treeFS) stat(n *node) (fs.FileInfo, error) {
	if n.isDir() {
		return f.info(n, 0), nil
	}
	size, err := n.blob.length()
	if err != nil {
		return nil, err
	}
	return f.info(n, size), nil
}

func (f *treeFS) info(n *node, size int64) fileInfo {
	return fileInfo{name: n.name, size: size, mode: n.mode, modTime: f.modTime}
}

type fileInfo struct {
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return i.mode }
func (i fileInfo) ModTime() time.Time { return i.modTime }
func (i fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fileInfo) Sys() any           { return nil }

type dirEntry struct {
	fsys *treeFS
	n    *node
}

func (d dirEntry) Name() string               { return d.n.name }
func (d dirEntry) IsDir() bool                { return d.n.isDir() }
func (d dirEntry) Type() fs.FileMode          { return d.n.mode.Type() }
func (d dirEntry) Info() (fs.FileInfo, error) { return d.fsys.stat(d.n) }
func (d dirEntry) String() string             { return fs.FormatDirEntry(d) }

// openFile is an open regular file; it also offers io.Seeker and io.ReaderAt.
type openFile struct {
	info fileInfo
	*bytes.Reader
}

func (f *openFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *openFile) Close() error               { return nil }

// openDir is an open directory, read with ReadDir.
type openDir struct {
	fsys   *treeFS
	n      *node
	offset int
}

func (d *openDir) Stat() (fs.FileInfo, error) { return d.fsys.info(d.n, 0), nil }
func (d *openDir) Close() error               { return nil }

func (d *openDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.n.name, Err: errIsDir}
}

// ReadDir follows fs.ReadDirFile: n > 0 returns at most n entries and io.EOF at the end.
func (d *openDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.n.entries[d.offset:]
	if n > 0 {
		if len(rest) == 0 {
			return nil, io.EOF
		}
		rest = rest[:min(n, len(rest))]
	}
	d.offset += len(rest)
	return d.fsys.dirEntries(rest), nil
}
