package manifests

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync/atomic"
	"time"
)

// RenderLimits bound one package render: every template a plan renders for one instance, or
// every template Verify renders (docs/design.md, Limits). A template that exceeds one is
// refused with its file, the line where text/template knows it, and the limit. kudod renders
// what anyone with a pull request writes, in a daemon with a memory limit: without these, one
// template line (`randAlphaNum 1000000000`) costs gigabytes.
type RenderLimits struct {
	// Timeout is the wall time of one package render (default 5s).
	Timeout time.Duration
	// MaxOutput is the size of what one template may render (default 8 MiB).
	MaxOutput int
	// MaxAlloc bounds the bytes the template functions of one package render may build, and
	// the templates' output: strings, lists and maps, counted before they are built (default 64 MiB).
	MaxAlloc int64
	// MaxSteps bounds function calls, range iterations and template calls of one package
	// render (default 1,000,000, about a second of work): a loop with no output and no
	// function stops here, deterministically, before the time limit.
	MaxSteps int64
	// MaxDepth bounds how deeply template calls nest ({{ template }} in a define; default 100).
	MaxDepth int
}

// Default render limits.
const (
	DefaultRenderTimeout = 5 * time.Second
	defaultMaxOutput     = 8 << 20
	defaultMaxAlloc      = 64 << 20
	defaultMaxSteps      = 1_000_000
	defaultMaxDepth      = 100
	// maxValueDepth bounds how deeply a value a template prints or passes to a function may
	// nest: deeper is a value built to exhaust the stack (or one containing itself).
	maxValueDepth = 100
)

// DefaultRenderLimits returns the limits kudod renders with unless told otherwise.
func DefaultRenderLimits() RenderLimits {
	return RenderLimits{Timeout: DefaultRenderTimeout, MaxOutput: defaultMaxOutput, MaxAlloc: defaultMaxAlloc, MaxSteps: defaultMaxSteps, MaxDepth: defaultMaxDepth}
}

// withDefaults fills the zero fields with the defaults.
func (l RenderLimits) withDefaults() RenderLimits {
	d := DefaultRenderLimits()
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxOutput <= 0 {
		l.MaxOutput = d.MaxOutput
	}
	if l.MaxAlloc <= 0 {
		l.MaxAlloc = d.MaxAlloc
	}
	if l.MaxSteps <= 0 {
		l.MaxSteps = d.MaxSteps
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	return l
}

// LimitError is a render stopped by one of its limits, or by the cancellation of its context.
type LimitError struct {
	// Limit names what was exceeded: "time", "memory", "output", "steps", "depth", "nesting",
	// or "cancelled" (the process is shutting down).
	Limit string
	// Detail says what the template did.
	Detail string
}

func (e *LimitError) Error() string {
	if e.Limit == "cancelled" {
		return e.Detail
	}
	return fmt.Sprintf("%s (%s limit)", e.Detail, e.Limit)
}

// IsRenderLimit reports whether err is a render stopped by a limit or a cancellation.
func IsRenderLimit(err error) bool {
	var le *LimitError
	return errors.As(err, &le)
}

type budgetKey struct{}
type limitsKey struct{}

// WithRenderLimits returns a context whose renders use l (zero fields: the defaults).
func WithRenderLimits(ctx context.Context, l RenderLimits) context.Context {
	return context.WithValue(ctx, limitsKey{}, l.withDefaults())
}

// renderLimitsFrom returns the limits set with WithRenderLimits, or the defaults.
func renderLimitsFrom(ctx context.Context) RenderLimits {
	if l, ok := ctx.Value(limitsKey{}).(RenderLimits); ok {
		return l
	}
	return DefaultRenderLimits()
}

// StartRender starts one package render: renders under the returned context share one budget
// (time, memory, steps). A context that holds a budget already is returned as it is, so a
// plan render and the templates it renders count against the same budget. Call the cancel
// function when the render is done.
func StartRender(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Value(budgetKey{}).(*budget); ok {
		return ctx, func() {}
	}
	b := newBudget(ctx, renderLimitsFrom(ctx))
	return context.WithValue(ctx, budgetKey{}, b), func() {}
}

// budgetFrom returns the budget of the package render ctx belongs to, or starts one for a
// single template.
func budgetFrom(ctx context.Context) *budget {
	if b, ok := ctx.Value(budgetKey{}).(*budget); ok {
		return b
	}
	return newBudget(ctx, renderLimitsFrom(ctx))
}

// budget is what one package render may still spend. The counters are atomic: renders of one
// package may run at once under one budget.
type budget struct {
	// parent is the caller's context: its end cancels the render.
	parent   context.Context
	deadline time.Time
	limits   RenderLimits
	alloc    atomic.Int64
	steps    atomic.Int64
}

// newBudget starts a budget. The deadline is a time read every few steps rather than a
// context with a timer: a render of one template then allocates nothing for its budget.
func newBudget(parent context.Context, l RenderLimits) *budget {
	l = l.withDefaults()
	return &budget{parent: parent, deadline: time.Now().Add(l.Timeout), limits: l}
}

// cancelled returns the error that ends a render whose context ended.
func (b *budget) cancelled() *LimitError {
	if b.parent.Err() == nil {
		return nil
	}
	return &LimitError{Limit: "cancelled", Detail: fmt.Sprintf("render cancelled: %v", context.Cause(b.parent))}
}

// check returns the error that ends the render, if its context ended or its time is up.
func (b *budget) check() *LimitError {
	if err := b.cancelled(); err != nil {
		return err
	}
	if time.Now().After(b.deadline) {
		return &LimitError{Limit: "time", Detail: fmt.Sprintf("the package render took longer than %s", b.limits.Timeout)}
	}
	return nil
}

// clockEvery is how many steps go between two reads of the clock.
const clockEvery = 16

// step counts one function call, range iteration or template call, and stops the render
// (panics with a *LimitError, which text/template returns as the error of the call) when a
// limit is reached.
func (b *budget) step() {
	n := b.steps.Add(1)
	if n > b.limits.MaxSteps {
		panic(&LimitError{Limit: "steps", Detail: fmt.Sprintf("the package render takes more than %d steps (function calls, loop iterations, template calls)", b.limits.MaxSteps)})
	}
	if n%clockEvery == 0 {
		if err := b.check(); err != nil {
			panic(err)
		}
	} else if err := b.cancelled(); err != nil {
		panic(err)
	}
}

// work counts n steps of work a function does in one call (uniq compares every pair).
func (b *budget) work(n int64, what string) {
	if n > 0 && b.steps.Add(n) > b.limits.MaxSteps {
		panic(&LimitError{Limit: "steps", Detail: fmt.Sprintf("%s: more work than the %d steps a package render may take", what, b.limits.MaxSteps)})
	}
	if err := b.check(); err != nil {
		panic(err)
	}
}

// charge counts n bytes a function is about to build, and stops the render when the package
// render would build more than MaxAlloc.
func (b *budget) charge(n int64, what string) {
	if n <= 0 {
		return
	}
	if total := b.alloc.Add(n); total > b.limits.MaxAlloc || total < 0 {
		panic(&LimitError{Limit: "memory", Detail: fmt.Sprintf("%s would build %s, beyond the %s a package render may build", what, byteSize(n), byteSize(b.limits.MaxAlloc))})
	}
}

// chargeArg is charge for a function asked for arg of something ("repeat 1000000000").
func (b *budget) chargeArg(n int64, name string, arg int) {
	if n <= 0 {
		return
	}
	if total := b.alloc.Add(n); total > b.limits.MaxAlloc || total < 0 {
		panic(&LimitError{Limit: "memory", Detail: fmt.Sprintf("%s %d would build %s, beyond the %s a package render may build", name, arg, byteSize(n), byteSize(b.limits.MaxAlloc))})
	}
}

// byteSize prints a size for messages: "64 MiB", "1.5 GiB", "812 bytes".
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// mulSat multiplies without overflowing: counts and sizes come from templates.
func mulSat(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

// addSat adds non-negative sizes without overflowing.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// extent is what measure finds about a value.
type extent struct {
	size  int64 // bytes when printed or copied (strings by length, other nodes 8 bytes)
	nodes int64
	depth int
}

// measure walks a value a template prints or passes to a function, as printing or copying it
// would, and fails when it nests deeper than maxValueDepth (a value built to exhaust the stack,
// or one containing itself) or is larger than limit bytes. Scalars cost nothing to walk.
func measure(v any, limit int64) (extent, error) {
	m := measurer{limit: limit}
	if err := m.walk(v, 1); err != nil {
		return m.e, err
	}
	return m.e, nil
}

type measurer struct {
	e     extent
	limit int64
}

var errTooDeep = &LimitError{Limit: "nesting", Detail: fmt.Sprintf("a value nested deeper than %d levels (or containing itself)", maxValueDepth)}

func (m *measurer) add(n int64) error {
	m.e.size = addSat(m.e.size, n)
	m.e.nodes++
	if m.e.size > m.limit {
		return &LimitError{Limit: "memory", Detail: fmt.Sprintf("a value larger than the %s a package render may still build", byteSize(m.limit))}
	}
	return nil
}

func (m *measurer) walk(v any, depth int) error {
	if depth > maxValueDepth {
		return errTooDeep
	}
	m.e.depth = max(m.e.depth, depth)
	switch v := v.(type) {
	case nil:
		return m.add(8)
	case string:
		return m.add(int64(len(v)) + 8)
	case bool, int, int64, float64, int32, uint, uint64:
		return m.add(8)
	case []any:
		if err := m.add(8); err != nil {
			return err
		}
		for _, e := range v {
			if err := m.walk(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if err := m.add(8); err != nil {
			return err
		}
		for k, e := range v {
			if err := m.add(int64(len(k))); err != nil {
				return err
			}
			if err := m.walk(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case []string:
		n := int64(8)
		for _, s := range v {
			n = addSat(n, int64(len(s))+8)
		}
		return m.add(n)
	case map[string]string:
		n := int64(8)
		for k, s := range v {
			n = addSat(n, int64(len(k)+len(s))+16)
		}
		return m.add(n)
	case []int:
		return m.add(mulSat(int64(len(v)), 8) + 8)
	}
	return m.walkReflect(reflect.ValueOf(v), depth)
}

func (m *measurer) walkReflect(rv reflect.Value, depth int) error {
	if depth > maxValueDepth {
		return errTooDeep
	}
	m.e.depth = max(m.e.depth, depth)
	switch rv.Kind() {
	case reflect.Invalid:
		return m.add(8)
	case reflect.String:
		return m.add(int64(rv.Len()) + 8)
	case reflect.Interface, reflect.Pointer:
		if rv.IsNil() {
			return m.add(8)
		}
		return m.walkReflect(rv.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		if err := m.add(8); err != nil {
			return err
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return m.add(int64(rv.Len()))
		}
		for i := range rv.Len() {
			if err := m.walkReflect(rv.Index(i), depth+1); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if err := m.add(8); err != nil {
			return err
		}
		it := rv.MapRange()
		for it.Next() {
			if err := m.walkReflect(it.Key(), depth+1); err != nil {
				return err
			}
			if err := m.walkReflect(it.Value(), depth+1); err != nil {
				return err
			}
		}
		return nil
	case reflect.Struct:
		// Values of sprig's own types (certificates, time.Time, semver versions): fields are
		// walked so a large certificate counts, unexported ones included.
		if err := m.add(8); err != nil {
			return err
		}
		for i := range rv.NumField() {
			if err := m.walkReflect(rv.Field(i), depth+1); err != nil {
				return err
			}
		}
		return nil
	default:
		return m.add(8)
	}
}

// reaches reports whether v holds the map target (by identity), so that setting v into target
// would make a value that contains itself: printing it recurses until the stack overflows,
// which kills the process rather than failing the render.
func reaches(v any, target reflect.Value) (bool, error) {
	if target.Kind() != reflect.Map || target.IsNil() {
		return false, nil
	}
	type node struct {
		p uintptr
		n int
	}
	seen := map[node]bool{}
	var walk func(rv reflect.Value, depth int) (bool, error)
	walk = func(rv reflect.Value, depth int) (bool, error) {
		if depth > maxValueDepth {
			return false, errTooDeep
		}
		switch rv.Kind() {
		case reflect.Interface, reflect.Pointer:
			if rv.IsNil() {
				return false, nil
			}
			return walk(rv.Elem(), depth+1)
		case reflect.Map:
			if rv.IsNil() {
				return false, nil
			}
			p := rv.Pointer()
			if p == target.Pointer() {
				return true, nil
			}
			if seen[node{p, -1}] {
				return false, nil
			}
			seen[node{p, -1}] = true
			it := rv.MapRange()
			for it.Next() {
				if found, err := walk(it.Value(), depth+1); found || err != nil {
					return found, err
				}
			}
		case reflect.Slice, reflect.Array:
			if rv.Type().Elem().Kind() == reflect.Uint8 || rv.Len() == 0 {
				return false, nil
			}
			// A list may hold the same list many times (list $l $l): each is walked once.
			if rv.Kind() == reflect.Slice {
				k := node{rv.Pointer(), rv.Len()}
				if seen[k] {
					return false, nil
				}
				seen[k] = true
			}
			for i := range rv.Len() {
				if found, err := walk(rv.Index(i), depth+1); found || err != nil {
					return found, err
				}
			}
		}
		return false, nil
	}
	return walk(reflect.ValueOf(v), 1)
}
