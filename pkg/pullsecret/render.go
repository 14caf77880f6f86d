package pullsecret

import (
	"encoding/base64"
	"encoding/json"

	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/image"
)

// AuthKeys returns the keys under which a registry's credentials are
// written in .dockerconfigjson.
//
// The kubelet matches a key when the port strings are equal, the host has as
// many dot-separated labels as the key, each label matches as a glob, and the
// key's path is a character prefix of the image path. go-containerregistry's
// keychain uses older kubelet code that looks Docker Hub images up as
// index.docker.io/... and has no fallback. So Docker Hub gets two keys:
// "docker.io" serves the kubelet directly, and "*.docker.io" serves
// index.docker.io (the keychain) and registry-1.docker.io (both). Neither is
// "index.docker.io" itself, which the kubelet would also use as a fallback
// for images of other registries such as "localhost/x".
func AuthKeys(loc image.Location) []string {
	suffix := ""
	if loc.Prefix != "" {
		suffix = "/" + loc.Prefix
	}
	if loc.Host == image.DockerHub {
		return []string{image.DockerHub + suffix, "*." + image.DockerHub + suffix}
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

// Render returns the .dockerconfigjson of a registry's credential, in the
// format `kubectl create secret docker-registry` writes.
func Render(loc image.Location, cred credentials.Credential) ([]byte, error) {
	auth := dockerAuth{
		Username: cred.Username,
		Password: cred.Password,
		Auth:     base64.StdEncoding.EncodeToString([]byte(cred.Username + ":" + cred.Password)),
	}
	cfg := dockerConfigJSON{Auths: map[string]dockerAuth{}}
	for _, k := range AuthKeys(loc) {
		cfg.Auths[k] = auth
	}
	return json.Marshal(cfg)
}
