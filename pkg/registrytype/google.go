package registrytype

import (
	"regexp"
	"strings"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
)

// The usernames Google's registries accept with a service-account key.
const (
	JSONKeyUser       = "_json_key"
	JSONKeyBase64User = "_json_key_base64"
)

var (
	artifactHost = regexp.MustCompile(`^[a-z0-9-]+-docker\.pkg\.dev$`)
	gcrHost      = regexp.MustCompile(`^([a-z]+\.)?gcr\.io$`)
)

// ArtifactRegistry is Google Artifact Registry: a service-account JSON key
// as pasted (regcred normalises it), user _json_key or _json_key_base64.
func ArtifactRegistry() *Type {
	return google("artifact-registry", "Google Artifact Registry",
		"<region>-docker.pkg.dev (or the glob *-docker.pkg.dev), optionally with /<project>[/<repository>]", globOr(artifactHost.MatchString))
}

// GCR is Google Container Registry, with the same credentials as Artifact
// Registry.
func GCR() *Type {
	return google("gcr", "Google Container Registry", "gcr.io or a regional <region>.gcr.io (or the glob *.gcr.io)", globOr(gcrHost.MatchString))
}

func google(name, description, form string, host func(string) bool) *Type {
	t := &Type{
		Name:            config.RegistryType(name),
		Description:     description,
		URLForm:         form,
		Host:            host,
		DefaultUsername: JSONKeyUser,
		Usernames:       []string{JSONKeyUser, JSONKeyBase64User},
	}
	t.NewProvider = func(spec credentials.Spec) (credentials.Provider, error) {
		user := strings.TrimSpace(spec.Values["username"])
		if err := t.usernameError(user); err != nil {
			return nil, &credentials.FieldError{Field: "username", Err: err}
		}
		key, err := credentials.NormalizeServiceAccountKey(spec.Values["password"], user == JSONKeyBase64User)
		if err != nil {
			return nil, &credentials.FieldError{Field: "password", Err: err}
		}
		return credentials.Static{Username: user, Password: key}, nil
	}
	return t
}
