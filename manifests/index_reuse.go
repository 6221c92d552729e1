package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strings"
)

// An index of a new commit reuses what the index of the commit before read from files that
// did not change (IndexOptions.Previous), so that a commit changing one file of ten thousand
// neither reads nor parses the others again, and the indexes of recent commits share their
// instances (docs/scaling.md). What a file holds depends on its content alone, except:
//   - an encrypted file's plain text depends on the keys available: it is never reused;
//   - a file that could not be read (too large, not a regular file) is read again;
//   - resolving an instance depends on the packages of the commit: an instance is shared only
//     while it resolves to the same package, and checks across files (an instance declared
//     twice) are made again over every file, reused or not.

// FileHasher is a file system that knows a hash of each file's content without reading it:
// git's blob hash in sources' snapshots. IndexRepository hashes what it reads otherwise.
// FileHash returns an error for anything but a file ReadFile would read whole (a directory;
// a symbolic link that is not read as its target).
type FileHasher interface {
	FileHash(name string) (string, error)
}

// contentHash identifies a file's content: a FileHasher's hash (fromFS) or the sha256 of
// what was read, never equal to each other.
type contentHash struct {
	sum    string
	fromFS bool
}

// indexedFile is what one instance file holds, parsed. Its instances are templates: the index
// resolves copies of them, so that a later index may share them. A record is never changed
// once its index is built: a later index shares it, or copies it.
type indexedFile struct {
	path string
	// hash identifies the content; empty when the file may not be reused (it could not be
	// read, or it is encrypted).
	hash contentHash
	// size is the content's length: within the size limit of the index that read it.
	size      int64
	encrypted bool
	// ops are the findings reading the file recorded in the index, in order: a reused file
	// records them again.
	ops []fileOp
	// parsed are the Instance documents that parsed, in file order.
	parsed []*Instance
	// resolved[i] is parsed[i] resolved in the index that holds this record (nil or absent:
	// invalid or declared twice there).
	resolved []*Instance
}

// fileOp is one finding recorded while reading a file: an invalid instance (in set), findings
// that replace the file's broken findings (replace: malformed YAML), or findings added to them.
type fileOp struct {
	in       *Instance
	replace  bool
	findings Findings
}

// resolvedAt returns the record's resolved instance of parsed[i], or nil.
func (f *indexedFile) resolvedAt(i int) *Instance {
	if i < len(f.resolved) {
		return f.resolved[i]
	}
	return nil
}

// sameContent reports whether a record of an earlier index may stand for a file whose content
// has hash, within the size limit maxSize: what readFileBounded would read is what f read.
func (f *indexedFile) sameContent(hash contentHash, maxSize int64) bool {
	return f != nil && f.hash.sum != "" && f.hash == hash && f.size <= maxSize
}

// fileHash is the hash of a file the file system knows without reading it, or none.
func fileHash(fsys fs.FS, file string) contentHash {
	h, ok := fsys.(FileHasher)
	if !ok {
		return contentHash{}
	}
	v, err := h.FileHash(file)
	if err != nil {
		return contentHash{}
	}
	return contentHash{sum: v, fromFS: true}
}

// hashContent is the hash of a file read whole.
func hashContent(data []byte) contentHash {
	sum := sha256.Sum256(data)
	return contentHash{sum: hex.EncodeToString(sum[:])}
}

// reuse records an earlier index's file in this one: its findings, and its instances (which
// resolve decides to share or resolve again).
func (idx *Index) reuse(f *indexedFile) *indexedFile {
	for _, op := range f.ops {
		switch {
		case op.in != nil:
			idx.invalid(op.in, op.findings)
		case op.replace:
			idx.BrokenFiles[f.path] = append(Findings(nil), op.findings...)
			idx.Findings = append(idx.Findings, op.findings...)
		default:
			idx.broken(f.path, op.findings...)
		}
	}
	return f
}

// fileReader records what reading one file finds in the index and in the file's record.
type fileReader struct {
	idx *Index
	rec *indexedFile
}

func (r *fileReader) broken(file string, fs ...Finding) {
	r.idx.broken(file, fs...)
	r.rec.ops = append(r.rec.ops, fileOp{findings: fs})
}

// brokenYAML records a file that is not YAML: its findings replace the file's others.
func (r *fileReader) brokenYAML(file string, fs Findings) {
	r.idx.BrokenFiles[file] = fs
	r.idx.Findings = append(r.idx.Findings, fs...)
	r.rec.ops = append(r.rec.ops, fileOp{replace: true, findings: fs})
}

func (r *fileReader) invalid(in *Instance, fs Findings) {
	r.idx.invalid(in, fs)
	r.rec.ops = append(r.rec.ops, fileOp{in: in, findings: fs})
}

// resolveInstance resolves a copy of a parsed instance, or shares prev (its resolution in an
// earlier index) when it resolves to the same package, which is not broken. It returns the
// valid instance, or nil.
func (idx *Index) resolveInstance(in, prev *Instance, byName map[string][]*Package) *Instance {
	if prev != nil {
		if p, f := resolvePackage(in, byName); f == nil && p == prev.Package {
			if _, broken := idx.BrokenPackages[p.Dir]; !broken {
				idx.Instances = append(idx.Instances, prev)
				return prev
			}
		}
	}
	c := *in
	fs := idx.validateInstance(&c, byName)
	if fs.HasErrors() {
		idx.invalid(&c, fs)
		return nil
	}
	idx.Instances = append(idx.Instances, &c)
	return &c
}

// previousFiles finds the records of an earlier index's files. Both indexes list files in the
// order fs.WalkDir visits them, so a cursor finds each in one pass.
type previousFiles struct {
	files []*indexedFile
	next  int
}

// find returns the earlier record of file, or nil. Files are asked for in walk order.
func (p *previousFiles) find(file string) *indexedFile {
	for p.next < len(p.files) && walkLess(p.files[p.next].path, file) {
		p.next++
	}
	if p.next < len(p.files) && p.files[p.next].path == file {
		return p.files[p.next]
	}
	return nil
}

// walkLess orders paths as fs.WalkDir visits them: name by name, each directory's entries
// sorted, so "a/b.yaml" comes before "a.yaml".
func walkLess(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] == b[i] {
			continue
		}
		switch {
		case a[i] == '/':
			return true // a's name ends here: it is the shorter one
		case b[i] == '/':
			return false
		}
		return a[i] < b[i]
	}
	return len(a) < len(b)
}

// instanceKey is an instance's key as a map key, without building the string.
type instanceKey struct{ namespace, name string }

func keyOf(in *Instance) instanceKey { return instanceKey{in.Namespace, in.Name} }

// compareKeys orders instances as their keys ("<namespace>/<name>") sort, without building
// them: the index sorts ten thousand instances on every commit.
func compareKeys(a, b *Instance) int {
	if a.Namespace == b.Namespace {
		return strings.Compare(a.Name, b.Name)
	}
	la, lb := len(a.Namespace)+1+len(a.Name), len(b.Namespace)+1+len(b.Name)
	for i := 0; i < la && i < lb; i++ {
		if ca, cb := keyByte(a, i), keyByte(b, i); ca != cb {
			return int(ca) - int(cb)
		}
	}
	return la - lb
}

// keyByte is the i-th byte of in.Key().
func keyByte(in *Instance, i int) byte {
	switch n := len(in.Namespace); {
	case i < n:
		return in.Namespace[i]
	case i == n:
		return '/'
	default:
		return in.Name[i-n-1]
	}
}
