package image

import (
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
)

// This file is the kubelet's credential lookup as a pure function
// (k8s.io/kubernetes pkg/credentialprovider, BasicDockerKeyring, v1.37.2),
// so that regcred can tell, for the secrets a Pod carries, which credential
// the kubelet will try first for each of its images. test/kubelet checks it
// against the kubelet's own code.

// defaultRegistryHost is the key whose credentials the kubelet falls back
// to for images that look like Docker Hub's and match no key.
const defaultRegistryHost = "index.docker.io"

// Credential is one credential of a keyring: Key is the auths key as
// written, Source says where it came from (a secret, a registry).
type Credential struct {
	Key    string
	Source string
}

// Keyring is the kubelet's view of a Pod's pull secrets: every auths key,
// tried in reverse lexical order, the credentials of one key in the order
// of the secrets.
type Keyring struct {
	index []string
	creds map[string][]Credential
}

// Add adds the auths keys of one secret, in the Pod's imagePullSecrets
// order, as the kubelet does: a scheme is dropped, a leading /v1/ or /v2/ of
// the path too, and a key that is not a URL is ignored.
func (k *Keyring) Add(source string, keys []string) {
	if k.creds == nil {
		k.creds = map[string][]Credential{}
	}
	for _, raw := range keys {
		key, ok := normalizeKey(raw)
		if !ok {
			continue
		}
		if _, seen := k.creds[key]; !seen {
			k.index = append(k.index, key)
		}
		k.creds[key] = append(k.creds[key], Credential{Key: raw, Source: source})
	}
	sort.Sort(sort.Reverse(sort.StringSlice(k.index)))
}

// normalizeKey reads an auths key as the kubelet's keyring does.
func normalizeKey(raw string) (string, bool) {
	v := raw
	if !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://") {
		v = "https://" + v
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", false
	}
	p := u.Path
	if strings.HasPrefix(p, "/v2/") || strings.HasPrefix(p, "/v1/") {
		p = p[3:]
	}
	if p != "" && p != "/" {
		return u.Host + p, true
	}
	return u.Host, true
}

// Lookup returns the credentials the kubelet tries for an image, in order;
// none means it pulls anonymously. ok is false when the image is not a
// valid reference (the kubelet does not pull it at all).
func (k *Keyring) Lookup(image string) (creds []Credential, ok bool) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil, false
	}
	target := named.Name()
	for _, key := range k.index {
		if urlsMatch(key, target) {
			creds = append(creds, k.creds[key]...)
		}
	}
	if len(creds) > 0 {
		return creds, true
	}
	if isDefaultRegistryMatch(target) {
		return slices.Clone(k.creds[defaultRegistryHost]), true
	}
	return nil, true
}

// First returns the credential the kubelet tries first for an image, if any.
func (k *Keyring) First(image string) (Credential, bool) {
	creds, ok := k.Lookup(image)
	if !ok || len(creds) == 0 {
		return Credential{}, false
	}
	return creds[0], true
}

// urlsMatch is the kubelet's URLsMatchStr: the same port, as many host
// labels, each label a case-sensitive glob, the key's path a character
// prefix of the target's.
func urlsMatch(glob, target string) bool {
	g, err := url.Parse("https://" + glob)
	if err != nil {
		return false
	}
	t, err := url.Parse("https://" + target)
	if err != nil {
		return false
	}
	if !strings.HasPrefix(t.Path, g.Path) {
		return false
	}
	return hostsMatch(g.Host, t.Host)
}

// hostsMatch matches an image host against a key's host, label by label.
func hostsMatch(glob, host string) bool {
	gParts, gPort := splitHost(glob)
	tParts, tPort := splitHost(host)
	if gPort != tPort || len(gParts) != len(tParts) {
		return false
	}
	for i, g := range gParts {
		if ok, err := filepath.Match(g, tParts[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

func splitHost(hostport string) ([]string, string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	return strings.Split(host, "."), port
}

// isDefaultRegistryMatch is the kubelet's test for an image that may use
// Docker Hub's credentials when no key matched.
func isDefaultRegistryMatch(image string) bool {
	parts := strings.SplitN(image, "/", 2)
	if len(parts[0]) == 0 {
		return false
	}
	if len(parts) == 1 {
		return true
	}
	if parts[0] == "docker.io" || parts[0] == "index.docker.io" {
		return true
	}
	return !strings.ContainsAny(parts[0], ".:")
}
