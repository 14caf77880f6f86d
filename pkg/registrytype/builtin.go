package registrytype

import "github.com/regcred/regcred/pkg/credentials/ecr"

// Deps are what some types need from the running process.
type Deps struct {
	// ECR mints ECR tokens; nil where none is minted (offline tools): an
	// ECR registry then has no provider.
	ECR *ecr.Minter
}

// Builtin returns every type regcred knows, in the order docs list them.
// A new type is one file with its constructor, added here.
func Builtin(d Deps) *Types {
	ts, err := NewTypes(ECR(d.ECR), Docker(), Azure(), ArtifactRegistry(), GCR(), Quay(), GHCR(), Other())
	if err != nil {
		panic(err) // the list above is fixed: a duplicate is a programming error
	}
	return ts
}
