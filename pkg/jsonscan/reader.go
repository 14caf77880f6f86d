package jsonscan

import (
	"fmt"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is encoding/json's bound on nesting.
const maxDepth = 10000

// Kind is the kind of the next value, from its first character.
type Kind byte

// The kinds of value; Invalid when the input ends or has a syntax error.
const (
	Invalid Kind = 0
	Null    Kind = 'n'
	Bool    Kind = 't'
	String  Kind = '"'
	Number  Kind = '0'
	Object  Kind = '{'
	Array   Kind = '['
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "bool"
	case String:
		return "string"
	case Number:
		return "number"
	case Object:
		return "object"
	case Array:
		return "array"
	}
	return "invalid"
}

// SyntaxError is malformed JSON: nothing after it is read.
type SyntaxError struct {
	Offset int
	msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("JSON at offset %d: %s", e.Offset, e.msg) }

// TypeError is a value of another kind than the one asked for; the value
// is skipped and reading goes on.
type TypeError struct {
	Offset int
	Got    Kind
	Want   Kind
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("JSON at offset %d: cannot read a %s as a %s", e.Offset, e.Got, e.Want)
}

// Reader reads one JSON document. Every method does nothing once a syntax
// error was met; Err and End report it.
type Reader struct {
	data    []byte
	pos     int
	depth   int
	err     error
	typeErr error
	// key is the last member name read: data's bytes, or scratch's when it
	// had to be unescaped.
	key     []byte
	scratch []byte
}

// NewReader returns a Reader of data. It keeps data, and returns strings
// that do not share its memory.
func NewReader(data []byte) *Reader { return &Reader{data: data} }

// Err returns the syntax error met, if any.
func (r *Reader) Err() error { return r.err }

// TypeError returns the first type error met (since SetTypeError).
func (r *Reader) TypeError() error { return r.typeErr }

// SetTypeError replaces the type error recorded and returns the one it
// replaces: a caller scopes type errors to part of the document with it.
func (r *Reader) SetTypeError(err error) error {
	prev := r.typeErr
	r.typeErr = err
	return prev
}

// End checks that only whitespace follows, and returns the syntax error,
// else the first type error, if any.
func (r *Reader) End() error {
	r.ws()
	if r.err == nil && r.pos < len(r.data) {
		r.syntax("invalid character %q after top-level value", r.data[r.pos])
	}
	if r.err != nil {
		return r.err
	}
	return r.typeErr
}

// Offset is where the reader is in the document.
func (r *Reader) Offset() int { return r.pos }

func (r *Reader) syntax(format string, args ...any) {
	if r.err == nil {
		r.err = &SyntaxError{Offset: r.pos, msg: fmt.Sprintf(format, args...)}
	}
}

func (r *Reader) eof() { r.syntax("unexpected end of JSON input") }

func (r *Reader) ws() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// Peek returns the kind of the next value, without reading it.
func (r *Reader) Peek() Kind {
	if r.err != nil {
		return Invalid
	}
	r.ws()
	if r.pos >= len(r.data) {
		r.eof()
		return Invalid
	}
	switch c := r.data[r.pos]; c {
	case 'n':
		return Null
	case 't', 'f':
		return Bool
	case '"':
		return String
	case '{':
		return Object
	case '[':
		return Array
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return Number
		}
		r.syntax("invalid character %q looking for beginning of value", c)
		return Invalid
	}
}

// WrongType records that the next value is not of the kind wanted, and
// skips it.
func (r *Reader) WrongType(want Kind) {
	got, at := r.Peek(), r.pos
	r.Skip()
	if r.err == nil && r.typeErr == nil {
		r.typeErr = &TypeError{Offset: at, Got: got, Want: want}
	}
}

// Members iterates over the members of an object (Reader.Object).
type Members struct {
	r    *Reader
	n    int
	done bool
}

// Object starts reading the object that comes next: each Next that
// returns true is followed by reading or skipping exactly one value, the
// member's. A null has no members, as for a struct in encoding/json;
// another kind of value is a type error, and skipped.
func (r *Reader) Object() Members {
	switch k := r.Peek(); k {
	case Object:
	case Null:
		r.Skip()
		return Members{r: r, done: true}
	case Invalid:
		return Members{r: r, done: true}
	default:
		r.WrongType(Object)
		return Members{r: r, done: true}
	}
	r.open()
	return Members{r: r}
}

func (r *Reader) open() {
	r.pos++
	r.depth++
	if r.depth > maxDepth {
		r.syntax("exceeded max depth")
	}
}

// Next reads the next member's name (Reader.Key); false at the object's
// end.
func (m *Members) Next() bool {
	r := m.r
	if m.done || r.err != nil || !r.nextItem('}', m.n, &m.done, "object key:value pair") {
		return false
	}
	r.ws()
	if r.pos >= len(r.data) {
		r.eof()
		return false
	}
	if c := r.data[r.pos]; c != '"' {
		r.syntax("invalid character %q looking for beginning of object key string", c)
		return false
	}
	raw, plain := r.scanString()
	if r.err != nil {
		return false
	}
	if plain {
		r.key = raw
	} else {
		r.scratch = unquote(r.scratch[:0], raw)
		r.key = r.scratch
	}
	r.ws()
	if r.pos >= len(r.data) {
		r.eof()
		return false
	}
	if r.data[r.pos] != ':' {
		r.syntax("invalid character %q after object key", r.data[r.pos])
		return false
	}
	r.pos++
	m.n++
	return true
}

// Key is the name of the member Next read; valid until the next read.
func (r *Reader) Key() []byte { return r.key }

// Elements iterates over the elements of an array (Reader.Array).
type Elements struct {
	r    *Reader
	n    int
	done bool
}

// Array starts reading the array that comes next: each Next that returns
// true is followed by reading or skipping exactly one value. Another kind
// of value is a type error, and skipped.
func (r *Reader) Array() Elements {
	if k := r.Peek(); k != Array {
		if k != Invalid {
			r.WrongType(Array)
		}
		return Elements{r: r, done: true}
	}
	r.open()
	return Elements{r: r}
}

// Next reports whether an element follows; false at the array's end.
func (e *Elements) Next() bool {
	r := e.r
	if e.done || r.err != nil || !r.nextItem(']', e.n, &e.done, "array element") {
		return false
	}
	e.n++
	return true
}

// Len is how many elements Next has announced so far.
func (e *Elements) Len() int { return e.n }

// nextItem reads, in an object or array that has announced n items so
// far, what comes before the next one: the closing byte (which ends it:
// done, and false), or after an item the comma. after names an item in
// the syntax error.
func (r *Reader) nextItem(closing byte, n int, done *bool, after string) bool {
	r.ws()
	if r.pos >= len(r.data) {
		r.eof()
		return false
	}
	c := r.data[r.pos]
	if c == closing {
		r.pos++
		r.depth--
		*done = true
		return false
	}
	if n > 0 {
		if c != ',' {
			r.syntax("invalid character %q after "+after, c)
			return false
		}
		r.pos++
	}
	return true
}

// Skip reads the next value, whatever it is, and validates it.
func (r *Reader) Skip() {
	switch r.Peek() {
	case Invalid:
	case Null:
		r.literal("null")
	case Bool:
		if r.data[r.pos] == 't' {
			r.literal("true")
		} else {
			r.literal("false")
		}
	case String:
		r.scanString()
	case Number:
		r.skipNumber()
	case Object:
		r.open()
		for m := (Members{r: r}); m.Next(); {
			r.Skip()
		}
	case Array:
		r.open()
		for e := (Elements{r: r}); e.Next(); {
			r.Skip()
		}
	}
}

// literal reads true, false or null.
func (r *Reader) literal(word string) {
	for i := 0; i < len(word); i++ {
		if r.pos >= len(r.data) {
			r.eof()
			return
		}
		if r.data[r.pos] != word[i] {
			r.syntax("invalid character %q in literal %s", r.data[r.pos], word)
			return
		}
		r.pos++
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipNumber validates a number as JSON writes it.
func (r *Reader) skipNumber() {
	d := r.data
	i := r.pos
	if d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		r.pos = i
		r.eof()
		return
	case d[i] == '0':
		i++
	case isDigit(d[i]):
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		r.pos = i
		r.syntax("invalid character %q in numeric literal", d[i])
		return
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			r.pos = i
			r.badNumber()
			return
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			r.pos = i
			r.badNumber()
			return
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	r.pos = i
}

func (r *Reader) badNumber() {
	if r.pos >= len(r.data) {
		r.eof()
		return
	}
	r.syntax("invalid character %q in numeric literal", r.data[r.pos])
}

// scanString validates the string at r.pos and returns its content as
// written; plain is set when it is also its value (no escape, valid
// UTF-8).
func (r *Reader) scanString() (raw []byte, plain bool) {
	d := r.data
	start := r.pos + 1
	escaped, nonASCII := false, false
	for i := start; i < len(d); {
		c := d[i]
		switch {
		case c == '"':
			raw = d[start:i]
			r.pos = i + 1
			return raw, !escaped && (!nonASCII || utf8.Valid(raw))
		case c == '\\':
			escaped = true
			i++
			if i >= len(d) {
				r.pos = i
				r.eof()
				return nil, false
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				for range 4 {
					if i >= len(d) {
						r.pos = i
						r.eof()
						return nil, false
					}
					if !isHex(d[i]) {
						r.pos = i
						r.syntax("invalid character %q in \\u hexadecimal character escape", d[i])
						return nil, false
					}
					i++
				}
			default:
				r.pos = i
				r.syntax("invalid character %q in string escape code", d[i])
				return nil, false
			}
		case c < 0x20:
			r.pos = i
			r.syntax("invalid character %q in string literal", c)
			return nil, false
		default:
			if c >= utf8.RuneSelf {
				nonASCII = true
			}
			i++
		}
	}
	r.pos = len(d)
	r.eof()
	return nil, false
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// readString reads the string at r.pos (Peek said String).
func (r *Reader) readString() string {
	raw, plain := r.scanString()
	if r.err != nil {
		return ""
	}
	if plain {
		return string(raw)
	}
	r.scratch = unquote(r.scratch[:0], raw)
	return string(r.scratch)
}

// unquote appends the value of a validated string's content to dst, as
// encoding/json decodes it: a lone surrogate escape and each byte of
// invalid UTF-8 become U+FFFD.
func unquote(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch e := s[i+1]; e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := hex4(s[i+2:])
				i += 6
				if utf16.IsSurrogate(rr) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if dec := utf16.DecodeRune(rr, hex4(s[i+2:])); dec != unicode.ReplacementChar {
							dst = utf8.AppendRune(dst, dec)
							i += 6
							continue
						}
					}
					rr = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			default: // " \ /
				dst = append(dst, e)
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			rr, size := utf8.DecodeRune(s[i:])
			dst = utf8.AppendRune(dst, rr)
			i += size
		}
	}
	return dst
}

// hex4 reads four validated hexadecimal digits.
func hex4(s []byte) rune {
	var v rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		v = v<<4 | rune(c)
	}
	return v
}

// ReadString reads a string into *dst as encoding/json does: null leaves
// it as it was, another kind is a type error.
func (r *Reader) ReadString(dst *string) {
	switch r.Peek() {
	case String:
		*dst = r.readString()
	case Null:
		r.Skip()
	case Invalid:
	default:
		r.WrongType(String)
	}
}

// ReadStringMap reads an object of strings into *dst as encoding/json
// does: null sets it to nil, members are added to the map there is, a
// null member is the empty string.
func (r *Reader) ReadStringMap(dst *map[string]string) {
	switch r.Peek() {
	case Null:
		r.Skip()
		*dst = nil
		return
	case Object:
	case Invalid:
		return
	default:
		r.WrongType(Object)
		return
	}
	if *dst == nil {
		*dst = map[string]string{}
	}
	for m := r.Object(); m.Next(); {
		k := string(r.key)
		var v string
		r.ReadString(&v)
		(*dst)[k] = v
	}
}

// ReadBool reads a bool into *dst as encoding/json reads a *bool: null
// sets it to nil.
func (r *Reader) ReadBool(dst **bool) {
	switch r.Peek() {
	case Bool:
		v := r.data[r.pos] == 't'
		r.Skip()
		*dst = &v
	case Null:
		r.Skip()
		*dst = nil
	case Invalid:
	default:
		r.WrongType(Bool)
	}
}

// ReadSlice reads an array into *dst as encoding/json does, each element
// with elem: null sets it to nil, an empty array makes it empty and not
// nil, and elements already there (a duplicate name) are read into again.
func ReadSlice[T any](r *Reader, dst *[]T, elem func(*Reader, *T)) {
	switch r.Peek() {
	case Null:
		r.Skip()
		*dst = nil
		return
	case Array:
	case Invalid:
		return
	default:
		r.WrongType(Array)
		return
	}
	s := *dst
	i := 0
	for e := r.Array(); e.Next(); i++ {
		if i < cap(s) {
			s = s[:i+1]
		} else {
			var zero T
			s = append(s[:cap(s)], zero)
		}
		elem(r, &s[i])
	}
	if i == 0 {
		s = []T{}
	} else {
		s = s[:i]
	}
	*dst = s
}
