package applier

import (
	"bytes"
	"errors"
	"testing"
)

// A stream written into a limitedBuffer stops at the first write past the limit, which says
// so once; stderr's buffer keeps its first bytes and takes the rest without failing.
func TestLimitedBuffer(t *testing.T) {
	tests := []struct {
		name     string
		truncate bool
		writes   []string
		kept     string
		exceeded bool
		failedAt int // index of the first failing write, -1 for none
	}{
		{name: "under the limit", writes: []string{"ab", "cd"}, kept: "abcd", failedAt: -1},
		{name: "exactly the limit", writes: []string{"abcd", "ef"}, kept: "abcdef", failedAt: -1},
		{name: "one byte over", writes: []string{"abcdef", "g"}, kept: "abcdef", exceeded: true, failedAt: 1},
		{name: "one large write", writes: []string{"abcdefgh"}, kept: "", exceeded: true, failedAt: 0},
		{name: "writes after the limit keep failing", writes: []string{"abcdefg", "h", "i"}, kept: "", exceeded: true, failedAt: 0},
		{name: "stderr is cut", truncate: true, writes: []string{"abcd", "efgh", "ij"}, kept: "abcdef", failedAt: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			overs := 0
			b := &limitedBuffer{limit: 6, truncate: tt.truncate, over: func() { overs++ }}
			failedAt := -1
			for i, w := range tt.writes {
				n, err := b.Write([]byte(w))
				if err != nil {
					if !errors.Is(err, ErrOutputLimit) {
						t.Fatalf("write %d: %v", i, err)
					}
					if failedAt < 0 {
						failedAt = i
					}
				} else if n != len(w) {
					t.Fatalf("write %d wrote %d of %d bytes without an error", i, n, len(w))
				}
			}
			kept, exceeded := b.close()
			if string(kept) != tt.kept || exceeded != tt.exceeded || failedAt != tt.failedAt {
				t.Errorf("kept %q, exceeded %v, first failure at %d; want %q, %v, %d", kept, exceeded, failedAt, tt.kept, tt.exceeded, tt.failedAt)
			}
			if want := map[bool]int{true: 1, false: 0}[tt.exceeded]; overs != want {
				t.Errorf("over called %d times, want %d", overs, want)
			}
			if _, err := b.Write([]byte("x")); err == nil {
				t.Error("a closed buffer took a write")
			}
			if k, _ := b.close(); !bytes.Equal(k, kept) {
				t.Errorf("a closed buffer changed: %q", k)
			}
		})
	}
}
