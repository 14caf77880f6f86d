package registrytype

import (
	"regexp"
	"strings"
)

// azureHost is an ACR login server: the registry's name (5 to 50 letters
// and digits), optionally with the hash of a domain name label scope
// (<name>-<hash>, letters and digits), optionally a regional endpoint
// (<name>.<region>.geo), in Azure's public, China and US Government
// clouds.
var azureHost = regexp.MustCompile(`^[a-z0-9]{5,50}(-[a-z0-9]+)?(\.[a-z0-9]+\.geo)?\.azurecr\.(io|cn|us)$`)

// Azure is Azure Container Registry: a service principal's client ID (or
// the registry's name) and password.
func Azure() *Type {
	return &Type{
		Name:        "azure",
		Description: "Azure Container Registry",
		URLForm:     "<registry>.azurecr.io, with its domain name label hash if any (<registry>-<hash>.azurecr.io) or a regional endpoint (<registry>.<region>.geo.azurecr.io); or .azurecr.cn, .azurecr.us; or a glob such as *.azurecr.io",
		Host:        globOr(isAzureHost),
	}
}

// isAzureHost accepts the login servers azureHost matches whose labels
// are DNS labels (at most 63 characters).
func isAzureHost(h string) bool {
	if !azureHost.MatchString(h) {
		return false
	}
	for l := range strings.SplitSeq(h, ".") {
		if len(l) > 63 {
			return false
		}
	}
	return true
}
