package poll

import (
	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// sameSpec remembers, per instance, what the last commit that asked nothing of it compared:
// the instance from git (the index shares it between commits while its file and package stay
// the same: manifests.IndexOptions.Previous) and the Instance's resourceVersion. While both
// are the same, so is the outcome, and a commit that changes a few files of ten thousand does
// not build and compare every other Instance again (docs/scaling.md).
type sameSpec struct {
	git             *manifests.Instance
	resourceVersion string
}

// sameAsBefore reports whether the instance was found unchanged against the same git side and
// the same Instance before, and keeps the record for the next commit.
func (p *Poller) sameAsBefore(key string, git *manifests.Instance, existing *v1alpha1.Instance) bool {
	want := sameSpec{git: git, resourceVersion: existing.ResourceVersion}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sameSpecs[key] != want {
		return false
	}
	p.nextSameSpecs[key] = want
	return true
}

// rememberSame records that the instance's spec was found unchanged.
func (p *Poller) rememberSame(key string, git *manifests.Instance, existing *v1alpha1.Instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextSameSpecs[key] = sameSpec{git: git, resourceVersion: existing.ResourceVersion}
}

// startSameSpecs begins a commit's records; endSameSpecs keeps them for the next commit, so
// instances gone from git are forgotten.
func (p *Poller) startSameSpecs() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextSameSpecs = map[string]sameSpec{}
}

func (p *Poller) endSameSpecs() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sameSpecs, p.nextSameSpecs = p.nextSameSpecs, nil
}
