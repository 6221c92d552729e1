package forge

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"

	"k8s.io/utils/lru"
)

// deliveryIDHeaders are the headers in which forges name a delivery, the same on every retry
// of it:
//   - Gitea sends X-Gitea-Delivery, and the same value as X-GitHub-Delivery and X-Gogs-Delivery;
//   - GitHub's X-GitHub-Delivery names the event and is kept by redeliveries;
//   - GitLab's Idempotency-Key stays the same across retries of one event (gitlab-org/gitlab#388692);
//     X-Gitlab-Event-UUID is shared by every hook one request triggers, which for kudod, keyed
//     with the event name, is one poll all the same.
var deliveryIDHeaders = []string{"X-Gitea-Delivery", "X-GitHub-Delivery", "X-Gogs-Delivery", "Idempotency-Key", "X-Gitlab-Event-UUID"}

// deliveryKeys are what identify a signed delivery to the replay cache: each delivery ID it
// carries, and its event with the digest of its body. The IDs recognize a forge's retries; the
// digest recognizes a captured delivery replayed with new IDs, since the signature covers
// the body and not the headers. All are scoped to the repository and the event.
func deliveryKeys(repository, event string, h http.Header, body []byte) []string {
	prefix := repository + "\x00" + event + "\x00"
	digest := sha256.Sum256(body)
	keys := []string{prefix + "body\x00" + hex.EncodeToString(digest[:])}
	for _, name := range deliveryIDHeaders {
		if id := strings.TrimSpace(h.Get(name)); id != "" {
			keys = append(keys, prefix+"id\x00"+truncate(id, 128))
		}
	}
	return keys
}

// replayCache remembers the keys of the last deliveries acted on, a bounded number of them
// (least recently seen forgotten first). A replay only ever asks for a poll, which is safe, but
// a signed delivery replayed 500 times should not cost 500 polls.
type replayCache struct {
	mu   sync.Mutex
	keys *lru.Cache
}

func newReplayCache(size int) *replayCache {
	return &replayCache{keys: lru.New(size)}
}

// seen reports whether any of keys was seen before, and remembers them all.
func (c *replayCache) seen(keys []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	found := false
	for _, k := range keys {
		if _, ok := c.keys.Get(k); ok {
			found = true
		}
	}
	for _, k := range keys {
		c.keys.Add(k, struct{}{})
	}
	return found
}
