package image

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct {
		raw, want, err string
	}{
		{raw: "docker.io", want: "docker.io"},
		{raw: "https://index.docker.io/v1/", want: "docker.io"},
		{raw: "registry-1.docker.io", want: "docker.io"},
		{raw: "Quay.IO", want: "quay.io"},
		{raw: "https://harbor.example.com:8443/team-a/", want: "harbor.example.com:8443/team-a"},
		{raw: "http://reg.local:5000", want: "reg.local:5000"},
		{raw: "[::1]:5000", want: "[::1]:5000"},
		{raw: "  gcr.io  ", want: "gcr.io"},
		{raw: "", err: "must not be empty"},
		{raw: "ftp://x.io", err: `scheme "ftp"`},
		{raw: "https://u:p@x.io", err: "must not contain credentials"},
		{raw: "[::1]", err: "needs an explicit port"},
		{raw: "reg:99999", err: "port must be"},
		{raw: "reg:", err: "port must be"},
		{raw: "bad_host.io", err: "not a valid host name"},
		{raw: "harbor.io/Team", err: "each segment"},
		{raw: "harbor.io/a//b", err: "each segment"},
		{raw: "x.io?q=1", err: "query"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			loc, err := ParseLocation(tc.raw)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, tc.want, loc.String())
		})
	}
}
