package bench

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"
)

// errWebhookNotServed: nothing listens on the webhook address, or it has no /hooks/ route.
var errWebhookNotServed = errors.New("the daemon does not serve POST /hooks/<repository> on --webhook-bind-address")

// deliverPush posts a GitHub push event for commit to the daemon's webhook receiver, signed as
// GitHub signs it (X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>).
func deliverPush(ctx context.Context, s *daemonSetup, before, after string) error {
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": before, "after": after,
		"repository":  map[string]any{"name": s.repository, "full_name": "bench/" + s.repository, "clone_url": s.url},
		"head_commit": map[string]any{"id": after},
	})
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, s.webhookSecret)
	mac.Write(body)
	url := "http://" + s.webhookAddr + "/hooks/" + s.repository
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", time.Now().UnixNano()))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w: POST %s: %v", errWebhookNotServed, url, err)
	}
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return fmt.Errorf("%w: POST %s: %s: %s", errWebhookNotServed, url, resp.Status, bytes.TrimSpace(msg))
	case resp.StatusCode >= 300:
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
