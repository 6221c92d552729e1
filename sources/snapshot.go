package sources

import (
	"io/fs"
	"time"
)

// Snapshot is one commit of a repository: what it is and a read-only file system of its tree,
// read directly from git objects (there is no checkout). Snapshots are values; their FS is
// shared by everyone reading the same commit and is safe for concurrent use.
type Snapshot struct {
	// Repository is the configured repository name.
	Repository string
	// Ref is the ref as configured; Ref{Commit: Commit} for SnapshotAt.
	Ref Ref
	// RefName is the full ref name the commit was resolved from (refs/heads/main,
	// refs/tags/v1.2.0, refs/pull/7/head); empty for pinned commits without a branch and for
	// SnapshotAt.
	RefName string
	// Commit is the full commit SHA.
	Commit string
	// Time is the commit's committer time, also the modification time of every file in FS.
	Time time.Time
	// FS is the commit's tree. It implements fs.ReadDirFS, fs.ReadFileFS and fs.StatFS.
	// Symbolic links to files inside the tree read as the file they point to; other links
	// and submodules are left out.
	FS fs.FS
}

// IsZero reports whether s is the zero Snapshot, returned with every error.
func (s Snapshot) IsZero() bool { return s.Commit == "" }
