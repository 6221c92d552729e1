package poll

import (
	"testing"

	"github.com/go-logr/logr"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/desired"
	"github.com/kudod-dev/kudod/manifests"
)

// TestSameSpecMemo: an instance found unchanged is not compared again while its git side (the
// index's shared instance) and its Instance's resourceVersion stay the same; instances a
// commit does not see are forgotten.
func TestSameSpecMemo(t *testing.T) {
	p := New(Repository{Repository: desired.Repository{Name: "platform"}}, Options{Log: logr.Discard()})
	git := &manifests.Instance{Name: "web", Namespace: "data"}
	other := &manifests.Instance{Name: "web", Namespace: "data"}
	inst := &v1alpha1.Instance{}
	inst.ResourceVersion = "10"
	edited := inst.DeepCopy()
	edited.ResourceVersion = "11"

	p.startSameSpecs()
	if p.sameAsBefore("data/web", git, inst) {
		t.Fatal("the first commit found a record")
	}
	p.rememberSame("data/web", git, inst)
	p.rememberSame("data/gone", git, inst)
	p.endSameSpecs()

	p.startSameSpecs()
	steps := []struct {
		name string
		git  *manifests.Instance
		inst *v1alpha1.Instance
		want bool
	}{
		{"nothing changed", git, inst, true},
		{"the Instance was written", git, edited, false},
		{"the file or its package changed", other, inst, false},
	}
	for _, s := range steps {
		if got := p.sameAsBefore("data/web", s.git, s.inst); got != s.want {
			t.Errorf("%s: sameAsBefore = %v, want %v", s.name, got, s.want)
		}
	}
	p.endSameSpecs()
	if _, kept := p.sameSpecs["data/gone"]; kept {
		t.Error("an instance the commit did not see is still remembered")
	}
	if _, kept := p.sameSpecs["data/web"]; !kept {
		t.Error("the instance found unchanged is not remembered for the next commit")
	}
}
