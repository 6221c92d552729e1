package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
)

// Headers of a generic webhook delivery (docs/recovery.md, Notifications).
const (
	// HeaderSignature is "sha256=<hex HMAC-SHA256 of the body>" with the secretFile's key, as
	// GitHub signs its webhooks (X-Hub-Signature-256).
	HeaderSignature = "X-Kudod-Signature"
	// HeaderEvent names the event's kind.
	HeaderEvent = "X-Kudod-Event"
	// HeaderDelivery identifies a delivery; retries of it carry the same one.
	HeaderDelivery = "X-Kudod-Delivery"
)

// webhook posts the event itself as JSON, signed when the notification has a secretFile.
type webhook struct{}

func (webhook) signs() bool { return true }

func (webhook) encode(e Event, delivery string, key []byte) ([]byte, http.Header, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, nil, err
	}
	h := http.Header{}
	h.Set(HeaderEvent, e.Kind)
	h.Set(HeaderDelivery, delivery)
	if key != nil {
		h.Set(HeaderSignature, Sign(key, body))
	}
	return body, h, nil
}

// Sign returns the X-Kudod-Signature of a body: "sha256=" and the hex HMAC-SHA256 of the body
// with key. Receivers compute the same and compare in constant time.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
