package ecr

import (
	"fmt"
	"strings"

	"github.com/awslabs/amazon-ecr-credential-helper/ecr-login/api"
)

// Host is what an ECR registry host says: the account, the region, and
// which kind of endpoint serves it.
type Host struct {
	Account   string
	Region    string
	FIPS      bool
	DualStack bool
}

// HostForm says which hosts ParseHost accepts, for error messages.
const HostForm = "<12-digit account>.dkr.ecr.<region>.amazonaws.com, or the same in another AWS partition (amazonaws.com.cn, amazonaws.eu, c2s.ic.gov, sc2s.sgov.gov, cloud.adc-e.uk, csp.hci.ic.gov), dkr.ecr-fips, or dual-stack <account>.dkr-ecr.<region>.on.aws"

// ParseHost reads an ECR registry host with the ECR credential helper's
// own parser, so that every partition and endpoint form it knows is
// accepted here too.
func ParseHost(host string) (Host, error) {
	reg, err := api.ExtractRegistry(host)
	if err != nil || reg.Service != api.ServiceECR || strings.ContainsAny(host, ":/") {
		return Host{}, fmt.Errorf("%q is not an ECR registry host: must be %s", host, HostForm)
	}
	return Host{
		Account:   reg.ID,
		Region:    reg.Region,
		FIPS:      reg.FIPS,
		DualStack: strings.HasSuffix(host, ".on.aws") || strings.HasSuffix(host, ".on.amazonwebservices.com.cn"),
	}, nil
}
