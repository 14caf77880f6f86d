package jsonscan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	kjson "sigs.k8s.io/json"
)

// target has a field of every shape the Reader reads.
type target struct {
	S string            `json:"s"`
	M map[string]string `json:"m"`
	B *bool             `json:"b"`
	P *inner            `json:"p"`
	L []inner           `json:"l"`
	N inner             `json:"n"`
}

type inner struct {
	X string `json:"x"`
	Y string `json:"y"`
}

func readInner(r *Reader, in *inner) {
	for m := r.Object(); m.Next(); {
		switch string(r.Key()) {
		case "x":
			r.ReadString(&in.X)
		case "y":
			r.ReadString(&in.Y)
		default:
			r.Skip()
		}
	}
}

func readTarget(r *Reader, t *target) {
	for m := r.Object(); m.Next(); {
		switch string(r.Key()) {
		case "s":
			r.ReadString(&t.S)
		case "m":
			r.ReadStringMap(&t.M)
		case "b":
			r.ReadBool(&t.B)
		case "p":
			if r.Peek() == Null {
				r.Skip()
				t.P = nil
				continue
			}
			if t.P == nil {
				t.P = &inner{}
			}
			readInner(r, t.P)
		case "l":
			ReadSlice(r, &t.L, readInner)
		case "n":
			readInner(r, &t.N)
		default:
			r.Skip()
		}
	}
}

func scan(data []byte) (target, error) {
	var t target
	r := NewReader(data)
	readTarget(r, &t)
	return t, r.End()
}

func TestReaderAgreesWithEncodingJSON(t *testing.T) {
	for _, doc := range []string{
		`{}`, `null`, ` {"s":"a"} `,
		`{"s":"a","m":{"k":"v","e":null},"b":true,"p":{"x":"1"},"l":[{"x":"a"},null,{"y":"b"}],"n":{"x":"n"},"other":[1,2.5e3,-0,{"a":[true,false,null]}]}`,
		`{"S":"case matters","s":null}`,
		`{"s":"first","s":"last"}`,
		`{"m":{"a":"1"},"m":{"b":"2"}}`, `{"m":{"a":"1"},"m":null}`,
		`{"l":[{"x":"a"},{"x":"b"}],"l":[{"y":"c"}]}`, `{"l":[{"x":"a"},{"x":"b"}],"l":[{}],"l":[{},{}]}`,
		`{"l":[]}`, `{"l":null}`, `{"p":null}`, `{"p":{"x":"a"},"p":{"y":"b"}}`,
		`{"s":"\u00e9\ud83d\ude00\ud800x\\\/\b\f\n\r\t\"","m":{"\u006b":"v"}}`,
		`{"\u0073":"escaped name"}`,
		"{\"s\":\"\xff\xfeinvalid \xed\xa0\x80 utf8\"}",
		`{"b":false}`, `{"b":null}`,
		// Type errors: the rest is read, and the error reported.
		`{"s":1}`, `{"m":[]}`, `{"m":{"k":1}}`, `{"b":"yes"}`, `{"l":{}}`, `{"l":[1]}`, `{"n":"x"}`, `[]`, `"s"`, `1`, `true`,
		// Syntax errors.
		``, ` `, `{`, `{"s"}`, `{"s":}`, `{"s":"a",}`, `{"s":"a"}x`, `{"s":"a" "n":1}`, `[1,]`, `{"x":01}`, `{"x":1.}`, `{"x":1e}`,
		`{"x":-}`, `{"x":tru}`, `{"x":nul}`, `{"s":"\x"}`, `{"s":"\u12"}`, "{\"s\":\"a\x01\"}", `{"s":"abc`, `{"x":[1 2]}`,
		`{'s':1}`, `{"x":+1}`,
	} {
		t.Run(doc, func(t *testing.T) {
			compare(t, []byte(doc))
		})
	}
}

func TestReaderDepth(t *testing.T) {
	deep := func(n int) []byte {
		return []byte(`{"o":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`)
	}
	compare(t, deep(maxDepth))
	compare(t, deep(maxDepth+1))
	_, err := scan(deep(maxDepth + 1))
	require.Error(t, err)
}

func TestReaderErrors(t *testing.T) {
	_, err := scan([]byte(`{"s":1,"x":[}`))
	var syntax *SyntaxError
	require.ErrorAs(t, err, &syntax, "a syntax error wins over an earlier type error")

	got, err := scan([]byte(`{"s":1,"n":{"x":"read all the same"}}`))
	var typeErr *TypeError
	require.ErrorAs(t, err, &typeErr)
	assert.Equal(t, Number, typeErr.Got)
	assert.Equal(t, String, typeErr.Want)
	assert.Equal(t, "read all the same", got.N.X)

	r := NewReader([]byte(`{"s":1}`))
	var tg target
	prev := r.SetTypeError(nil)
	readTarget(r, &tg)
	assert.Error(t, r.SetTypeError(prev), "a type error is scoped by SetTypeError")
	assert.NoError(t, r.End())
}

// compare checks that the Reader decodes data as sigs.k8s.io/json does:
// both fail, or both succeed with the same value.
func compare(t *testing.T, data []byte) {
	t.Helper()
	var want target
	wantErr := kjson.UnmarshalCaseSensitivePreserveInts(data, &want)
	got, err := scan(data)
	if wantErr != nil {
		if err == nil {
			t.Fatalf("%q: encoding/json fails (%v), the Reader does not: %+v", data, wantErr, got)
		}
		var typeErr *json.UnmarshalTypeError
		var mine *TypeError
		if errors.As(wantErr, &typeErr) != errors.As(err, &mine) {
			t.Fatalf("%q: encoding/json says %v, the Reader %v", data, wantErr, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%q: the Reader fails (%v), encoding/json does not: %+v", data, err, want)
	}
	assert.Equal(t, want, got, "%q", data)
}

func FuzzReader(f *testing.F) {
	for _, s := range []string{
		`{"s":"a","m":{"k":"v"},"b":true,"p":{"x":"1"},"l":[{"x":"a"},null],"n":{"x":"n"},"z":[1,{"a":null}]}`,
		`{"l":[{"x":"a"},{"x":"b"}],"l":[{}],"l":[{},{}]}`,
		`{"s":"\ud800\udc00\u00e9"}`, "{\"s\":\"\xff\"}", `{"s":1}`, `[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		compare(t, data)
	})
}
