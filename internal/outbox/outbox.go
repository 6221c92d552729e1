// Package outbox is the bounded, asynchronous delivery queue kudod sends everything through
// that leaves for another system in the background: commit statuses (internal/forge) and plan
// notifications (internal/notify). Add never blocks, so a slow or unreachable receiver never
// delays a plan; the queue is bounded, all lanes together, and a full queue drops its oldest
// item; each lane (a repository, a notification target) delivers its items one at a time in
// the order they were added; at shutdown the queue keeps delivering for a bounded time and
// drops the rest. Retries and rate limits belong to the delivery (forge's HTTP client).
package outbox

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Why an item was dropped undelivered.
const (
	// DroppedFull: the queue was full and the item was the oldest waiting.
	DroppedFull = "the queue is full"
	// DroppedStopping: the queue had stopped, or stopped before the item's turn.
	DroppedStopping = "kudod is stopping"
)

// Defaults.
const (
	DefaultSize         = 1000
	DefaultDrainTimeout = 10 * time.Second
)

// Options configure a Queue of items of type T.
type Options[T any] struct {
	// Size bounds the items waiting, all lanes together (DefaultSize when zero).
	Size int
	// DrainTimeout bounds how long Start keeps delivering once its context ends
	// (DefaultDrainTimeout when zero).
	DrainTimeout time.Duration
	// Lane names the lane of an item.
	Lane func(T) string
	// Replaces reports whether item next replaces old, which waits in the same lane (nil:
	// never); the replacement keeps old's place.
	Replaces func(old, next T) bool
	// Deliver delivers one item; its context ends once the drain timeout is over at shutdown.
	Deliver func(ctx context.Context, item T)
	// Dropped is told of each item dropped undelivered, and why (DroppedFull, DroppedStopping).
	Dropped func(item T, why string)
	// Depth is told how many items wait, whenever that changes.
	Depth func(n int)
}

// Queue delivers items in the background, one worker per lane.
type Queue[T any] struct {
	opts Options[T]

	mu      sync.Mutex
	lanes   map[string]*lane[T]
	depth   int
	seq     uint64
	started bool
	stopped bool
}

type queued[T any] struct {
	seq  uint64 // age: the smallest is the oldest in the whole queue
	item T
}

// lane is the items of one lane waiting, oldest first.
type lane[T any] struct {
	items []queued[T]
	wake  chan struct{}
}

// New returns a queue with the given lanes; items of other lanes are not taken.
func New[T any](lanes []string, opts Options[T]) *Queue[T] {
	if opts.Size <= 0 {
		opts.Size = DefaultSize
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.Dropped == nil {
		opts.Dropped = func(T, string) {}
	}
	if opts.Depth == nil {
		opts.Depth = func(int) {}
	}
	q := &Queue[T]{opts: opts, lanes: map[string]*lane[T]{}}
	for _, name := range lanes {
		q.lanes[name] = &lane[T]{wake: make(chan struct{}, 1)}
	}
	return q
}

// Has reports whether the queue has the lane.
func (q *Queue[T]) Has(laneName string) bool {
	_, ok := q.lanes[laneName]
	return ok
}

// Add queues an item and returns at once; false when its lane is unknown. Items added before
// Start wait for it; items added once the queue stopped are dropped.
func (q *Queue[T]) Add(item T) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	l, ok := q.lanes[q.opts.Lane(item)]
	if !ok {
		return false
	}
	if q.stopped {
		q.opts.Dropped(item, DroppedStopping)
		return true
	}
	if q.opts.Replaces != nil {
		for i := range l.items {
			if q.opts.Replaces(l.items[i].item, item) {
				l.items[i].item = item
				return true
			}
		}
	}
	if q.depth >= q.opts.Size {
		q.dropOldest()
	}
	q.seq++
	l.items = append(l.items, queued[T]{seq: q.seq, item: item})
	q.depth++
	q.opts.Depth(q.depth)
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return true
}

// dropOldest removes the item added first of all those waiting. q.mu is held.
func (q *Queue[T]) dropOldest() {
	var oldest *lane[T]
	for _, l := range q.lanes {
		if len(l.items) > 0 && (oldest == nil || l.items[0].seq < oldest.items[0].seq) {
			oldest = l
		}
	}
	if oldest == nil {
		return
	}
	item := oldest.items[0].item
	oldest.items = oldest.items[1:]
	q.depth--
	q.opts.Depth(q.depth)
	q.opts.Dropped(item, DroppedFull)
}

// pop takes a lane's oldest item.
func (q *Queue[T]) pop(name string) (T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.lanes[name]
	if len(l.items) == 0 {
		var zero T
		return zero, false
	}
	item := l.items[0].item
	l.items = l.items[1:]
	q.depth--
	q.opts.Depth(q.depth)
	return item, true
}

// Start delivers items until ctx ends, then keeps delivering what waits for at most the drain
// timeout, drops the rest and returns. It suits controller-runtime's manager.Add.
func (q *Queue[T]) Start(ctx context.Context) error {
	q.mu.Lock()
	if q.started {
		q.mu.Unlock()
		return errors.New("outbox: already started")
	}
	q.started = true
	q.mu.Unlock()

	// Deliveries outlive ctx by the drain timeout: one under way at shutdown still lands.
	deliverCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stopDrain := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(q.opts.DrainTimeout, cancel)
		context.AfterFunc(deliverCtx, func() { t.Stop() })
	})
	defer stopDrain()

	var wg sync.WaitGroup
	for name := range q.lanes {
		wg.Go(func() { q.work(ctx, deliverCtx, name) })
	}
	<-ctx.Done()
	wg.Wait()

	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	for _, l := range q.lanes {
		for _, it := range l.items {
			q.opts.Dropped(it.item, DroppedStopping)
		}
		q.depth -= len(l.items)
		l.items = nil
	}
	q.opts.Depth(q.depth)
	return nil
}

// work delivers one lane's items in order; once ctx ends it empties the lane, unless
// deliverCtx ends first.
func (q *Queue[T]) work(ctx, deliverCtx context.Context, name string) {
	l := q.lanes[name]
	for deliverCtx.Err() == nil {
		item, ok := q.pop(name)
		if !ok {
			if ctx.Err() != nil {
				return
			}
			select {
			case <-l.wake:
			case <-ctx.Done():
			}
			continue
		}
		q.opts.Deliver(deliverCtx, item)
	}
}
