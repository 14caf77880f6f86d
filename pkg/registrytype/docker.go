package registrytype

import "github.com/regcred/regcred/pkg/image"

// Docker is Docker Hub: username and password or, better, an access token.
func Docker() *Type {
	return &Type{
		Name:        "docker",
		Description: "Docker Hub",
		URLForm:     "docker.io, optionally with an organisation path (docker.io/myorg)",
		Host:        hostIs(image.DockerHub),
		// docker.io serves no registry API; its login is on registry-1.
		LoginHost: func(image.Location) string { return "registry-1.docker.io" },
	}
}
