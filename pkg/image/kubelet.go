package image

import (
	"net"
	neturl "net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
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
	index  []string
	keys   map[string]*ringKey
	sorted bool
}

// ringKey is one key of a keyring and its credentials.
type ringKey struct {
	glob  keyURL
	creds []Credential
}

// Key is an auths key read as the kubelet reads it (ReadKeys).
type Key struct {
	raw, normalized string
	glob            keyURL
}

// keyURL is a key or an image name read as the kubelet's URLsMatchStr
// reads it: with url.Parse after "https://"; ok is false when that fails.
type keyURL struct {
	ok     bool
	path   string
	labels []string
	port   string
}

func parseURL(s string) keyURL {
	u, err := neturl.Parse("https://" + s)
	if err != nil {
		return keyURL{}
	}
	labels, port := splitHost(u.Host)
	return keyURL{ok: true, path: u.Path, labels: labels, port: port}
}

// ReadKeys reads a secret's auths keys once, as Add would: a scheme is
// dropped, a leading /v1/ or /v2/ of the path too, and a key that is not a
// URL is left out. Keys read once serve many keyrings (AddKeys).
func ReadKeys(raw []string) []Key {
	out := make([]Key, 0, len(raw))
	for _, r := range raw {
		if n, ok := normalizeKey(r); ok {
			out = append(out, Key{raw: r, normalized: n, glob: parseURL(n)})
		}
	}
	return out
}

// Add adds the auths keys of one secret, in the Pod's imagePullSecrets
// order, as the kubelet does (ReadKeys).
func (k *Keyring) Add(source string, keys []string) { k.AddKeys(source, ReadKeys(keys)) }

// AddKeys adds keys read with ReadKeys, as Add.
func (k *Keyring) AddKeys(source string, keys []Key) {
	if k.keys == nil {
		k.keys = map[string]*ringKey{}
	}
	for _, key := range keys {
		e := k.keys[key.normalized]
		if e == nil {
			e = &ringKey{glob: key.glob}
			k.keys[key.normalized] = e
			k.index = append(k.index, key.normalized)
			k.sorted = false
		}
		e.creds = append(e.creds, Credential{Key: key.raw, Source: source})
	}
}

// normalizeKey reads an auths key as the kubelet's keyring does.
func normalizeKey(raw string) (string, bool) {
	v := raw
	if !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://") {
		v = "https://" + v
	}
	u, err := neturl.Parse(v)
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
	var t keyURL
	domain, path, common := parseCommonName(image)
	if common {
		// What url.Parse reads of a name of that shape.
		labels, port := splitHost(domain)
		t = keyURL{ok: true, path: "/" + path, labels: labels, port: port}
	} else {
		var err error
		if domain, path, err = parseNormalized(image); err != nil {
			return nil, false
		}
		t = parseURL(domain + "/" + path)
	}
	target := domain + "/" + path
	if !k.sorted {
		sort.Sort(sort.Reverse(sort.StringSlice(k.index)))
		k.sorted = true
	}
	for _, key := range k.index {
		if e := k.keys[key]; urlsMatch(e.glob, t) {
			creds = append(creds, e.creds...)
		}
	}
	if len(creds) > 0 {
		return creds, true
	}
	if isDefaultRegistryMatch(target) {
		if e := k.keys[defaultRegistryHost]; e != nil {
			return slices.Clone(e.creds), true
		}
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
func urlsMatch(glob, target keyURL) bool {
	if !glob.ok || !target.ok || !strings.HasPrefix(target.path, glob.path) {
		return false
	}
	return labelsMatch(glob.labels, glob.port, target.labels, target.port)
}

// hostsMatch matches an image host against a key's host, label by label.
func hostsMatch(glob, host string) bool {
	gLabels, gPort := splitHost(glob)
	tLabels, tPort := splitHost(host)
	return labelsMatch(gLabels, gPort, tLabels, tPort)
}

func labelsMatch(glob []string, globPort string, host []string, hostPort string) bool {
	if globPort != hostPort || len(glob) != len(host) {
		return false
	}
	for i, g := range glob {
		if ok, err := filepath.Match(g, host[i]); err != nil || !ok {
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
