package image

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Location is where a registry serves images: a host (with its port, if
// any) and an optional repository path prefix.
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

// ParseLocation parses a registry URL as admins write it: "quay.io",
// "https://harbor.example.com:8443/team-a/", "https://index.docker.io/v1/".
// The scheme is optional and ignored (connection security is configured
// separately); the host is folded to lower case.
func ParseLocation(raw string) (Location, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return Location{}, errors.New("must not be empty")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Location{}, fmt.Errorf("not a registry address: %w", errors.Unwrap(err))
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return Location{}, fmt.Errorf("scheme %q: must be https:// or http://", u.Scheme)
	case u.User != nil:
		return Location{}, errors.New("must not contain credentials")
	case u.RawQuery != "" || u.Fragment != "":
		return Location{}, errors.New("must not have a query or fragment")
	case u.Host == "":
		return Location{}, errors.New("has no host")
	}
	host := strings.ToLower(u.Host)
	if err := checkHost(host); err != nil {
		return Location{}, err
	}
	prefix := strings.Trim(u.Path, "/")
	if IsDockerHub(host) {
		host = DockerHub
		// Docker's own config files write Docker Hub as https://index.docker.io/v1/.
		if prefix == "v1" || prefix == "v2" {
			prefix = ""
		}
	}
	for _, seg := range strings.Split(prefix, "/") {
		if prefix != "" && !validPathComponent(seg) {
			return Location{}, fmt.Errorf("path %q: each segment must be lower-case letters, digits and separators (. _ -)", prefix)
		}
	}
	return Location{Host: host, Prefix: prefix}, nil
}

func checkHost(host string) error {
	name, port := host, ""
	if strings.HasPrefix(host, "[") {
		end := strings.Index(host, "]")
		if end < 0 {
			return fmt.Errorf("host %q: unclosed IPv6 bracket", host)
		}
		name, port = host[1:end], strings.TrimPrefix(host[end+1:], ":")
		if net.ParseIP(name) == nil {
			return fmt.Errorf("host %q: not an IPv6 address", host)
		}
		if port == "" {
			// The kubelet reads the brackets of a key as a glob class, so a
			// bracketed IPv6 host without a port can never match an image.
			return fmt.Errorf("host %q: an IPv6 registry needs an explicit port (e.g. [%s]:5000) for the kubelet to match its credentials", host, name)
		}
	} else if i := strings.LastIndex(host, ":"); i >= 0 {
		name, port = host[:i], host[i+1:]
	}
	if port != "" || strings.HasSuffix(host, ":") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("host %q: port must be a number from 1 to 65535", host)
		}
	}
	if strings.HasPrefix(host, "[") {
		return nil
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") ||
			strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return fmt.Errorf("host %q: not a valid host name", host)
		}
	}
	return nil
}

// validPathComponent follows the reference grammar for one path component:
// lower-case alphanumerics separated by ".", "_", "__" or runs of "-".
func validPathComponent(s string) bool {
	if s == "" || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) {
			continue
		}
		switch c {
		case '.', '-':
		case '_':
			if i+2 < len(s) && s[i+1] == '_' && s[i+2] == '_' {
				return false
			}
		default:
			return false
		}
		if c == '.' && !isAlnum(s[i+1]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
