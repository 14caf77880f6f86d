package app

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regcred/regcred/pkg/credentials/ecr"
)

// Deps are what a program may give a replica besides its options: what
// production takes as it is and tests replace. Zero fields take
// production's.
type Deps struct {
	// Metrics receives regcred's metrics, served on the metrics endpoint
	// beside controller-runtime's; nil means a registry of the replica's own.
	Metrics *prometheus.Registry
	// ECR tunes the ECR token minter beyond its flags: its HTTP client,
	// backoff and API (Endpoint and Budget come from Options).
	ECR ecr.Options
	// Version is regcred's, for regcred_build_info ("dev" if empty).
	Version string
	// StatusRefresh bounds how long a change (a token's expiry) takes to
	// show in the status (default 30s).
	StatusRefresh time.Duration
}
