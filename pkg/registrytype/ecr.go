package registrytype

import (
	"strings"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/credentials/ecr"
)

// ECR is AWS Elastic Container Registry. regcred mints its tokens with
// ecr:GetAuthorizationToken (they live 12 hours and are refreshed at
// half-life), as regcred's own AWS identity or with an access key. With a
// nil minter (a program that mints no token) an ECR registry has no
// provider.
func ECR(minter *ecr.Minter) *Type {
	return &Type{
		Name:        "ecr",
		Description: "AWS Elastic Container Registry",
		URLForm:     "https://<12-digit account>.dkr.ecr.<region>.amazonaws.com (or another AWS partition's domain, dkr.ecr-fips, or dual-stack <account>.dkr-ecr.<region>.on.aws), or a glob of the account and region (*.dkr.ecr.*.amazonaws.com)",
		Host: func(h string) bool {
			var err error
			if strings.Contains(h, "*") {
				_, err = ecr.ParseGlob(h)
			} else {
				_, err = ecr.ParseHost(h)
			}
			return err == nil
		},
		Credentials: ECRToken,
		NewProvider: func(spec credentials.Spec) (credentials.Provider, error) {
			if minter == nil {
				// A program that mints no token (an offline tool) has
				// no provider: the registry is still matched and named.
				return nil, nil
			}
			return minter.Provider(spec)
		},
	}
}

func validateECR(r *config.Registry, rep *config.Reporter, required bool) {
	if r.Username != nil {
		rep.Fail("username", "is not used by an ecr registry (its user is AWS): use ecr.auth")
	}
	if r.Password != nil {
		rep.Fail("password", "is not used by an ecr registry (its password is a token regcred mints): use ecr.auth")
	}
	e := r.ECR
	switch {
	case e == nil:
		if required {
			rep.Fail("ecr", "is required: set ecr.auth to iam-role or access-key")
		}
	case e.Auth == config.ECRAccessKey:
		if e.AccessKeyID == nil {
			rep.Fail("ecr.accessKeyID", "is required with auth: access-key")
		}
		if e.SecretAccessKey == nil {
			rep.Fail("ecr.secretAccessKey", "is required with auth: access-key")
		}
	case e.Auth == config.ECRIAMRole:
		if e.AccessKeyID != nil || e.SecretAccessKey != nil {
			rep.Fail("ecr", "auth: iam-role uses regcred's own AWS identity; remove accessKeyID and secretAccessKey or use auth: access-key")
		}
	}
}
