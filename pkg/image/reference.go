package image

import (
	"fmt"
	"strings"
)

// DockerHub is the canonical host of Docker Hub.
const DockerHub = "docker.io"

// dockerHubAliases are the hosts that name Docker Hub. The kubelet rewrites
// only index.docker.io; registry-1.docker.io is the same registry too.
var dockerHubAliases = map[string]bool{
	DockerHub:              true,
	"index.docker.io":      true,
	"registry-1.docker.io": true,
}

// Ref is an image reference reduced to what decides its credentials: the
// registry host and the repository path. Tags and digests are dropped.
type Ref struct {
	// Host is the registry host with its port, as written in the image
	// except that Docker Hub's aliases are folded into "docker.io".
	Host string
	// Path is the repository path, e.g. "library/nginx".
	Path string
}

// String returns Host/Path.
func (r Ref) String() string { return r.Host + "/" + r.Path }

// Parse parses an image reference with the rules the kubelet uses (Docker's
// normalised names): "nginx" is docker.io/library/nginx.
func Parse(image string) (Ref, error) {
	host, path, err := parseName(image)
	if err != nil {
		return Ref{}, fmt.Errorf("image %q: %w", image, err)
	}
	if dockerHubAliases[host] {
		host = DockerHub
	}
	return Ref{Host: host, Path: path}, nil
}

// IsDockerHub reports whether host names Docker Hub.
func IsDockerHub(host string) bool { return dockerHubAliases[strings.ToLower(host)] }
