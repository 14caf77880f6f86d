package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// describeYAMLError says why data is not valid YAML, and where, in words
// that never come from the document. The YAML library's messages may
// quote an anchor, an alias, a tag, a key or a value, and any of them can
// be a credential pasted unquoted (`value: *Xk9p...` is read as an
// alias): a message passes only when it is one of the parser's fixed
// texts; any other is reduced to its line and a reason of regcred's own.
func describeYAMLError(data []byte, err error) string {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	if m := lineProblem.FindStringSubmatch(msg); m != nil {
		if fixedProblems[m[2]] || maxDepth.MatchString(m[2]) {
			return "line " + m[1] + ": " + m[2]
		}
		return "line " + m[1] + hiddenReason
	}
	if name, ok := between(msg, "yaml: unknown anchor '", "' referenced"); ok {
		return atLine(lineOf(data, '*', name), `a value starts with "*", which YAML reads as an alias of an anchor that is not defined: quote the value`)
	}
	if name, ok := between(msg, "yaml: anchor '", "' value contains itself"); ok {
		return atLine(lineOf(data, '&', name), "an anchor's value refers to the anchor itself")
	}
	if strings.HasPrefix(msg, "yaml: cannot decode ") {
		// "cannot decode !!str `<value>` as a !!int": only the tag, last,
		// is shown, and only when it is one of YAML's own.
		reason := "a value does not fit its tag"
		if i := strings.LastIndex(msg, " as a "); i >= 0 && standardTags[msg[i+len(" as a "):]] {
			reason += " " + msg[i+len(" as a "):]
		}
		return reason
	}
	if strings.HasPrefix(msg, "yaml: invalid map key:") || strings.HasPrefix(msg, "unsupported map key") {
		return "a key is not plain text (a list, a map, or null): quote it"
	}
	var unsupported *json.UnsupportedValueError
	if errors.As(err, &unsupported) {
		return "a number is infinite or not a number (.inf, .nan): quote it if it is text"
	}
	if problem, ok := strings.CutPrefix(msg, "yaml: "); ok && fixedProblems[problem] {
		return problem
	}
	return strings.TrimPrefix(hiddenReason, ": ")
}

// hiddenReason stands for a message of the YAML library that may quote
// the document.
const hiddenReason = ": the YAML parser's message is not shown, as it may quote a credential"

var (
	// lineProblem is how the YAML library starts the messages that have a
	// line: syntax errors, and type errors listed one per line.
	lineProblem = regexp.MustCompile(`^yaml: (?:unmarshal errors:\n\s*)?line ([0-9]+): (.*)`)
	maxDepth    = regexp.MustCompile(`^exceeded max depth of [0-9]+$`)
)

// fixedProblems are the messages of the YAML parser (go.yaml.in/yaml/v2,
// which sigs.k8s.io/yaml uses) that are fixed text, never formatted with
// the document's content. A message not listed here is not shown.
var fixedProblems = setOf(
	// The scanner.
	"block sequence entries are not allowed in this context",
	"could not find expected ':'",
	"could not find expected directive name",
	"did not find expected alphabetic or numeric character",
	"did not find expected comment or line break",
	"did not find expected digit or '.' character",
	"did not find expected hexdecimal number",
	"did not find expected version number",
	"did not find expected whitespace",
	"did not find expected whitespace or line break",
	"did not find the expected '>'",
	"found a tab character that violates indentation",
	"found a tab character where an indentation space is expected",
	"found an indentation indicator equal to 0",
	"found character that cannot start any token",
	"found extremely long version number",
	"found invalid Unicode character escape code",
	"found unexpected document indicator",
	"found unexpected end of stream",
	"found unexpected non-alphabetical character",
	"found unknown directive name",
	"found unknown escape character",
	"mapping keys are not allowed in this context",
	"mapping values are not allowed in this context",
	"did not find URI escaped octet",
	"did not find expected '!'",
	"did not find expected tag URI",
	"found an incorrect leading UTF-8 octet",
	"found an incorrect trailing UTF-8 octet",
	// The parser.
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected node content",
	"found undefined tag handle",
	// The reader.
	"control characters are not allowed",
	"expected low surrogate area",
	"incomplete UTF-16 character",
	"incomplete UTF-16 surrogate pair",
	"incomplete UTF-8 octet sequence",
	"invalid Unicode character",
	"invalid leading UTF-8 octet",
	"invalid length of a UTF-8 sequence",
	"invalid trailing UTF-8 octet",
	"unexpected low surrogate area",
	// The decoder.
	"!!binary value contains invalid base64 data",
	"document contains excessive aliasing",
	"map merge requires map or sequence of maps as the value",
)

// standardTags are the tags whose values the YAML library checks.
var standardTags = setOf("!!bool", "!!int", "!!float", "!!timestamp", "!!null", "!!str", "!!binary")

func setOf(items ...string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[s] = true
	}
	return m
}

// between returns what s holds between prefix and suffix.
func between(s, prefix, suffix string) (string, bool) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, suffix)
}

func atLine(line int, reason string) string {
	if line == 0 {
		return reason
	}
	return "line " + strconv.Itoa(line) + ": " + reason
}

// lineOf returns the line (from 1) of the first alias (*name) or anchor
// (&name) of that name in data, or 0: the YAML library does not say where
// it found one.
func lineOf(data []byte, indicator byte, name string) int {
	token := append([]byte{indicator}, name...)
	for i, line := range bytes.Split(data, []byte("\n")) {
		for from := 0; ; {
			j := bytes.Index(line[from:], token)
			if j < 0 {
				break
			}
			j += from
			from = j + len(token)
			starts := j == 0 || strings.IndexByte(" \t[{,", line[j-1]) >= 0
			ends := from == len(line) || !isAnchorChar(line[from])
			if starts && ends {
				return i + 1
			}
		}
	}
	return 0
}

// isAnchorChar reports whether c may be part of an anchor's name, as the
// YAML library scans it.
func isAnchorChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
}
