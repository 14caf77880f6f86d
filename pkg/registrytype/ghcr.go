package registrytype

// GHCR is GitHub's container registry, ghcr.io: a GitHub user name and a
// personal access token (classic, with read:packages) or a fine-grained
// token with read access to the packages.
func GHCR() *Type {
	return &Type{
		Name:        "ghcr",
		Description: "GitHub Container Registry",
		URLForm:     "ghcr.io, optionally with an owner path (ghcr.io/my-org)",
		Host:        hostIs("ghcr.io"),
	}
}
