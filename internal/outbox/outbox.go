// Package outbox is the bounded, asynchronous delivery queue kudod sends everything through
// that leaves for another system in the background: commit statuses (internal/forge) and plan
// notifications (internal/notify). Add never blocks, so a slow or unreachable receiver never
// delays a plan; the queue is bounded, all lanes together, and a full queue drops its oldest
// item; each lane (a repository, a notification target) delivers its items one at a time in
// the order they were added; an item that replaces a waiting one waits at the end, so a
// receiver gets what was added, in that order, less what was replaced. A delivery that fails
// for a reason that passes (Retry) goes back to the head of its lane and is tried again after a
// pause (PauseMin, doubling up to PauseMax), unless an item that replaces it waits: items
// outlive an outage of their receiver, in order, the newest winning. At shutdown the queue
// keeps delivering for a bounded time and drops the rest. Retries within one delivery and rate
// limits belong to the delivery (forge's HTTP client).
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
	DefaultPauseMin     = time.Second
	DefaultPauseMax     = 15 * time.Second
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
	// never); old leaves the queue and next waits at the end.
	Replaces func(old, next T) bool
	// Added is told of each item as it is queued, in queue order (e.g. to log it).
	Added func(item T)
	// Deliver delivers one item; its context ends once the drain timeout is over at shutdown.
	Deliver func(ctx context.Context, item T) error
	// Retry reports whether a failed delivery may pass if tried again (nil: never).
	Retry func(err error) bool
	// PauseMin and PauseMax bound the pause before a failed delivery is tried again
	// (DefaultPauseMin, DefaultPauseMax when zero).
	PauseMin, PauseMax time.Duration
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
	if opts.PauseMin <= 0 {
		opts.PauseMin = DefaultPauseMin
	}
	if opts.PauseMax < opts.PauseMin {
		opts.PauseMax = max(DefaultPauseMax, opts.PauseMin)
	}
	if opts.Added == nil {
		opts.Added = func(T) {}
	}
	if opts.Retry == nil {
		opts.Retry = func(error) bool { return false }
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
	q.opts.Added(item)
	replaced := false
	if q.opts.Replaces != nil {
		for i := range l.items {
			if q.opts.Replaces(l.items[i].item, item) {
				l.items = append(l.items[:i], l.items[i+1:]...)
				q.depth--
				replaced = true
				break
			}
		}
	}
	if !replaced && q.depth >= q.opts.Size {
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

// requeue puts an item whose delivery failed back at the head of its lane; false when it is
// gone instead: an item that replaces it waits (the receiver should get that one), the queue
// is full (this item is older than any waiting) or the queue stopped.
func (q *Queue[T]) requeue(name string, item T) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.lanes[name]
	if q.opts.Replaces != nil {
		for _, w := range l.items {
			if q.opts.Replaces(item, w.item) {
				return false
			}
		}
	}
	if q.stopped {
		q.opts.Dropped(item, DroppedStopping)
		return false
	}
	if q.depth >= q.opts.Size {
		q.opts.Dropped(item, DroppedFull)
		return false
	}
	// Its age stays the oldest of its lane: a later item never overtakes it.
	seq := q.seq + 1
	if len(l.items) > 0 {
		seq = l.items[0].seq
	}
	l.items = append([]queued[T]{{seq: seq, item: item}}, l.items...)
	q.depth++
	q.opts.Depth(q.depth)
	return true
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
	pause := q.opts.PauseMin
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
		err := q.opts.Deliver(deliverCtx, item)
		if err == nil || !q.opts.Retry(err) || ctx.Err() != nil {
			pause = q.opts.PauseMin
			continue
		}
		if !q.requeue(name, item) {
			continue
		}
		// The receiver is unreachable or failing: wait before trying again, the lane behind it.
		select {
		case <-time.After(pause):
		case <-ctx.Done():
		}
		pause = min(2*pause, q.opts.PauseMax)
	}
}
