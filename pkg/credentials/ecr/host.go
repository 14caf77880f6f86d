package ecr

import (
	"fmt"
	"strings"
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
const HostForm = "<12-digit account>.dkr.ecr.<region>.amazonaws.com, or the same in another AWS partition (amazonaws.com.cn, amazonaws.eu, c2s.ic.gov, sc2s.sgov.gov, cloud.adc-e.uk, csp.hci.ic.gov), dkr.ecr-fips, or dual-stack <account>.dkr-ecr.<region>.on.aws (on.amazonwebservices.com.cn in China)"

// partitions are the DNS suffixes of ECR registry hosts in every AWS
// partition, and of the dual-stack endpoints (on.aws, and its China
// form): the same list as the ECR credential helper's host pattern.
var partitions = map[string]bool{
	"amazonaws.com":               true,
	"amazonaws.com.cn":            true,
	"amazonaws.eu":                true,
	"on.aws":                      true,
	"on.amazonwebservices.com.cn": true,
	"sc2s.sgov.gov":               true,
	"c2s.ic.gov":                  true,
	"cloud.adc-e.uk":              true,
	"csp.hci.ic.gov":              true,
}

// ParseHost reads an ECR registry host:
// <12-digit account>.dkr.ecr[-fips].<region>.<partition's suffix>, or
// the dual-stack <account>.dkr-ecr[-fips].<region>.on.aws. It accepts
// exactly the hosts the ECR credential helper's parser accepts
// (TestParseHostAgreesWithTheCredentialHelper), without linking the
// helper's clients into regcred.
func ParseHost(host string) (Host, error) {
	h, ok := parseHost(host)
	if !ok {
		return Host{}, fmt.Errorf("%q is not an ECR registry host: must be %s", host, HostForm)
	}
	return h, nil
}

func parseHost(host string) (Host, bool) {
	account, rest, _ := strings.Cut(host, ".")
	if len(account) != 12 || strings.Trim(account, "0123456789") != "" {
		return Host{}, false
	}
	// dkr.ecr or dkr-ecr: the helper takes either separator with any suffix.
	if !strings.HasPrefix(rest, "dkr.ecr") && !strings.HasPrefix(rest, "dkr-ecr") {
		return Host{}, false
	}
	rest = rest[len("dkr.ecr"):]
	rest, fips := strings.CutPrefix(rest, "-fips")
	rest, ok := strings.CutPrefix(rest, ".")
	if !ok {
		return Host{}, false
	}
	region, suffix, _ := strings.Cut(rest, ".")
	if !validRegion(region) || !partitions[suffix] {
		return Host{}, false
	}
	return Host{
		Account:   account,
		Region:    region,
		FIPS:      fips,
		DualStack: suffix == "on.aws" || suffix == "on.amazonwebservices.com.cn",
	}, true
}

// validRegion says whether a label is a region as ECR hosts spell them: a
// letter or digit, then letters, digits, '-' and '_'.
func validRegion(label string) bool {
	if label == "" || label[0] == '-' || label[0] == '_' {
		return false
	}
	for _, c := range []byte(label) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
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
const GlobForm = "an ECR host with * in its account and/or region label, such as *.dkr.ecr.*.amazonaws.com, 123456789012.dkr.ecr.*.amazonaws.com or *.dkr.ecr.eu-*.amazonaws.com"

// ParseGlob checks an ECR registry host with * in its account or region
// label, as the kubelet's ECR credential provider configuration writes
// them (a * matches any part of one label). It returns an example of the
// hosts it serves.
func ParseGlob(glob string) (Host, error) {
	labels := strings.Split(glob, ".")
	sample := make([]string, len(labels))
	refuse := fmt.Errorf("%q is not an ECR host glob: must be %s", glob, GlobForm)
	for i, l := range labels {
		switch {
		case !strings.Contains(l, "*"):
			sample[i] = l
		case i == 0:
			// The account: digits and *, which stand for as many digits
			// as make twelve.
			digits := strings.ReplaceAll(l, "*", "")
			if strings.Trim(digits, "0123456789") != "" || len(digits) > 12 {
				return Host{}, refuse
			}
			sample[i] = strings.ReplaceAll(strings.Replace(l, "*", strings.Repeat("0", 12-len(digits)), 1), "*", "")
		case i == regionLabel(labels) && l == "*":
			sample[i] = "us-east-1"
		case i == regionLabel(labels):
			sample[i] = strings.ReplaceAll(l, "*", "a")
		default:
			return Host{}, refuse
		}
	}
	h, err := ParseHost(strings.Join(sample, "."))
	if err != nil {
		return Host{}, refuse
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
