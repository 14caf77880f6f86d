package config

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Only the parser's fixed texts pass; a message of another form keeps its
// line and loses its words, which may quote the document.
func TestDescribeYAMLErrorShowsOnlyFixedText(t *testing.T) {
	const hidden = "the YAML parser's message is not shown, as it may quote a credential"
	for _, tc := range []struct{ err, want string }{
		{"yaml: line 3: mapping values are not allowed in this context", "line 3: mapping values are not allowed in this context"},
		{"error converting YAML to JSON: yaml: line 2: did not find expected key", "line 2: did not find expected key"},
		{"yaml: line 9: exceeded max depth of 10000", "line 9: exceeded max depth of 10000"},
		{"yaml: found unknown escape character", "found unknown escape character"},
		{"yaml: line 7: found S3cretText where it should not be", "line 7: " + hidden},
		{"yaml: unmarshal errors:\n  line 5: cannot unmarshal !!str `S3cretText` into int", "line 5: " + hidden},
		{"yaml: line 4: exceeded max depth of S3cretText", "line 4: " + hidden},
		{"yaml: cannot decode !!str `S3cretText` as a !!int", "a value does not fit its tag !!int"},
		{"yaml: cannot decode !!str `S3cretText` as a !S3cretTag", "a value does not fit its tag"},
		{"yaml: unknown anchor 'S3cretText' referenced", `a value starts with "*", which YAML reads as an alias of an anchor that is not defined: quote the value`},
		{"yaml: invalid map key: []interface {}{\"S3cretText\"}", "a key is not plain text (a list, a map, or null): quote it"},
		{"unsupported map key of type: %!s(<nil>), key: <nil>, value: \"S3cretText\"", "a key is not plain text (a list, a map, or null): quote it"},
		{"yaml: S3cretText", hidden},
		{"S3cretText", hidden},
	} {
		t.Run(tc.want, func(t *testing.T) {
			got := describeYAMLError(nil, errors.New(tc.err))
			requireNoCredential(t, got, "S3cretText", "S3cretTag")
			assert.Equal(t, tc.want, got)
		})
	}
}

// The line of an alias or anchor is found in the document, as the YAML
// library does not give it.
func TestLineOf(t *testing.T) {
	data := []byte("a: b*x\nc: [*xy, *x]\nd: &x {}\n")
	assert.Equal(t, 2, lineOf(data, '*', "x"), "an alias is a whole name, after a space or a flow indicator")
	assert.Equal(t, 2, lineOf(data, '*', "xy"))
	assert.Equal(t, 3, lineOf(data, '&', "x"))
	assert.Equal(t, 0, lineOf(data, '*', "z"))
	assert.Equal(t, "a reason", atLine(0, "a reason"))
	assert.Equal(t, "line 2: a reason", atLine(2, "a reason"))
}
