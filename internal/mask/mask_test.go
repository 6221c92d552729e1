package mask

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // a form the masker must recognise
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

const secret = "c0rrect-h0rse:battery/staple"

func TestMaskEveryForm(t *testing.T) {
	m := New()
	m.Add(secret, "ab", "true", "8080", "")
	sum := sha256.Sum256([]byte(secret))
	md := md5.Sum([]byte(secret)) //nolint:gosec // see the import
	quoted, _ := json.Marshal(secret + "\"\n")
	m.Add(secret + "\"\n")
	pem := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
	m.Add(pem)
	for _, tc := range []struct{ name, text string }{
		{"plain", "password is " + secret + "."},
		{"base64", "data: {password: " + base64.StdEncoding.EncodeToString([]byte(secret)) + "}"},
		{"base64 url", base64.URLEncoding.EncodeToString([]byte(secret))},
		{"base64 inside a file at offset 1", base64.StdEncoding.EncodeToString([]byte("p=" + secret + "\n"))},
		{"base64 inside a file at offset 2", base64.StdEncoding.EncodeToString([]byte("pw=" + secret + "\nother=1"))},
		{"base64 inside a file at offset 0", base64.StdEncoding.EncodeToString([]byte("pwd=" + secret + "\nother=1"))},
		{"hex", hex.EncodeToString([]byte(secret))},
		{"sha256", "checksum/secret: " + hex.EncodeToString(sum[:])},
		{"md5", hex.EncodeToString(md[:])},
		{"url-escaped", "postgres://u:" + url.QueryEscape(secret) + "@db"},
		{"json-escaped", string(quoted)},
		{"a line of a PEM key", "+  key: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := m.Mask(tc.text)
			if !strings.Contains(got, "<sensitive>") {
				t.Errorf("not masked: %q", got)
			}
			for _, f := range Forms(secret) {
				if strings.Contains(got, f) {
					t.Errorf("%q still holds %q", got, f)
				}
			}
		})
	}
	for _, plain := range []string{"replicas: 8080", "enabled: true", "ab cd", "nothing to see here"} {
		if got := m.Mask(plain); got != plain {
			t.Errorf("Mask(%q) = %q: a short or plain value is masked", plain, got)
		}
	}
}

func TestNilMaskerMasksNothing(t *testing.T) {
	var m *Masker
	m.Add(secret)
	if got := m.Mask(secret); got != secret {
		t.Errorf("nil masker: %q", got)
	}
	if err := m.Error(errors.New(secret)); err.Error() != secret {
		t.Errorf("nil masker error: %v", err)
	}
}

func TestMaskError(t *testing.T) {
	m := New()
	m.Add(secret)
	base := fmt.Errorf("template: fail: bad password %s: %w", secret, fs.ErrInvalid)
	err := m.Error(base)
	if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "<sensitive>") {
		t.Errorf("error: %v", err)
	}
	if !errors.Is(err, fs.ErrInvalid) {
		t.Error("errors.Is lost the wrapped error")
	}
}

func TestMaskerForgetsTheOldest(t *testing.T) {
	m := New()
	m.limit = 2 * len(Forms("first-value"))
	m.Add("first-value")
	m.Add("second-value")
	m.Add("third-value")
	if got := m.Mask("first-value"); got != "first-value" {
		t.Errorf("the oldest value is still masked: %q", got)
	}
	if got := m.Mask("third-value second-value"); got != "<sensitive> <sensitive>" {
		t.Errorf("newer values: %q", got)
	}
}

func TestHandlerMasksEveryRecord(t *testing.T) {
	m := New()
	m.Add(secret)
	var buf bytes.Buffer
	log := slog.New(m.Handler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	log = log.With("instance", "x", "preset", secret)
	log.Debug("rendered "+secret, "value", secret, "err", errors.New("bad "+secret), "list", []string{secret},
		slog.Group("g", slog.String("inner", secret)))
	log.WithGroup("grp").Info("info", "v", base64.StdEncoding.EncodeToString([]byte(secret)))
	out := buf.String()
	for _, f := range Forms(secret) {
		if strings.Contains(out, f) {
			t.Errorf("the log holds %q:\n%s", f, out)
		}
	}
	if strings.Count(out, "<sensitive>") < 7 {
		t.Errorf("not every attribute is masked:\n%s", out)
	}
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("the handler hides the debug level")
	}
}
