package ecr

import (
	"net/url"
	"strings"
	"testing"

	"github.com/awslabs/amazon-ecr-credential-helper/ecr-login/api"
	"github.com/stretchr/testify/assert"
)

// helperParses is the ECR credential helper's answer for a host
// (docker-credential-ecr-login's parser), which ParseHost must give too.
func helperParses(host string) (Host, bool) {
	reg, err := api.ExtractRegistry(host)
	if err != nil || reg.Service != api.ServiceECR {
		return Host{}, false
	}
	return Host{
		Account:   reg.ID,
		Region:    reg.Region,
		FIPS:      reg.FIPS,
		DualStack: strings.HasSuffix(host, ".on.aws") || strings.HasSuffix(host, ".on.amazonwebservices.com.cn"),
	}, true
}

// onlyAHost says whether the helper reads s as a host and nothing else:
// the helper parses a URL and takes its host name, where regcred is given
// registry hosts and refuses the rest (a port, a path, user info).
func onlyAHost(s string) bool {
	u, err := url.Parse("https://" + s)
	return err == nil && u.Hostname() == s && u.Host == s
}

var hostSeeds = []string{
	"123456789012.dkr.ecr.eu-west-1.amazonaws.com",
	"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
	"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
	"123456789012.dkr-ecr.ap-southeast-2.on.aws",
	"123456789012.dkr-ecr-fips.us-east-1.on.aws",
	"123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
	"123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
	"123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
	"123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
	"123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
	"123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
	// The separators the helper's pattern allows in any combination.
	"123456789012.dkr-ecr.eu-west-1.amazonaws.com",
	"123456789012.dkr.ecr.eu-west-1.on.aws",
	"123456789012.dkr.ecr.EU_West_1.amazonaws.com",
	"123456789012.dkr.ecr.9.amazonaws.com",
	// Not ECR hosts.
	"12345678901.dkr.ecr.eu-west-1.amazonaws.com",
	"1234567890123.dkr.ecr.eu-west-1.amazonaws.com",
	"12345678901a.dkr.ecr.eu-west-1.amazonaws.com",
	"123456789012.dkr.ecr.amazonaws.com",
	"123456789012.dkr.ecr..amazonaws.com",
	"123456789012.dkr.ecr.-eu.amazonaws.com",
	"123456789012.dkr.ecr._eu.amazonaws.com",
	"123456789012.dkr.ecr.eu.west.amazonaws.com",
	"123456789012.dkr.ecr-fipsx.eu-west-1.amazonaws.com",
	"123456789012.dkr.ecrx.eu-west-1.amazonaws.com",
	"123456789012.dkr.ecrfips.eu-west-1.amazonaws.com",
	"123456789012.dkr.ecr.eu-wést-1.amazonaws.com",
	"１２３４５６７８９０１２.dkr.ecr.eu-west-1.amazonaws.com",
	"123456789012.dkr_ecr.eu-west-1.amazonaws.com",
	"123456789012.DKR.ECR.eu-west-1.amazonaws.com",
	"123456789012.dkr.ecr.eu-west-1.amazonaws.com.",
	"123456789012.dkr.ecr.eu-west-1.amazonaws.org",
	"123456789012.dkr.ecr.eu-west-1.example.com",
	"123456789012.dkr.ecr.eu-west-1",
	"123456789012.dkr.ecr",
	"123456789012",
	"public.ecr.aws",
	"",
	".dkr.ecr.eu-west-1.amazonaws.com",
	"x.123456789012.dkr.ecr.eu-west-1.amazonaws.com",
}

func TestParseHostAgreesWithTheCredentialHelper(t *testing.T) {
	accepted := 0
	for _, host := range hostSeeds {
		want, ok := helperParses(host)
		got, err := ParseHost(host)
		assert.Equal(t, ok, err == nil, "%q: the helper accepts it: %v, regcred: %v", host, ok, err)
		assert.Equal(t, want, got, host)
		if ok {
			accepted++
		}
	}
	assert.Equal(t, 15, accepted, "the seeds hold hosts both accept")
}

func FuzzParseHostAgreesWithTheCredentialHelper(f *testing.F) {
	for _, host := range hostSeeds {
		f.Add(host)
	}
	f.Fuzz(func(t *testing.T, host string) {
		got, err := ParseHost(host)
		if !onlyAHost(host) {
			if err == nil {
				t.Errorf("%q is not a host alone, and was accepted as %+v", host, got)
			}
			return
		}
		want, ok := helperParses(host)
		if ok != (err == nil) || want != got {
			t.Errorf("%q: the helper reads %+v (%v), regcred %+v (%v)", host, want, ok, got, err)
		}
	})
}
