package app

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// localFS is a package directory on disk as `kudod verify` and `kudod render` read it:
// symbolic links are followed only while they stay inside the directory (os.Root), as the git
// path drops links out of the tree (sources/treefs.go). These commands run in CI on pull
// request checkouts: `templates/leak.yaml -> ../../creds.yaml` must not print the file. A link
// leading out, or an absolute one, is an error naming the link.
type localFS struct {
	dir  string
	root *os.Root
	fsys fs.FS
}

var (
	_ fs.ReadFileFS = (*localFS)(nil)
	_ fs.ReadDirFS  = (*localFS)(nil)
	_ fs.StatFS     = (*localFS)(nil)
)

func openLocal(dir string) (*localFS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &localFS{dir: dir, root: r, fsys: r.FS()}, nil
}

func (l *localFS) Close() error { return l.root.Close() }

func (l *localFS) Open(name string) (fs.File, error) {
	f, err := l.fsys.Open(name)
	return f, l.explain("open", name, err)
}

func (l *localFS) ReadFile(name string) ([]byte, error) {
	data, err := fs.ReadFile(l.fsys, name)
	return data, l.explain("read", name, err)
}

func (l *localFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(l.fsys, name)
	return entries, l.explain("readdir", name, err)
}

func (l *localFS) Stat(name string) (fs.FileInfo, error) {
	fi, err := fs.Stat(l.fsys, name)
	return fi, l.explain("stat", name, err)
}

// explain turns os.Root's refusal into a message naming the link that leads out.
func (l *localFS) explain(op, name string, err error) error {
	if err == nil || !strings.Contains(err.Error(), "path escapes from parent") {
		return err
	}
	link, target := l.escapingLink(name)
	if link == "" {
		return &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("the path leads outside %s: refused", l.dir)}
	}
	return &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("symbolic link %s -> %s leads outside %s: refused", link, target, l.dir)}
}

// escapingLink finds the symbolic link along name whose target leaves the directory (or is
// absolute); failing that, the first link along it.
func (l *localFS) escapingLink(name string) (link, target string) {
	parts := strings.Split(name, "/")
	var first, firstTarget string
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		fi, err := l.root.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		t, err := l.root.Readlink(p)
		if err != nil {
			continue
		}
		if first == "" {
			first, firstTarget = p, t
		}
		if path.IsAbs(t) || !fs.ValidPath(path.Join(path.Dir(p), t)) {
			return p, t
		}
	}
	return first, firstTarget
}
