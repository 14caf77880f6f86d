package containerd

import (
	"fmt"
	"strings"

	"github.com/regcred/regcred/pkg/image"
	"github.com/regcred/regcred/pkg/nodetrust"
)

// The files regcred writes in a host's directory.
const (
	HostsFile = "hosts.toml"
	CAFile    = "regcred-ca.crt"
)

// Marker starts every file regcred writes: a file without it is not
// regcred's, and is never changed or removed.
const Marker = "# Written by regcred's node agent (nodetrust.regcred.io)."

// header follows the marker: what the file is, for whoever reads it on
// the node.
const header = Marker + `
# regcred rewrites this directory's hosts.toml and regcred-ca.crt as its
# config says, and removes them when no registry of this host needs them.
# To keep hosts.toml as your own, delete its first line: regcred then
# leaves both alone (and reports a conflict).
`

// Server is the address containerd pulls a host's images from: the host
// itself (Docker Hub's is registry-1.docker.io), over HTTP or HTTPS.
func Server(h nodetrust.Host) string {
	scheme, addr := "https", h.Host
	if h.PlainHTTP {
		scheme = "http"
	}
	if addr == image.DockerHub {
		addr = "registry-1.docker.io"
	}
	return scheme + "://" + addr
}

// Render returns the host's hosts.toml, and its CA file (nil when it has
// no CA).
//
// The file sets the server alone, no [host] mirror: containerd tries each
// host of a hosts.toml in turn, and the server would be tried a second
// time after every failure. Its capabilities are containerd's defaults,
// as without the file: only TLS changes. The CA is named relative to the
// file's directory, which containerd resolves against the directory it
// read the file from: the same file is right whatever path the directory
// has in the agent's container or on the node.
func Render(h nodetrust.Host) (hosts, ca []byte) {
	var b strings.Builder
	b.WriteString(header)
	fmt.Fprintf(&b, "# For registries: %s (mode %s).\n", strings.Join(h.Registries, ", "), h.Mode())
	fmt.Fprintf(&b, "server = %q\n", Server(h))
	if h.CA != "" {
		fmt.Fprintf(&b, "ca = %q\n", CAFile)
		ca = []byte(header + h.CA)
	}
	if h.SkipVerify {
		b.WriteString("skip_verify = true\n")
	}
	return []byte(b.String()), ca
}
