// Package ecr mints AWS ECR pull tokens with ecr:GetAuthorizationToken.
//
// Tokens live 12 hours. One token serves every registry that shares a
// credential (an access key, or regcred's own identity) and a region, so a
// Minter keeps one token source per credential and region, whatever the
// number of registries and namespaces, and keeps it across config reloads.
// A token is refreshed when half of its life is left, with jitter, based on
// the expiresAt ECR returns; failures back off exponentially with jitter.
// An admission never waits for ECR while a valid token is cached. A token
// that has expired by the time it arrives is a failure, like an error.
//
// A glob registry has a token source per region that images name; as any
// Pod creator writes image references, a glob keeps at most MaxGlobRegions
// and drops the regions no image needs any more; a region that never got
// a token gives its place to a new one.
package ecr
