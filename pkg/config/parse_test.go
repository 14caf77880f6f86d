package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireNoCredential stops the test if text holds any of secrets, in any
// letter case, without printing text: it would print the credential.
func requireNoCredential(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
			t.Fatalf("the message quotes credential text (%d characters, not shown)", len(s))
		}
	}
}

// A credential pasted where YAML or the config format does not expect it
// must not come back in the error, which goes to the log, an Event and
// the status ConfigMap: the error names the registry and the field, or
// the line, and says what is wrong in words of its own.
func TestParseNeverQuotesCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		secrets      []string
		want         []string
	}{
		{
			name:    "unquoted password starting with *",
			config:  registry("- {name: hub, type: docker, url: docker.io, password: {value: *Xk9pQ2vL}}"),
			secrets: []string{"Xk9pQ2vL"},
			want:    []string{`not valid YAML: line 4: a value starts with "*"`, "quote the value"},
		},
		{
			name:    "unquoted password starting with *, block style",
			config:  registry("- name: hub\n  type: docker\n  url: docker.io\n  password:\n    value: *Xk9pQ2vL\n"),
			secrets: []string{"Xk9pQ2vL"},
			want:    []string{`not valid YAML: line 8: a value starts with "*"`},
		},
		{
			name:    "an anchor that contains itself",
			config:  registry("- name: hub\n  password: &S3cretAnchor [*S3cretAnchor]\n"),
			secrets: []string{"S3cretAnchor"},
			want:    []string{"not valid YAML: line 5: an anchor's value refers to the anchor itself"},
		},
		{
			name:    "a value that does not fit its tag",
			config:  registry("- {name: hub, password: {value: !!int S3cretTagged}}"),
			secrets: []string{"S3cretTagged"},
			want:    []string{"not valid YAML: a value does not fit its tag !!int"},
		},
		{
			name:    "a null key",
			config:  registry("- {name: hub, password: {null: S3cretNullKey}}"),
			secrets: []string{"S3cretNullKey"},
			want:    []string{"not valid YAML: a key is not plain text"},
		},
		{
			name:    "a list as a key",
			config:  registry("- {name: hub, password: {[S3cretListKey]: x}}"),
			secrets: []string{"S3cretListKey"},
			want:    []string{"not valid YAML: a key is not plain text"},
		},
		{
			name:    "a colon in an unquoted password",
			config:  registry("- name: hub\n  password:\n    value: S3cret: Colon\n"),
			secrets: []string{"S3cret", "Colon"},
			want:    []string{"not valid YAML: line 6: mapping values are not allowed in this context"},
		},
		{
			name:    "value: forgotten",
			config:  registry("- {name: hub, type: docker, url: docker.io, password: {S3cretPassw0rd}}"),
			secrets: []string{"S3cretPassw0rd"},
			want:    []string{`registry "hub": password: unknown field, not shown as it may be a credential: write {value: ...} or {secretKeyRef: {name, key}}`},
		},
		{
			name:    "a comma in an unquoted password",
			config:  registry("- {name: hub, type: docker, url: docker.io, password: {value: abc,S3cretTail}}"),
			secrets: []string{"S3cretTail"},
			want:    []string{`registry "hub": password: unknown field`},
		},
		{
			name:    "a comma in a password written without value:",
			config:  registry("- {name: hub, type: docker, url: docker.io, password: abc,S3cretTail}"),
			secrets: []string{"S3cretTail"},
			want:    []string{`registry "hub": unknown field without a value, not shown as it may be a credential`, `registry "hub": password: must be an object`},
		},
		{
			name:    "a comma in an ECR key written without value:",
			config:  registry("- {name: e, type: ecr, ecr: {auth: access-key, secretAccessKey: abc,S3cretTail}}"),
			secrets: []string{"S3cretTail"},
			want:    []string{`registry "e": ecr: unknown field without a value`},
		},
		{
			name:    "a password written twice",
			config:  registry("- {name: hub, type: docker, url: docker.io, password: {value: S3cretOne, value: S3cretTwo}}"),
			secrets: []string{"S3cretOne", "S3cretTwo"},
			want:    []string{`registry "hub": password.value: set more than once (line 4)`},
		},
		{
			name:    "a key written twice where value: was forgotten",
			config:  registry("- name: hub\n  password: {S3cretKey, S3cretKey}\n"),
			secrets: []string{"S3cretKey"},
			want:    []string{`registry "hub": password: a key is set more than once (line 5), not shown as it may be a credential`},
		},
		{
			name:    "a key written twice in a registry, where a value was cut at a comma",
			config:  registry("- {name: hub, password: abc,S3cretTail, username: {value: u}, S3cretTail}"),
			secrets: []string{"S3cretTail"},
			want:    []string{`registry "hub": a key is set more than once (line 4), not shown as it may be a credential`},
		},
		{
			name:    "an ECR key without value:",
			config:  registry("- {name: e, type: ecr, ecr: {auth: access-key, accessKeyID: {AKIAS3CRETKEYID}}}"),
			secrets: []string{"AKIAS3CRETKEYID"},
			want:    []string{`registry "e": ecr.accessKeyID: unknown field`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.config))
			require.Error(t, err)
			requireNoCredential(t, err.Error(), tc.secrets...)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// A mistake in a reference, which holds no credential, is still named by
// its path.
func TestParseNamesUnknownFieldsOfAReference(t *testing.T) {
	_, err := Parse([]byte(registry("- {name: hub, password: {secretKeyRef: {name: hub, key: token, optional: true}}}")))
	assert.EqualError(t, err, `registry "hub": password.secretKeyRef.optional: unknown field`)
}

// A typo of a field that has a value is named: it cannot be a piece of
// a credential cut at a comma.
func TestParseNamesTyposWithAValue(t *testing.T) {
	_, err := Parse([]byte("apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistry: []\nregistries:\n- {name: hub, usernme: {value: me}, clusters: {nmes: [prod]}}"))
	assert.EqualError(t, err, "registry: unknown field\n"+`registry "hub": clusters.nmes: unknown field`+"\n"+`registry "hub": usernme: unknown field`)
}

// Several unknown fields in one value source are one problem.
func TestParseReportsAValueSourceOnce(t *testing.T) {
	_, err := Parse([]byte(registry("- {name: hub, password: {S3cretOne, S3cretTwo}, username: {vaule: me}}")))
	require.Error(t, err)
	requireNoCredential(t, err.Error(), "S3cretOne", "S3cretTwo")
	ps := ProblemsOf(err)
	require.Len(t, ps, 2)
	assert.Equal(t, "password", ps[0].Field)
	assert.Equal(t, "username", ps[1].Field)
}

// Mistakes that cannot leak keep the parser's own words and line.
func TestParseKeepsUsefulYAMLErrors(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{"registries: [", "not valid YAML: line 1: did not find expected node content"},
		{"registries: [a", "not valid YAML: line 1: did not find expected ',' or ']'"},
		{registry("- name: hub\n  type: docker\n\turl: docker.io\n"), "not valid YAML: line 6: found a tab character that violates indentation"},
		{registry("- {name: hub, type: docker"), "not valid YAML: line 4: did not find expected ',' or '}'"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Parse([]byte(tc.config))
			assert.EqualError(t, err, tc.want)
		})
	}
}

// A key an anchor's mapping is merged with (<<) may be set again: that
// is how YAML overrides it, not a duplicate.
func TestParseAllowsOverridingMergedKeys(t *testing.T) {
	cfg, err := Parse([]byte(registry(`
- &base {name: a, type: other, url: x.io, username: {value: u}, password: {value: p}}
- <<: *base
  name: b
  url: y.io
`)))
	require.NoError(t, err)
	require.Len(t, cfg.Registries, 2)
	assert.Equal(t, "b", cfg.Registries[1].Name)
	assert.Equal(t, "y.io", cfg.Registries[1].URL)
}
