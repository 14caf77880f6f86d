package pullsecret

import (
	"encoding/base64"
	"encoding/json"
	"sort"

	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/image"
)

// ExactSuffix ends the name of a registry's second pull secret, the one a
// Pod gets when one of its images is the repository named exactly like
// the registry's path prefix (see AuthKeys).
const ExactSuffix = ".exact"

// AuthKeys returns the keys under which a registry's credentials are
// written in .dockerconfigjson, chosen for what the kubelet does (README,
// "How images are matched"):
//
//   - The kubelet tries keys in reverse lexical order and matches a key's
//     path as a character prefix of the image's. A path prefix is written
//     with a trailing slash, "host/team-a/": it serves host/team-a/app but
//     never the sibling host/team-ab/app. The repository named exactly
//     like the prefix (host/team-a itself) needs "host/team-a", which would
//     also serve siblings: it goes only into the exact variant (exact
//     true), given only to Pods that pull that repository.
//   - Docker Hub is "docker.io" for the kubelet, "index*.docker.io" for
//     go-containerregistry's keychain (which looks images up as
//     index.docker.io/...) and "registry-1.docker.io" for images written
//     with that host. Never "index.docker.io" itself, which the kubelet
//     would also hand to unrelated images (localhost/x) as a fallback, and
//     no catch-all "*.docker.io".
func AuthKeys(loc image.Location, exact bool) []string {
	suffix := ""
	switch {
	case loc.Prefix != "" && exact:
		suffix = "/" + loc.Prefix
	case loc.Prefix != "":
		suffix = "/" + loc.Prefix + "/"
	}
	if loc.Host == image.DockerHub {
		return []string{image.DockerHub + suffix, "index*." + image.DockerHub + suffix, "registry-1." + image.DockerHub + suffix}
	}
	return []string{loc.Host + suffix}
}

type dockerConfigJSON struct {
	Auths map[string]dockerAuth `json:"auths"`
}

type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// Entry is one credential and the keys it is written under.
type Entry struct {
	Keys       []string
	Credential credentials.Credential
}

// Render returns the .dockerconfigjson of a registry's credentials, in the
// format `kubectl create secret docker-registry` writes.
func Render(entries ...Entry) ([]byte, error) {
	cfg := dockerConfigJSON{Auths: map[string]dockerAuth{}}
	for _, e := range entries {
		auth := dockerAuth{
			Username: e.Credential.Username,
			Password: e.Credential.Password,
			Auth:     base64.StdEncoding.EncodeToString([]byte(e.Credential.Username + ":" + e.Credential.Password)),
		}
		for _, k := range e.Keys {
			cfg.Auths[k] = auth
		}
	}
	return json.Marshal(cfg)
}

// Keys returns the auths keys of a .dockerconfigjson, sorted.
func Keys(data []byte) ([]string, error) {
	var cfg dockerConfigJSON
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(cfg.Auths))
	for k := range cfg.Auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}
