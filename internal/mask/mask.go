// Package mask keeps sensitive values out of everything kudod writes (docs/secrets.md): a
// Masker learns the values of sensitive parameters as they are read (from git, decrypted, or
// from Secrets and ConfigMaps) and replaces them, and the forms they take on the way — base64
// (as in a Secret's data, at any offset), hex, URL and JSON escaping, their MD5, SHA-1, SHA-256
// and SHA-512 digests, each line of a multi-line value — with "<sensitive>" in log lines,
// events, commit statuses, status messages and pull-request comments. Messages that name a
// parameter mask its value by the parameter (manifests.SensitiveValue); the Masker is the net
// under everything else: a template's `fail` message, an API server's error, a preview diff.
package mask

import (
	"crypto/md5"  //nolint:gosec // to recognise a value's digest, not to protect anything
	"crypto/sha1" //nolint:gosec // idem
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/kudod-dev/kudod/manifests"
)

// MinLength is the shortest value masked by value: shorter ones (and booleans and small
// numbers) would mask every "true" or "80" of every message; they are still masked wherever a
// message names their parameter.
const MinLength = 4

// window is how many leading bytes index the forms.
const window = 4

// defaultLimit bounds how many forms a Masker remembers; the oldest values are forgotten first
// (they are learnt again when read again).
const defaultLimit = 250_000

// Masker replaces known sensitive values in text. The zero value is not usable; a nil
// *Masker masks nothing. Safe for concurrent use.
type Masker struct {
	mu    sync.RWMutex
	known map[string]bool // values added
	order []string        // values, oldest first
	forms map[string]int  // form → how many values have it
	index map[string][]string
	count int // forms
	limit int
}

// New returns an empty Masker.
func New() *Masker {
	return &Masker{known: map[string]bool{}, forms: map[string]int{}, index: map[string][]string{}, limit: defaultLimit}
}

// Add learns sensitive values. Values too short or too plain to mask by value are skipped.
func (m *Masker) Add(values ...string) {
	if m == nil {
		return
	}
	var fresh []string
	m.mu.RLock()
	for _, v := range values {
		if !m.known[v] && maskable(v) {
			fresh = append(fresh, v)
		}
	}
	m.mu.RUnlock()
	if len(fresh) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range fresh {
		if m.known[v] {
			continue
		}
		m.known[v] = true
		m.order = append(m.order, v)
		for _, f := range Forms(v) {
			m.forms[f]++
			if m.forms[f] == 1 {
				m.count++
				m.indexForm(f)
			}
		}
	}
	for m.count > m.limit && len(m.order) > 1 {
		m.forget(m.order[0])
		m.order = m.order[1:]
	}
}

func (m *Masker) indexForm(f string) {
	k := f[:window]
	list := append(m.index[k], f)
	// Longest first: a value's base64 is masked whole, not a shorter form inside it.
	sort.SliceStable(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	m.index[k] = list
}

func (m *Masker) forget(v string) {
	delete(m.known, v)
	for _, f := range Forms(v) {
		m.forms[f]--
		if m.forms[f] > 0 {
			continue
		}
		delete(m.forms, f)
		m.count--
		k := f[:window]
		list := m.index[k]
		for i, g := range list {
			if g == f {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(m.index, k)
		} else {
			m.index[k] = list
		}
	}
}

// Mask returns s with every known value, in every form, replaced by "<sensitive>".
func (m *Masker) Mask(s string) string {
	if m == nil || len(s) < window {
		return s
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.index) == 0 {
		return s
	}
	var b *strings.Builder
	last := 0 // s[last:i] is not written yet
	for i := 0; i+window <= len(s); {
		found := ""
		for _, f := range m.index[s[i:i+window]] {
			if strings.HasPrefix(s[i:], f) {
				found = f
				break
			}
		}
		if found == "" {
			i++
			continue
		}
		if b == nil {
			b = &strings.Builder{}
			b.Grow(len(s))
		}
		b.WriteString(s[last:i])
		b.WriteString(manifests.SensitiveValue)
		i += len(found)
		last = i
	}
	if b == nil {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// Error returns err with its message masked; errors.Is and errors.As still see err.
func (m *Masker) Error(err error) error {
	if err == nil || m == nil {
		return err
	}
	msg := err.Error()
	if masked := m.Mask(msg); masked != msg {
		return &maskedError{msg: masked, err: err}
	}
	return err
}

type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }

// maskable reports whether a value is masked by value: long enough, and not a boolean or a
// small number, which would be masked everywhere.
func maskable(v string) bool {
	t := strings.TrimSpace(v)
	if len(t) < MinLength {
		return false
	}
	switch strings.ToLower(t) {
	case "true", "false", "yes", "no", "null", "none", "enabled", "disabled":
		return false
	}
	if _, err := strconv.ParseFloat(t, 64); err == nil && len(t) < 8 {
		return false
	}
	return true
}

// Forms are the texts a value may show up as: itself, each line of it, and its encodings and
// digests. Forms shorter than MinLength are left out.
func Forms(v string) []string {
	set := map[string]bool{}
	add := func(f string) {
		if len(f) >= MinLength && len(f) >= window {
			set[f] = true
		}
	}
	add(v)
	if t := strings.TrimSpace(v); t != v && maskable(t) {
		add(t)
	}
	if strings.Contains(v, "\n") {
		for _, l := range strings.Split(v, "\n") {
			if l = strings.TrimSpace(l); len(l) >= 8 {
				add(l)
			}
		}
	}
	if q, err := json.Marshal(v); err == nil {
		add(string(q[1 : len(q)-1]))
	}
	q := strconv.Quote(v)
	add(q[1 : len(q)-1])
	add(url.QueryEscape(v))
	add(url.PathEscape(v))
	add(hex.EncodeToString([]byte(v)))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		for _, f := range base64Forms(enc, []byte(v)) {
			add(f)
		}
	}
	md := md5.Sum([]byte(v))  //nolint:gosec // see the import
	s1 := sha1.Sum([]byte(v)) //nolint:gosec // see the import
	s256 := sha256.Sum256([]byte(v))
	s512 := sha512.Sum512([]byte(v))
	for _, sum := range [][]byte{md[:], s1[:], s256[:], s512[:]} {
		add(hex.EncodeToString(sum))
		add(base64.StdEncoding.EncodeToString(sum))
	}
	out := slices.Sorted(maps.Keys(set))
	return out
}

// base64Forms are a value's base64 encodings as a whole and as part of a longer text: at
// each of the three offsets a value can start at within the encoded bytes, the characters
// that depend on the value's bytes only (a password inside a base64-encoded configuration
// file of a Secret).
func base64Forms(enc *base64.Encoding, v []byte) []string {
	out := []string{enc.EncodeToString(v)}
	for offset := 0; offset < 3; offset++ {
		buf := make([]byte, offset+len(v))
		copy(buf[offset:], v)
		e := enc.EncodeToString(buf)
		// Groups of 3 bytes encode to 4 characters: keep the groups made of value bytes only.
		first := (offset + 2) / 3
		last := (offset + len(v)) / 3 // exclusive
		if last-first < 2 {
			continue // too short to tell apart from chance
		}
		out = append(out, e[first*4:last*4])
	}
	return out
}
