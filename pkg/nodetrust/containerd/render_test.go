package containerd

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/pkg/nodetrust"
)

func testCA(t testing.TB) string {
	t.Helper()
	ca, err := certgen.NewCA("regcred-containerd-test", time.Hour)
	require.NoError(t, err)
	return string(ca.CertPEM)
}

func TestRender(t *testing.T) {
	ca := testCA(t)
	for _, tc := range []struct {
		name  string
		host  nodetrust.Host
		hosts string
		ca    bool
	}{
		{
			name: "a CA",
			host: nodetrust.Host{Host: "harbor.internal:8443", CA: ca, Registries: []string{"team-a", "team-b"}},
			hosts: header + "# For registries: team-a, team-b (mode ca).\n" +
				"server = \"https://harbor.internal:8443\"\nca = \"regcred-ca.crt\"\n",
			ca: true,
		},
		{
			name:  "skipped verification",
			host:  nodetrust.Host{Host: "lab.example.com", SkipVerify: true, Registries: []string{"lab"}},
			hosts: header + "# For registries: lab (mode skip-verify).\nserver = \"https://lab.example.com\"\nskip_verify = true\n",
		},
		{
			name:  "plain HTTP",
			host:  nodetrust.Host{Host: "10.0.0.5:5000", PlainHTTP: true, Registries: []string{"plain"}},
			hosts: header + "# For registries: plain (mode plain-http).\nserver = \"http://10.0.0.5:5000\"\n",
		},
		{
			name: "plain HTTP after HTTPS with a CA",
			host: nodetrust.Host{Host: "reg:5000", PlainHTTP: true, CA: ca, Registries: []string{"a", "b"}},
			hosts: header + "# For registries: a, b (mode plain-http).\n" +
				"server = \"http://reg:5000\"\nca = \"regcred-ca.crt\"\n",
			ca: true,
		},
		{
			name:  "Docker Hub",
			host:  nodetrust.Host{Host: "docker.io", SkipVerify: true, Registries: []string{"hub"}},
			hosts: header + "# For registries: hub (mode skip-verify).\nserver = \"https://registry-1.docker.io\"\nskip_verify = true\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hosts, caFile := Render(tc.host)
			assert.Equal(t, tc.hosts, string(hosts))
			if !tc.ca {
				assert.Nil(t, caFile)
				return
			}
			assert.Equal(t, header+ca, string(caFile))
		})
	}
}
