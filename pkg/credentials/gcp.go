package credentials

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// NormalizeServiceAccountKey accepts a Google service-account JSON key as
// an admin pastes it (indented, wrapped, with a trailing newline, or
// base64-encoded) and returns the password to log in with: the compact
// JSON (for user _json_key), or its base64 when asBase64 (for
// _json_key_base64).
func NormalizeServiceAccountKey(pasted string, asBase64 bool) (string, error) {
	// A byte-order mark, as some editors save a file, is no part of it.
	raw := []byte(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(pasted), "\uFEFF")))
	if len(raw) > 0 && raw[0] != '{' {
		// Not JSON: it may be the key in base64, wrapped or not, padded
		// or not, URL-safe or not.
		decoded, ok := decodeBase64(strings.Join(strings.Fields(string(raw)), ""))
		if !ok {
			return "", errors.New("is neither a service-account JSON key nor one in base64")
		}
		raw = decoded
	}
	var compact bytes.Buffer
	var probe json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			// Say where, never what: the key is a credential.
			return "", fmt.Errorf("is not a service-account JSON key: invalid JSON at byte %d", syn.Offset)
		}
		return "", errors.New("is not a service-account JSON key: invalid JSON")
	}
	if err := json.Compact(&compact, raw); err != nil {
		return "", errors.New("is not a service-account JSON key: invalid JSON")
	}
	var fields struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	var object map[string]json.RawMessage
	if err := json.Unmarshal(compact.Bytes(), &object); err != nil {
		return "", errors.New("is not a service-account JSON key: not a JSON object")
	}
	if err := json.Unmarshal(compact.Bytes(), &fields); err != nil {
		return "", errors.New(`is not a service-account JSON key: "type", "client_email" and "private_key" must be strings`)
	}
	switch {
	case fields.Type != "service_account":
		return "", errors.New(`is not a service-account JSON key: "type" must be "service_account"`)
	case fields.ClientEmail == "" || fields.PrivateKey == "":
		return "", errors.New(`is not a service-account JSON key: "client_email" and "private_key" are required`)
	}
	if asBase64 {
		return base64.StdEncoding.EncodeToString(compact.Bytes()), nil
	}
	return compact.String(), nil
}

// decodeBase64 decodes s in standard or URL-safe base64, padded or not,
// if it decodes to what a JSON object starts with, and returns that
// without a byte-order mark or the spaces around it: most short words also
// decode as unpadded base64, and a password pasted in a key's place is
// "not base64", not "invalid JSON".
func decodeBase64(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if t := bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(b), []byte("\uFEFF"))); len(t) > 0 && t[0] == '{' {
			return t, true
		}
	}
	return nil, false
}
