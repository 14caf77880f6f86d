package ecr

import (
	"fmt"
	"regexp"
)

// Host is what an ECR registry host says: the account, the region, and
// which kind of endpoint serves it.
type Host struct {
	Account   string
	Region    string
	FIPS      bool
	DualStack bool
}

var (
	hostRE      = regexp.MustCompile(`^([0-9]{12})\.dkr\.ecr(-fips)?\.([a-z]{2}(?:-[a-z]+)+-[0-9]+)\.amazonaws\.com(?:\.cn)?$`)
	dualStackRE = regexp.MustCompile(`^([0-9]{12})\.dkr-ecr(-fips)?\.([a-z]{2}(?:-[a-z]+)+-[0-9]+)\.on\.aws$`)
)

// ParseHost reads an ECR registry host.
func ParseHost(host string) (Host, error) {
	if m := hostRE.FindStringSubmatch(host); m != nil {
		return Host{Account: m[1], FIPS: m[2] != "", Region: m[3]}, nil
	}
	if m := dualStackRE.FindStringSubmatch(host); m != nil {
		return Host{Account: m[1], FIPS: m[2] != "", Region: m[3], DualStack: true}, nil
	}
	return Host{}, fmt.Errorf("%q is not an ECR registry host: must be <12-digit account>.dkr.ecr.<region>.amazonaws.com", host)
}
