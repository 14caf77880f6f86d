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
	raw := []byte(strings.TrimSpace(pasted))
	if len(raw) > 0 && raw[0] != '{' {
		// Not JSON: it may be the key in base64, wrapped or not.
		decoded, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(raw)), ""))
		if err != nil {
			return "", errors.New("is neither a service-account JSON key nor one in base64")
		}
		raw = bytes.TrimSpace(decoded)
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
	if err := json.Unmarshal(compact.Bytes(), &fields); err != nil {
		return "", errors.New("is not a service-account JSON key: not a JSON object")
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
