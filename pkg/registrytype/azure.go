package registrytype

import "regexp"

var azureHost = regexp.MustCompile(`^[a-z0-9]{5,50}\.azurecr\.(io|cn|us)$`)

// Azure is Azure Container Registry: a service principal's client ID (or
// the registry's name) and password.
func Azure() *Type {
	return &Type{
		Name:        "azure",
		Description: "Azure Container Registry",
		URLForm:     "<registry>.azurecr.io (or .azurecr.cn, .azurecr.us; or the glob *.azurecr.io)",
		Host:        globOr(azureHost),
	}
}
