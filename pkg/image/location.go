package image

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Location is where a registry serves images: a host (with its port, if
// any) and an optional repository path prefix. The host may be a glob, as
// the kubelet reads credential keys: each dot-separated label may hold `*`
// (`*.example.com`, `reg-*.example.com`, `*.dkr.ecr.*.amazonaws.com`).
type Location struct {
	// Host is lower case; Docker Hub is always "docker.io".
	Host string
	// Prefix is the repository path prefix without surrounding slashes, or "".
	Prefix string
}

// String returns the location as host[/prefix].
func (l Location) String() string {
	if l.Prefix == "" {
		return l.Host
	}
	return l.Host + "/" + l.Prefix
}

// Glob reports whether the host is a glob.
func (l Location) Glob() bool { return strings.Contains(l.Host, "*") }

// ServesHost reports whether an image host is the location's, by the
// kubelet's rules: the same port, as many labels, each label matching as a
// case-sensitive glob.
func (l Location) ServesHost(host string) bool {
	if !l.Glob() {
		return host == l.Host
	}
	return hostsMatch(l.Host, host)
}

// ServesPath reports whether a repository path is under the prefix: the
// repository of the prefix's name or one below it, never a sibling that
// merely starts with the same characters.
func (l Location) ServesPath(p string) bool {
	return l.Prefix == "" || p == l.Prefix || strings.HasPrefix(p, l.Prefix+"/")
}

// Serves reports whether the location serves ref.
func (l Location) Serves(ref Ref) bool { return l.ServesHost(ref.Host) && l.ServesPath(ref.Path) }

// ParseLocation parses a registry URL as admins write it: "quay.io",
// "https://harbor.example.com:8443/team-a/", "https://index.docker.io/v1/",
// "*.example.com". The scheme is optional and ignored (connection security
// is configured separately); the host is folded to lower case. A path that
// starts with /v1/ or /v2/ loses it, as the kubelet reads credential keys;
// a prefix that would still start with v1/ or v2/ is refused (the kubelet
// would strip that too from its key), and each of its segments must be a
// path component of the image reference grammar.
// A URL with credentials (user:password@, token@) is refused before any
// other check, and no error quotes them.
func ParseLocation(raw string) (Location, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return Location{}, errors.New("must not be empty")
	}
	// Userinfo is refused before any other check, as every later message
	// may quote the host, the path or the scheme, and a user, password or
	// token before an @ may hold any of their separators (:, /, %). A
	// registry URL has no other use for @: its path is a repository name.
	if strings.Contains(s, "@") {
		return Location{}, errors.New(`must not contain credentials (an "@"): credentials go in their own fields`)
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	scheme, rest, _ := strings.Cut(s, "://")
	if scheme != "https" && scheme != "http" {
		return Location{}, fmt.Errorf("scheme %q: must be https:// or http://", scheme)
	}
	hostPart, pathPart, _ := strings.Cut(rest, "/")
	host := strings.ToLower(hostPart)
	if strings.Contains(host, "*") {
		// url.Parse takes * in a host; check it on its own first.
		if err := checkGlobHost(host); err != nil {
			return Location{}, err
		}
		s = scheme + "://" + strings.ReplaceAll(hostPart, "*", "x") + "/" + pathPart
	}
	u, err := url.Parse(s)
	if err != nil {
		return Location{}, fmt.Errorf("not a registry address: %w", errors.Unwrap(err))
	}
	switch {
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(pathPart, "?#"):
		return Location{}, errors.New("must not have a query or fragment")
	case u.Host == "":
		return Location{}, errors.New("has no host")
	}
	if !strings.Contains(host, "*") {
		if err := checkHost(host); err != nil {
			return Location{}, err
		}
	}
	p := "/" + pathPart
	// The kubelet strips a leading /v1/ or /v2/ from a key's path (Docker's
	// config files write Docker Hub as https://index.docker.io/v1/).
	if strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/v2/") {
		p = p[3:]
	}
	prefix := strings.Trim(p, "/")
	switch first, _, nested := strings.Cut(prefix, "/"); {
	case (first == "v1" || first == "v2") && !nested:
		return Location{}, fmt.Errorf("path %q: the kubelet reads it as a repository named %s, not as the registry API's version: write %s (no path), or %s/%s/ for the API", "/"+pathPart, prefix, host, host, prefix)
	case first == "v1" || first == "v2":
		// The key written for it, host/v2/app/, would lose its v2/ too:
		// the kubelet would read host/app/ and hand the credentials to
		// other repositories.
		return Location{}, fmt.Errorf("path %q: a repository prefix cannot start with %s/ (here %q): the kubelet strips a leading /v1/ or /v2/ from a credential key's path as the registry API's version, so it would read the key for %s/%s as %s/%s; serve the whole host (%s) instead", "/"+pathPart, first, prefix, host, prefix, host, strings.TrimPrefix(prefix, first+"/"), host)
	}
	if IsDockerHub(host) {
		host = DockerHub
	}
	if prefix != "" {
		for seg := range strings.SplitSeq(prefix, "/") {
			if !validPathComponent(seg) {
				return Location{}, fmt.Errorf("path %q: each segment must be lower-case letters and digits, joined by one '.', one or two '_', or any number of '-' (the image reference grammar; no image could name %q)", prefix, seg)
			}
		}
	}
	return Location{Host: host, Prefix: path.Clean("/" + prefix)[1:]}, nil
}

func checkHost(host string) error {
	name, port := host, ""
	if strings.HasPrefix(host, "[") {
		end := strings.Index(host, "]")
		if end < 0 {
			return fmt.Errorf("host %q: unclosed IPv6 bracket", host)
		}
		name, port = host[1:end], strings.TrimPrefix(host[end+1:], ":")
		if ip := net.ParseIP(name); ip == nil || strings.Trim(name, "0123456789abcdefABCDEF:") != "" {
			// The image reference grammar allows only hex digits and ':'
			// between the brackets: no image could name [::ffff:10.0.0.1].
			return fmt.Errorf("host %q: not an IPv6 address as image references write one (hex digits and ':' only)", host)
		}
		if port == "" {
			// The kubelet reads the brackets of a key as a glob class, so a
			// bracketed IPv6 host without a port can never match an image.
			return fmt.Errorf("host %q: an IPv6 registry needs an explicit port (e.g. [%s]:5000) for the kubelet to match its credentials", host, name)
		}
	} else if i := strings.LastIndex(host, ":"); i >= 0 {
		name, port = host[:i], host[i+1:]
	}
	if err := checkPort(host, port); err != nil {
		return err
	}
	if strings.HasPrefix(host, "[") {
		return nil
	}
	for _, label := range strings.Split(name, ".") {
		if !validLabel(label, false) {
			return fmt.Errorf("host %q: not a valid host name", host)
		}
	}
	return nil
}

// checkGlobHost checks a host with * in it: a glob the kubelet can match.
func checkGlobHost(host string) error {
	name, port, hasPort := strings.Cut(host, ":")
	if strings.HasPrefix(host, "[") {
		return fmt.Errorf("host %q: an IPv6 address cannot be a glob", host)
	}
	if hasPort {
		if strings.Contains(port, "*") {
			return fmt.Errorf("host %q: a port cannot be a glob (the kubelet compares ports exactly)", host)
		}
		if err := checkPort(host, port); err != nil {
			return err
		}
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return fmt.Errorf("host %q: a glob host needs at least two labels (the kubelet matches label by label, as many as the image's host has)", host)
	}
	for _, label := range labels {
		if !validLabel(label, true) {
			return fmt.Errorf("host %q: each label must be letters, digits, '-' and the glob '*' (no '?' or '[': they do not survive in a credential key)", host)
		}
	}
	return nil
}

func checkPort(host, port string) error {
	if port != "" || strings.HasSuffix(host, ":") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("host %q: port must be a number from 1 to 65535", host)
		}
	}
	return nil
}

// validLabel checks one host label; with glob, '*' is allowed too.
func validLabel(label string, glob bool) bool {
	chars := "abcdefghijklmnopqrstuvwxyz0123456789-"
	if glob {
		chars += "*"
	}
	return label != "" && len(label) <= 63 && !strings.HasPrefix(label, "-") && !strings.HasSuffix(label, "-") &&
		strings.Trim(label, chars) == ""
}

// validPathComponent follows the reference grammar for one path component
// exactly, as image references are parsed (isRemoteName): lower-case
// alphanumerics separated by one ".", one "_", "__", or one or more "-".
func validPathComponent(s string) bool {
	return !strings.Contains(s, "/") && isRemoteName(s)
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
