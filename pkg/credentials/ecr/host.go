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

// regionLabel returns the position of the region in an ECR host's labels:
// <account>.dkr.ecr[-fips].<region>.… or <account>.dkr-ecr[-fips].<region>.on.aws.
func regionLabel(labels []string) int {
	if len(labels) > 1 && labels[1] == "dkr" {
		return 3
	}
	return 2
}

// GlobForm says which globs ParseGlob accepts, for error messages.
const GlobForm = "an ECR host whose account and/or region label is *, such as *.dkr.ecr.*.amazonaws.com or 123456789012.dkr.ecr.*.amazonaws.com"

// ParseGlob checks an ECR registry host with * for its account or region,
// as the kubelet's ECR credential provider configuration writes them. It
// returns an example of the hosts it serves.
func ParseGlob(glob string) (Host, error) {
	labels := strings.Split(glob, ".")
	sample := make([]string, len(labels))
	for i, l := range labels {
		switch {
		case l == "*" && i == 0:
			sample[i] = "123456789012"
		case l == "*" && i == regionLabel(labels):
			sample[i] = "us-east-1"
		case strings.Contains(l, "*"):
			return Host{}, fmt.Errorf("%q is not an ECR host glob: must be %s", glob, GlobForm)
		default:
			sample[i] = l
		}
	}
	h, err := ParseHost(strings.Join(sample, "."))
	if err != nil {
		return Host{}, fmt.Errorf("%q is not an ECR host glob: must be %s", glob, GlobForm)
	}
	return h, nil
}

// Pattern returns the key pattern of an image host under a glob: the glob
// with its region label set to the host's, so that one token (a region's)
// serves every account it stands for.
func Pattern(glob, host string) (string, Host, error) {
	h, err := ParseHost(host)
	if err != nil {
		return "", Host{}, err
	}
	labels := strings.Split(glob, ".")
	if len(labels) <= regionLabel(labels) {
		return "", Host{}, fmt.Errorf("%q is not an ECR host glob", glob)
	}
	labels[regionLabel(labels)] = h.Region
	return strings.Join(labels, "."), h, nil
}
