package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

type item struct{ lane, key, value string }

// recorder collects deliveries, drops and depths; deliveries wait on gate when it is set.
type recorder struct {
	mu        sync.Mutex
	delivered []string
	dropped   []string
	depth     int
	gate      chan struct{}
}

func (r *recorder) options(size int) Options[item] {
	return Options[item]{
		Size:         size,
		DrainTimeout: 200 * time.Millisecond,
		Lane:         func(i item) string { return i.lane },
		Replaces:     func(old, next item) bool { return old.key != "" && old.key == next.key },
		Deliver: func(ctx context.Context, i item) error {
			if r.gate != nil {
				select {
				case <-r.gate:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			r.mu.Lock()
			r.delivered = append(r.delivered, i.lane+":"+i.value)
			r.mu.Unlock()
			return nil
		},
		Dropped: func(i item, why string) {
			r.mu.Lock()
			r.dropped = append(r.dropped, i.lane+":"+i.value+" "+why)
			r.mu.Unlock()
		},
		Depth: func(n int) { r.mu.Lock(); r.depth = n; r.mu.Unlock() },
	}
}

func (r *recorder) await(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		got := append([]string(nil), r.delivered...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("delivered %v, want %d", r.delivered, n)
	return nil
}

func run(t *testing.T, q *Queue[item]) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = q.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

// Items added before Start wait for it; each lane delivers in order; an item with the key of
// one waiting replaces it and waits at the end (the receiver gets what was added, in that
// order, less what was replaced); items of unknown lanes are not taken.
func TestQueueOrderAndReplacement(t *testing.T) {
	r := &recorder{}
	q := New([]string{"a", "b"}, r.options(10))
	q.Add(item{lane: "a", value: "1", key: "x"})
	q.Add(item{lane: "a", value: "2"})
	q.Add(item{lane: "a", value: "3", key: "x"})
	q.Add(item{lane: "b", value: "4"})
	if q.Add(item{lane: "c", value: "5"}) || !q.Has("a") || q.Has("c") {
		t.Fatal("lane c was taken")
	}
	run(t, q)
	got := r.await(t, 3)
	var a []string
	for _, d := range got {
		if d[0] == 'a' {
			a = append(a, d)
		}
	}
	if fmt.Sprint(a) != "[a:2 a:3]" || len(got) != 3 {
		t.Fatalf("delivered %v", got)
	}
}

// A full queue drops its oldest item, of whichever lane; Add never blocks.
func TestQueueDropsTheOldest(t *testing.T) {
	r := &recorder{gate: make(chan struct{})}
	q := New([]string{"a", "b"}, r.options(2))
	q.Add(item{lane: "a", value: "1"})
	q.Add(item{lane: "b", value: "2"})
	began := time.Now()
	q.Add(item{lane: "a", value: "3"})
	if time.Since(began) > 50*time.Millisecond {
		t.Fatal("Add blocked")
	}
	r.mu.Lock()
	if fmt.Sprint(r.dropped) != "[a:1 the queue is full]" || r.depth != 2 {
		t.Fatalf("dropped %v, depth %d", r.dropped, r.depth)
	}
	r.mu.Unlock()
	close(r.gate)
	run(t, q)
	r.await(t, 2)
}

// At shutdown the queue delivers for at most the drain timeout, drops the rest and takes no
// more.
func TestQueueDrain(t *testing.T) {
	r := &recorder{gate: make(chan struct{})}
	q := New([]string{"a"}, r.options(10))
	for i := 0; i < 3; i++ {
		q.Add(item{lane: "a", value: fmt.Sprint(i)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = q.Start(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after the drain timeout")
	}
	q.Add(item{lane: "a", value: "late"})
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.delivered) != 0 || len(r.dropped) != 3 || r.dropped[2] != "a:late "+DroppedStopping || r.depth != 0 {
		t.Fatalf("delivered %v, dropped %v, depth %d", r.delivered, r.dropped, r.depth)
	}
	if err := q.Start(context.Background()); err == nil {
		t.Error("a second Start")
	}
}

// A delivery that fails for a reason that passes is tried again, at the head of its lane,
// unless an item that replaces it was added meanwhile; one that fails for good is dropped.
func TestQueueRetriesWhatMayPass(t *testing.T) {
	var mu sync.Mutex
	var delivered []string
	attempts := map[string]int{}
	down := true
	errDown, errRefused := errors.New("down"), errors.New("refused")
	q := New([]string{"a"}, Options[item]{
		Lane:     func(i item) string { return i.lane },
		Replaces: func(old, next item) bool { return old.key != "" && old.key == next.key },
		Deliver: func(_ context.Context, i item) error {
			mu.Lock()
			defer mu.Unlock()
			attempts[i.value]++
			switch {
			case i.value == "refused":
				return errRefused
			case down:
				return errDown
			}
			delivered = append(delivered, i.value)
			return nil
		},
		Retry:    func(err error) bool { return errors.Is(err, errDown) },
		PauseMin: time.Millisecond, PauseMax: 4 * time.Millisecond,
	})
	q.Add(item{lane: "a", value: "1", key: "x"})
	run(t, q)
	waitFor := func(cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out: attempts %v, delivered %v", attempts, delivered)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(func() bool { return attempts["1"] >= 3 })
	q.Add(item{lane: "a", value: "refused"})
	q.Add(item{lane: "a", value: "2", key: "x"}) // replaces 1, which is retried
	q.Add(item{lane: "a", value: "3"})
	mu.Lock()
	down = false
	mu.Unlock()
	waitFor(func() bool { return len(delivered) == 2 })
	if fmt.Sprint(delivered) != "[2 3]" || attempts["refused"] != 1 {
		t.Errorf("delivered %v, attempts %v", delivered, attempts)
	}
}
