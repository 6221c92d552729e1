package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode"
)

// How sensitive values print, in every output (docs/secrets.md).
const (
	// SensitiveValue stands for a sensitive value.
	SensitiveValue = "<sensitive>"
	// SensitiveChanged says that a sensitive value changed, without either value.
	SensitiveChanged = "(sensitive value changed)"
	// MaskedValue is the older name of SensitiveValue.
	MaskedValue = SensitiveValue
)

// sensitiveParts are substrings of a parameter name that mark a secret wherever they appear
// (ADMINPASSWORD, SSL_KEYSTORE, CLIENT_SECRETS).
var sensitiveParts = []string{"PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "PRIVATE"}

// sensitiveWords are words of a parameter name (split at '_', '-', '.' and camelCase) that mark
// a secret only as a whole word: DB_PASS but not PASSTHROUGH, SMTP_AUTH but not AUTHOR.
var sensitiveWords = map[string]bool{
	"PASS": true, "PWD": true, "PW": true, "AUTH": true, "PEM": true, "CRED": true, "CREDS": true,
	"DSN": true, "SALT": true, "JWT": true, "HMAC": true, "OTP": true,
}

// referenceWords end names whose value is about a secret, not the secret itself: the name of a
// Secret (TLS_SECRET_NAME), a file's path (SSL_KEY_FILE), a switch (SMTP_AUTH_ENABLED), a
// class (KEY_CONVERTER). Masking such values would hide object names everywhere.
var referenceWords = map[string]bool{
	"NAME": true, "NAMES": true, "REF": true, "FILE": true, "PATH": true, "DIR": true, "MOUNT": true,
	"CLASS": true, "CONVERTER": true, "ENABLED": true, "ENABLE": true, "TYPE": true, "TTL": true,
	"LENGTH": true, "SIZE": true, "COUNT": true, "PORT": true, "VERSION": true, "ALGORITHM": true,
}

// IsSensitive reports whether a parameter's name looks like it holds a secret: names
// containing PASSWORD, PASSWD, PASSPHRASE, SECRET, TOKEN, KEY, CREDENTIAL or PRIVATE, or with a
// word such as PASS, PWD, AUTH, PEM or DSN — unless the last word says the value only refers
// to a secret (…_NAME, …_FILE, …_ENABLED, …). Packages that mark their parameters
// `sensitive: true` need not rely on it; for those that mark nothing it is the safety net
// (docs/secrets.md).
func IsSensitive(name string) bool {
	words := nameWords(name)
	if len(words) > 1 && referenceWords[strings.ToUpper(words[len(words)-1])] {
		return false
	}
	n := strings.ToUpper(name)
	for _, s := range sensitiveParts {
		if strings.Contains(n, s) {
			return true
		}
	}
	for _, w := range words {
		if sensitiveWords[strings.ToUpper(w)] {
			return true
		}
	}
	return false
}

// nameWords splits a parameter name into words at separators and at lower-to-upper case
// changes: "smtpAuth" and "SMTP_AUTH" both hold the word AUTH.
func nameWords(name string) []string {
	var words []string
	start := -1
	runes := []rune(name)
	for i, r := range runes {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			if start >= 0 {
				words = append(words, string(runes[start:i]))
				start = -1
			}
			continue
		}
		if start >= 0 && unicode.IsUpper(r) && unicode.IsLower(runes[i-1]) {
			words = append(words, string(runes[start:i]))
			start = i
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		words = append(words, string(runes[start:]))
	}
	return words
}

// IsSensitive reports whether the parameter's value is a secret: the package marks it
// `sensitive: true`, or its name looks like one.
func (p *Parameter) IsSensitive() bool {
	return p != nil && (p.Sensitive || IsSensitive(p.Name))
}

// IsSensitive reports whether the package's parameter of that name is sensitive; a name the
// package does not declare is judged by the name alone.
func (p *Package) IsSensitive(name string) bool {
	if p != nil {
		if par := p.Parameter(name); par != nil {
			return par.IsSensitive()
		}
	}
	return IsSensitive(name)
}

// IsSensitive reports whether an instance's parameter is sensitive: its package says so, its
// value was decrypted from a SOPS-encrypted file, or it comes from parametersFrom.
func (in *Instance) IsSensitive(name string) bool {
	if in.Decrypted[name] || in.FromSources(name) {
		return true
	}
	return in.Package.IsSensitive(name)
}

// FromSources reports whether parametersFrom names the parameter explicitly.
func (in *Instance) FromSources(name string) bool {
	for _, src := range in.ParametersFrom {
		if src.Parameter == name {
			return true
		}
	}
	return false
}

// DisplayValue returns a parameter's value for messages: SensitiveValue when the parameter's
// name looks sensitive (the callers that know the package use DisplayParam).
func DisplayValue(name, text string) string {
	if IsSensitive(name) {
		return SensitiveValue
	}
	return text
}

// digestPrefix starts a sensitive value's digest in an Instance (spec.parameters,
// status.applied.parameters).
const digestPrefix = "<sensitive sha256:"

// SensitiveDigest is what an Instance holds instead of a sensitive value: a SHA-256 digest of
// the value salted with the instance and the parameter, so it shows that a value changed
// without showing the value, and equal values of two instances differ. It is not a secret
// itself: a weak password can be found by trying candidates, which is why real secrets belong
// in parametersFrom or SOPS-encrypted files (docs/secrets.md).
func SensitiveDigest(namespace, instance, parameter, value string) string {
	h := sha256.New()
	for _, s := range []string{"kudod.dev/parameter", namespace, instance, parameter} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write([]byte(value))
	return digestPrefix + hex.EncodeToString(h.Sum(nil)) + ">"
}

// IsSensitiveDigest reports whether a stored parameter value is a SensitiveDigest.
func IsSensitiveDigest(s string) bool {
	return strings.HasPrefix(s, digestPrefix) && strings.HasSuffix(s, ">")
}

// SameSensitive reports whether two stored forms of a sensitive parameter's value (each the
// value or its digest) are the same value.
func SameSensitive(namespace, instance, parameter, a, b string) bool {
	if a == b {
		return true
	}
	if !IsSensitiveDigest(a) {
		a = SensitiveDigest(namespace, instance, parameter, a)
	}
	if !IsSensitiveDigest(b) {
		b = SensitiveDigest(namespace, instance, parameter, b)
	}
	return a == b
}

// StoredParameters are an instance's explicit parameter values as the Instance object holds
// them (spec.parameters): sensitive values replaced by their digests. The values themselves
// stay in git and are read again when a plan renders.
func (in *Instance) StoredParameters() map[string]string {
	out := make(map[string]string, len(in.Parameters))
	for k, v := range in.Parameters {
		if in.IsSensitive(k) {
			out[k] = SensitiveDigest(in.Namespace, in.Name, k, v.Text)
		} else {
			out[k] = v.Text
		}
	}
	return out
}

// SensitiveValues are the values of the instance's sensitive parameters, for masking.
func (in *Instance) SensitiveValues() []string {
	var out []string
	for k, v := range in.Parameters {
		if in.IsSensitive(k) {
			out = append(out, v.Text)
		}
	}
	return out
}

// HideValue removes a sensitive value from a message about it (a type or enum error names the
// value it rejects).
func HideValue(msg, value string) string {
	if value == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, strconv.Quote(value), SensitiveValue)
	return strings.ReplaceAll(msg, value, SensitiveValue)
}
