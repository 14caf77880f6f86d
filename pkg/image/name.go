package image

import (
	"strings"

	"github.com/distribution/reference"
)

// parseName reads an image reference as reference.ParseNormalizedNamed
// does (Docker's rules, which the kubelet uses) and returns its domain and
// path. References of the common shapes are read without regular
// expressions, some twenty times faster; anything else goes to
// ParseNormalizedNamed itself. The fuzz test holds the two to the same
// answers.
func parseName(s string) (domain, path string, err error) {
	if d, p, ok := parseCommonName(s); ok {
		return d, p, nil
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", "", err
	}
	return reference.Domain(named), reference.Path(named), nil
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
	if len(rest) > reference.RepositoryNameTotalLengthMax || !isRemoteName(rest) {
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

// isDomain: DNS-like labels of letters, digits and inner hyphens, and an
// optional port (no IPv6 address: ParseNormalizedNamed reads those).
func isDomain(s string) bool {
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort {
		if port == "" {
			return false
		}
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return false
			}
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
