package sources

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing"
)

// DefaultBranch is the branch tracked when a Ref names nothing.
const DefaultBranch = "main"

// Ref says which commit of a repository to track (`ref` in docs/configuration.md). Exactly one
// field is set, except that Commit may come with the Branch that holds it.
type Ref struct {
	// Branch tracks the head of refs/heads/<Branch>.
	Branch string
	// Tag tracks refs/tags/<Tag>; annotated tags are peeled to their commit.
	Tag string
	// SemVer tracks the highest tag satisfying this Masterminds/semver range, e.g. ">=1.0.0".
	SemVer string
	// Name tracks any full reference name, e.g. refs/pull/7/head.
	Name string
	// Commit pins a full 40-hex commit SHA.
	Commit string
}

var commitSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Validate reports a Ref that names no commit unambiguously.
func (r Ref) Validate() error {
	set := 0
	for _, v := range []string{r.Branch, r.Tag, r.SemVer, r.Name, r.Commit} {
		if v != "" {
			set++
		}
	}
	if set > 1 && !(set == 2 && r.Commit != "" && r.Branch != "") {
		return errors.New("ref must set one of branch, tag, semver, name or commit (commit may be combined with branch)")
	}
	switch {
	case r.Branch != "":
		if err := plumbing.NewBranchReferenceName(r.Branch).Validate(); err != nil {
			return fmt.Errorf("invalid branch %q: %w", r.Branch, err)
		}
	case r.Tag != "":
		if err := plumbing.NewTagReferenceName(r.Tag).Validate(); err != nil {
			return fmt.Errorf("invalid tag %q: %w", r.Tag, err)
		}
	case r.SemVer != "":
		if _, err := semver.NewConstraint(r.SemVer); err != nil {
			return fmt.Errorf("invalid semver range %q: %w", r.SemVer, err)
		}
	case r.Name != "":
		if !strings.HasPrefix(r.Name, "refs/") {
			return fmt.Errorf("invalid ref name %q: must be a full name starting with refs/", r.Name)
		}
		if err := plumbing.ReferenceName(r.Name).Validate(); err != nil {
			return fmt.Errorf("invalid ref name %q: %w", r.Name, err)
		}
	}
	if r.Commit != "" && !commitSHA.MatchString(r.Commit) {
		return fmt.Errorf("invalid commit %q: must be a full 40-character lowercase hex SHA", r.Commit)
	}
	return nil
}

// IsZero reports whether r names nothing, which means DefaultBranch.
func (r Ref) IsZero() bool { return r == Ref{} }

// String describes r for messages: "branch main", "tag v1.2.0", "semver >=1.0.0",
// "refs/pull/7/head", "commit <sha> on branch main".
func (r Ref) String() string {
	switch {
	case r.Commit != "" && r.Branch != "":
		return "commit " + r.Commit + " on branch " + r.Branch
	case r.Commit != "":
		return "commit " + r.Commit
	case r.Branch != "":
		return "branch " + r.Branch
	case r.Tag != "":
		return "tag " + r.Tag
	case r.SemVer != "":
		return "semver " + r.SemVer
	case r.Name != "":
		return r.Name
	}
	return "branch " + DefaultBranch
}

func (r Ref) withDefault() Ref {
	if r.IsZero() {
		return Ref{Branch: DefaultBranch}
	}
	return r
}

// remoteRefs is what the remote advertised: each ref's hash, and for annotated tags the
// commit they peel to (the "^{}" entries of ls-remote).
type remoteRefs struct {
	hashes map[string]plumbing.Hash
	peeled map[string]plumbing.Hash
}

func newRemoteRefs(refs []*plumbing.Reference) remoteRefs {
	rr := remoteRefs{hashes: map[string]plumbing.Hash{}, peeled: map[string]plumbing.Hash{}}
	for _, ref := range refs {
		if ref.Type() != plumbing.HashReference {
			continue
		}
		name := ref.Name().String()
		if base, ok := strings.CutSuffix(name, "^{}"); ok {
			rr.peeled[base] = ref.Hash()
			continue
		}
		rr.hashes[name] = ref.Hash()
	}
	return rr
}

// commit returns the commit a ref points to, peeling annotated tags.
func (rr remoteRefs) commit(name string) (plumbing.Hash, bool) {
	if h, ok := rr.peeled[name]; ok {
		return h, true
	}
	h, ok := rr.hashes[name]
	return h, ok
}

// resolve picks the full ref name r tracks among the advertised refs, and its commit. Pinned
// commits are not resolved here: they need no remote.
func (rr remoteRefs) resolve(r Ref) (name string, commit plumbing.Hash, err error) {
	switch {
	case r.Branch != "":
		name = plumbing.NewBranchReferenceName(r.Branch).String()
	case r.Tag != "":
		name = plumbing.NewTagReferenceName(r.Tag).String()
	case r.SemVer != "":
		return rr.highestTag(r.SemVer)
	case r.Name != "":
		name = r.Name
	}
	h, ok := rr.commit(name)
	if !ok {
		return "", plumbing.ZeroHash, fmt.Errorf("%w: %s", ErrRefNotFound, r)
	}
	return name, h, nil
}

func (rr remoteRefs) highestTag(rangeExpr string) (string, plumbing.Hash, error) {
	c, err := semver.NewConstraint(rangeExpr)
	if err != nil {
		return "", plumbing.ZeroHash, fmt.Errorf("invalid semver range %q: %w", rangeExpr, err)
	}
	var (
		best     *semver.Version
		bestName string
		tags     []string
	)
	for name := range rr.hashes {
		tag, ok := strings.CutPrefix(name, "refs/tags/")
		if !ok {
			continue
		}
		tags = append(tags, tag)
		v, err := semver.NewVersion(tag)
		if err != nil || !c.Check(v) {
			continue
		}
		// "v1.0.0" and "1.0.0" are equal versions; the larger name wins so the choice is stable.
		if best == nil || v.GreaterThan(best) || (v.Equal(best) && name > bestName) {
			best, bestName = v, name
		}
	}
	if best == nil {
		sort.Strings(tags)
		return "", plumbing.ZeroHash, fmt.Errorf("%w %q (tags: %s)", ErrNoMatchingTag, rangeExpr, tagList(tags))
	}
	h, _ := rr.commit(bestName)
	return bestName, h, nil
}

func tagList(tags []string) string {
	const max = 10
	switch {
	case len(tags) == 0:
		return "none"
	case len(tags) > max:
		return strings.Join(tags[:max], ", ") + fmt.Sprintf(" and %d more", len(tags)-max)
	}
	return strings.Join(tags, ", ")
}
