package registrytype

// Other is any registry that docker login accepts a username and
// password (or token) for: Harbor, Nexus, GitLab, a self-hosted Quay or
// distribution. It may be served over plain HTTP (connection: insecure).
func Other() *Type {
	return &Type{
		Name:        "other",
		Description: "any other registry (Harbor, Nexus, GitLab, a self-hosted Quay or distribution)",
		URLForm:     "any host[:port], optionally with a path prefix",
		PlainHTTP:   true,
	}
}
