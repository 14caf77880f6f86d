package image

import (
	"errors"
	"fmt"
	"strings"
)

// parseName reads an image reference as reference.ParseNormalizedNamed
// does (Docker's rules, which the kubelet uses) and returns its domain and
// path, or the error that function gives, word for word. It uses no
// regular expressions: distribution/reference compiles a dozen at start,
// some 0.5 MB that every process linking it keeps. References of the
// common shapes take a shorter path still. The tests hold both paths to
// ParseNormalizedNamed, case by case and by fuzzing.
func parseName(s string) (domain, path string, err error) {
	if d, p, ok := parseCommonName(s); ok {
		return d, p, nil
	}
	return parseNormalized(s)
}

// The errors of distribution/reference and go-digest that parseName can
// give, with their words.
var (
	errReferenceInvalidFormat = errors.New("invalid reference format")
	errNameContainsUppercase  = errors.New("repository name must be lowercase")
	errNameTooLong            = fmt.Errorf("repository name must not be more than %d characters", repositoryNameTotalLengthMax)
	errDigestInvalidFormat    = errors.New("invalid checksum digest format")
	errDigestInvalidLength    = errors.New("invalid checksum digest length")
	errDigestUnsupported      = errors.New("unsupported digest algorithm")
)

// repositoryNameTotalLengthMax is the longest path a reference may have.
const repositoryNameTotalLengthMax = 255

// parseNormalized is reference.ParseNormalizedNamed, step by step.
func parseNormalized(s string) (domain, path string, err error) {
	if len(s) == 64 && isLowerHex(s) {
		return "", "", fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)
	}
	domain, remainder := splitDockerDomain(s)
	remote := remainder
	if colon := strings.IndexByte(remainder, ':'); colon >= 0 {
		remote = remainder[:colon]
	}
	if strings.ToLower(remote) != remote {
		return "", "", fmt.Errorf("invalid reference format: repository name (%s) must be lowercase", remote)
	}
	return parseReference(domain + "/" + remainder)
}

// parseReference is reference.Parse, for a reference with a slash: the
// grammar's anchored regular expression, then the path's length and the
// digest's algorithm.
func parseReference(s string) (domain, path string, err error) {
	domain, path, digest, ok := matchReference(s)
	if !ok {
		if _, _, _, ok := matchReference(strings.ToLower(s)); ok {
			return "", "", errNameContainsUppercase
		}
		return "", "", errReferenceInvalidFormat
	}
	if len(path) > repositoryNameTotalLengthMax {
		return "", "", errNameTooLong
	}
	if digest != "" {
		if err := validateDigest(digest); err != nil {
			return "", "", err
		}
	}
	return domain, path, nil
}

// matchReference matches s as the grammar's
// ^((?:domain-and-port/)?remote-name)(?::(tag))?(?:@(digest))?$ does, with
// its submatches. A domain and a path component cannot hold a slash, so the
// domain, if any, is everything before the first one; it is taken when it
// is one and the rest matches (the regular expression tries that first).
// Without a domain the whole must match, which fails whenever the rest did.
func matchReference(s string) (domain, path, digest string, ok bool) {
	if slash := strings.IndexByte(s, '/'); slash >= 0 && isDomainAndPort(s[:slash]) {
		if path, digest, ok = matchRemote(s[slash+1:]); ok {
			return s[:slash], path, digest, true
		}
	}
	path, digest, ok = matchRemote(s)
	return "", path, digest, ok
}

// matchRemote matches s as remote-name(?::(tag))?(?:@(digest))?: none of
// the three holds a colon or an at sign but the digest, so each ends where
// the next begins.
func matchRemote(s string) (path, digest string, ok bool) {
	end := strings.IndexAny(s, ":@")
	if end < 0 {
		end = len(s)
	}
	path, rest := s[:end], s[end:]
	if !isRemoteName(path) {
		return "", "", false
	}
	if tag, ok := strings.CutPrefix(rest, ":"); ok {
		at := strings.IndexByte(tag, '@')
		if at < 0 {
			at = len(tag)
		}
		if !isTag(tag[:at]) {
			return "", "", false
		}
		rest = tag[at:]
	}
	if rest == "" {
		return path, "", true
	}
	if digest = rest[1:]; !isDigest(digest) {
		return "", "", false
	}
	return path, digest, true
}

// isDigest: [A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}.
func isDigest(s string) bool {
	algorithm, encoded, ok := strings.Cut(s, ":")
	if !ok || len(encoded) < 32 {
		return false
	}
	for i := 0; i < len(encoded); i++ {
		if c := encoded[i]; !isHexDigit(c) {
			return false
		}
	}
	// Components of a letter then letters and digits, one separator
	// between each two.
	letter := true
	for i := 0; i < len(algorithm); i++ {
		c := algorithm[i]
		switch {
		case isLetter(c):
			letter = false
		case c >= '0' && c <= '9' && !letter:
		case (c == '-' || c == '_' || c == '+' || c == '.') && !letter:
			letter = true
		default:
			return false
		}
	}
	return !letter
}

// validateDigest is go-digest's Parse of a digest the grammar matched: one
// of the three algorithms go-digest knows, and its length in lower-case
// hexadecimal.
func validateDigest(s string) error {
	algorithm, encoded, _ := strings.Cut(s, ":")
	var size int
	switch algorithm {
	case "sha256":
		size = 32
	case "sha384":
		size = 48
	case "sha512":
		size = 64
	default:
		// Any other algorithm that go-digest's own pattern allows (lower
		// case) is unsupported; one it does not, a bad format.
		if strings.ToLower(algorithm) != algorithm {
			return errDigestInvalidFormat
		}
		return errDigestUnsupported
	}
	if len(encoded) != 2*size {
		return errDigestInvalidLength
	}
	if !isLowerHex(encoded) {
		return errDigestInvalidFormat
	}
	return nil
}

// parseCommonName reads s when it is a valid reference of a common shape:
// an optional domain (DNS labels, an optional port), a lower-case path, an
// optional tag and an optional sha256 digest. ok is false for anything
// else, valid or not: ParseNormalizedNamed decides.
func parseCommonName(s string) (domain, path string, ok bool) {
	if len(s) == 64 && isLowerHex(s) {
		return "", "", false // refused as an image ID
	}
	domain, rest := splitDockerDomain(s)
	if !isDomain(domain) {
		return "", "", false
	}
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		digest := rest[at+1:]
		if len(digest) != len("sha256:")+64 || !strings.HasPrefix(digest, "sha256:") || !isLowerHex(digest[len("sha256:"):]) {
			return "", "", false
		}
		rest = rest[:at]
	}
	if colon := strings.IndexByte(rest, ':'); colon >= 0 {
		if !isTag(rest[colon+1:]) {
			return "", "", false
		}
		rest = rest[:colon]
	}
	if len(rest) > repositoryNameTotalLengthMax || !isRemoteName(rest) {
		return "", "", false
	}
	return domain, rest, true
}

// splitDockerDomain is distribution/reference's: what comes before the
// first slash is a domain if it looks like one.
func splitDockerDomain(name string) (domain, remainder string) {
	maybeDomain, maybeRemainder, ok := strings.Cut(name, "/")
	switch {
	case !ok:
		return DockerHub, "library/" + name
	case maybeDomain == "localhost":
		domain, remainder = maybeDomain, maybeRemainder
	case maybeDomain == "index.docker.io":
		domain, remainder = DockerHub, maybeRemainder
	case strings.ContainsAny(maybeDomain, ".:"), strings.ToLower(maybeDomain) != maybeDomain:
		domain, remainder = maybeDomain, maybeRemainder
	default:
		domain, remainder = DockerHub, name
	}
	if domain == DockerHub && !strings.Contains(remainder, "/") {
		remainder = "library/" + remainder
	}
	return domain, remainder
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isDomainAndPort: a domain (isDomain) or an IPv6 address in brackets,
// with an optional port.
func isDomainAndPort(s string) bool {
	if !strings.HasPrefix(s, "[") {
		return isDomain(s)
	}
	end := strings.IndexByte(s, ']')
	if end < 2 {
		return false
	}
	for i := 1; i < end; i++ {
		if c := s[i]; !isHexDigit(c) && c != ':' {
			return false
		}
	}
	port, hasPort := strings.CutPrefix(s[end+1:], ":")
	if !hasPort {
		return end == len(s)-1
	}
	return isDigits(port)
}

// isDomain: DNS-like labels of letters, digits and inner hyphens, and an
// optional port (no IPv6 address: isDomainAndPort reads those).
func isDomain(s string) bool {
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort {
		if !isDigits(port) {
			return false
		}
	}
	if host == "" {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && !isUpper(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

// isTag: [\w][\w.-]{0,127}.
func isTag(s string) bool {
	if len(s) == 0 || len(s) > 128 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !isUpper(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// isRemoteName: path components of lower-case letters and digits, joined
// within a component by ".", "_", "__" or hyphens, separated by "/".
func isRemoteName(s string) bool {
	for component := range strings.SplitSeq(s, "/") {
		if component == "" || !isAlnum(component[0]) || !isAlnum(component[len(component)-1]) {
			return false
		}
		for i := 0; i < len(component); {
			if isAlnum(component[i]) {
				i++
				continue
			}
			// A separator, then an alphanumeric.
			switch sep := component[i]; {
			case sep == '-':
				for i < len(component) && component[i] == '-' {
					i++
				}
			case sep == '_' && component[i+1] == '_':
				i += 2
			case sep == '.' || sep == '_':
				i++
			default:
				return false
			}
			if !isAlnum(component[i]) {
				return false
			}
		}
	}
	return true
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || isUpper(c) }

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isDigits: one digit or more.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
