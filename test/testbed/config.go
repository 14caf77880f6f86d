package testbed

import (
	"fmt"
	"strings"
)

// RegistryWithCA is one registry of a RegistryConfig, as YAML: the
// registry at host, of type other, trusted with the CA caPEM, logged in to
// as user with the password under key in the Secret secret of regcred's
// namespace.
func RegistryWithCA(name, host string, caPEM []byte, user, secret, key string) string {
	return fmt.Sprintf(`- name: %s
  type: other
  url: %s
  connection: secure-with-ca
  caCert:
    value: |
%s
  username: {value: %s}
  password: {secretKeyRef: {name: %s, key: %s}}
`, name, host, Indent(string(caPEM), "      "), user, secret, key)
}

// Config is a RegistryConfig of the given registries (RegistryWithCA's, or
// any other entries as YAML).
func Config(registries ...string) string {
	return "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n" + strings.Join(registries, "")
}

// Indent prefixes every line of s with prefix, its trailing newlines
// dropped.
func Indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}
