package applier

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/manifests"
)

func TestForEachSerial(t *testing.T) {
	for _, strategy := range []string{"", manifests.StrategySerial} {
		var ran []int
		boom := errors.New("boom")
		err := forEach(context.Background(), strategy, 4, func(_ context.Context, i int) error {
			ran = append(ran, i)
			if i == 1 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) || !slices.Equal(ran, []int{0, 1}) {
			t.Errorf("strategy %q: ran %v, error %v: want 0 and 1 in order, then stop", strategy, ran, err)
		}
	}
}

func TestForEachParallel(t *testing.T) {
	// Every branch starts before any ends: they run at once.
	var started sync.WaitGroup
	started.Add(3)
	var done atomic.Int32
	boom := errors.New("boom")
	err := forEach(context.Background(), manifests.StrategyParallel, 3, func(_ context.Context, i int) error {
		started.Done()
		started.Wait()
		if i == 0 {
			return boom
		}
		time.Sleep(10 * time.Millisecond)
		done.Add(1)
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want the failing branch's", err)
	}
	if done.Load() != 2 {
		t.Errorf("%d other branches ran to their end, want 2: a failure does not cut the others short", done.Load())
	}
}
