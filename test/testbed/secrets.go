package testbed

import (
	"strings"
	"testing"
)

// NoSecret reports whether text holds none of secrets, and fails t if it
// holds one, saying where and at which offset but never what: a failure's
// message must not print the credential it found (testify's Contains and
// NotContains print both their operands).
func NoSecret(t testing.TB, where, text string, secrets ...string) bool {
	t.Helper()
	ok := true
	for i, s := range secrets {
		if s == "" {
			continue
		}
		if at := strings.Index(text, s); at >= 0 {
			t.Errorf("a credential (form %d of %d) in %s, at offset %d of %d", i+1, len(secrets), where, at, len(text))
			ok = false
		}
	}
	return ok
}

// Redact returns text with each of secrets replaced, for output a test
// prints (a log dumped on failure).
func Redact(text string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			text = strings.ReplaceAll(text, s, "<redacted>")
		}
	}
	return text
}
