package ociimage

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDockerfileBuildsTheSameImage keeps the Dockerfile in step with make
// image, the reference: the same build flags, base, files, user,
// entrypoint and labels.
func TestDockerfileBuildsTheSameImage(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	dockerfile := string(data)
	makefile, err := os.ReadFile("../../Makefile")
	require.NoError(t, err)

	for _, flags := range []string{
		"CGO_ENABLED=0", "GOAMD64=v1", "GOARM64=v8.0", "go build -trimpath -buildvcs=false",
	} {
		assert.Contains(t, dockerfile, flags)
		assert.Contains(t, string(makefile), "GOBUILD := "+"CGO_ENABLED=0 GOAMD64=v1 GOARM64=v8.0 go build -trimpath -buildvcs=false", flags)
	}
	assert.Contains(t, dockerfile, `-ldflags "-s -w -X github.com/regcred/regcred/pkg/cli.Version=${VERSION}"`)
	assert.Contains(t, string(makefile), "LDFLAGS := -s -w -X github.com/regcred/regcred/pkg/cli.Version=$(VERSION)")

	assert.Regexp(t, regexp.MustCompile(`(?m)^FROM scratch$`), dockerfile, "no base image")
	assert.Contains(t, dockerfile, "COPY --from=build /out/regcred "+BinaryPath+"\n")
	assert.Contains(t, dockerfile, "COPY --from=build /out/ca-certificates.crt "+CABundlePath+"\n")
	assert.Contains(t, dockerfile, "go run ./cmd/regcred-image ca-bundle > /out/ca-certificates.crt", "the same CA bundle")
	assert.Regexp(t, regexp.MustCompile(`(?m)^USER `+User+`$`), dockerfile)
	assert.Regexp(t, regexp.MustCompile(`(?m)^ENTRYPOINT \["`+BinaryPath+`"\]$`), dockerfile)

	m := Metadata{Version: "${VERSION}", Revision: "${REVISION}", Source: "https://github.com/regcred/regcred"}
	for key, value := range m.Labels() {
		if key == LabelCreated {
			value = "${CREATED}"
		}
		assert.Contains(t, dockerfile, key+`="`+value+`"`, "label %s", key)
	}
	assert.Contains(t, string(makefile), "SOURCE_URL := "+m.Source)
}
