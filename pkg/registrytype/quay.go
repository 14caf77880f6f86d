package registrytype

// Quay is quay.io: a user or robot account (org+robot) and its password
// or token. A self-hosted Quay is type other.
func Quay() *Type {
	return &Type{
		Name:        "quay",
		Description: "Quay.io",
		URLForm:     "quay.io (for a self-hosted Quay, use type other)",
		Host:        hostIs("quay.io"),
	}
}
