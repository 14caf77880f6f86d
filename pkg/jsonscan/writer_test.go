package jsonscan

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendString(t *testing.T) {
	for s, want := range map[string]string{
		"":                `""`,
		"plain":           `"plain"`,
		`a"b\c`:           `"a\"b\\c"`,
		"\n\r\t\b\f\x01":  `"\n\r\t\b\f\u0001"`,
		"<&>":             `"<&>"`,
		"é😀":              `"é😀"`,
		"\xff":            `"\ufffd"`,
		"\u2028\u2029":    `"\u2028\u2029"`,
		"x\x7fy\xed\xa0z": `"x` + "\x7f" + `y\ufffd\ufffdz"`,
	} {
		assert.Equal(t, want, string(AppendString(nil, s)), "%q", s)
		checkString(t, s)
	}
}

// checkString checks that AppendString writes valid JSON that reads back
// as encoding/json's own encoding does.
func checkString(t *testing.T, s string) {
	t.Helper()
	out := AppendString([]byte("x"), s)
	require.Equal(t, byte('x'), out[0])
	var got string
	require.NoError(t, json.Unmarshal(out[1:], &got), "%q", out)
	std, err := json.Marshal(s)
	require.NoError(t, err)
	var want string
	require.NoError(t, json.Unmarshal(std, &want))
	assert.Equal(t, want, got)
}

func FuzzAppendString(f *testing.F) {
	f.Add("a\"\\\x00\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		checkString(t, s)
	})
}
