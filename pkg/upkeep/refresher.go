package upkeep

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/registries"
)

// TokenRecorder counts token refreshes.
type TokenRecorder interface {
	TokenRefreshed(registry string, expiresAt time.Time)
	TokenRefreshFailed(registry string)
}

// TokenRefresher refreshes expiring registry tokens (ECR) ahead of their expiry
// and has every pull secret that holds one rewritten. It runs on the leader
// only: one replica mints and writes. Each token source is refreshed once,
// however many registries and namespaces share it.
type TokenRefresher struct {
	Registries func() *registries.Set
	// Sync asks for every managed pull secret to be brought up to date.
	Sync    func()
	Metrics TokenRecorder
	// MaxWait bounds the sleep between two looks (default a minute).
	MaxWait time.Duration
	// Clock tells the time and sleeps; tests replace it.
	Clock clock.WithTicker

	wake chan struct{}
}

// NewTokenRefresher returns a TokenRefresher.
func NewTokenRefresher(set func() *registries.Set, sync func(), m TokenRecorder) *TokenRefresher {
	return &TokenRefresher{Registries: set, Sync: sync, Metrics: m, MaxWait: time.Minute, Clock: clock.RealClock{}, wake: make(chan struct{}, 1)}
}

// Wake makes the refresher look again now (the config changed).
func (r *TokenRefresher) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// NeedLeaderElection is true: only the leader mints and writes.
func (r *TokenRefresher) NeedLeaderElection() bool { return true }

// Start refreshes until ctx ends.
func (r *TokenRefresher) Start(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("refresher")
	ctx = logr.NewContext(ctx, log)
	for {
		next := r.refreshDue(ctx)
		wait := min(max(next.Sub(r.Clock.Now()), 10*time.Millisecond), r.MaxWait)
		t := r.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		case <-r.wake:
			t.Stop()
		}
	}
}

type tokenGroup struct {
	src        credentials.Expiring
	registries []string
}

// refreshDue refreshes every source that is due and returns when the next
// one will be.
func (r *TokenRefresher) refreshDue(ctx context.Context) time.Time {
	log := logr.FromContextOrDiscard(ctx)
	groups := map[string]*tokenGroup{}
	for _, reg := range r.Registries().Registries {
		if !reg.Manages() {
			continue
		}
		for _, src := range reg.TokenSources() {
			g := groups[src.ID()]
			if g == nil {
				g = &tokenGroup{src: src}
				groups[src.ID()] = g
			}
			if !slices.Contains(g.registries, reg.Name) {
				g.registries = append(g.registries, reg.Name)
			}
		}
	}
	ids := make([]string, 0, len(groups))
	for id := range groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	next := r.Clock.Now().Add(r.MaxWait)
	changed := false
	for _, id := range ids {
		g := groups[id]
		callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		refreshed, err := g.src.Refresh(callCtx)
		cancel()
		switch {
		case err != nil:
			// The error names the API and region, never a credential.
			log.Error(err, "Token refresh failed; pull secrets keep their current token", "registries", g.registries, "retryAt", g.src.RefreshAt().Format(time.RFC3339))
			for _, name := range g.registries {
				r.Metrics.TokenRefreshFailed(name)
			}
		case refreshed:
			changed = true
			exp := g.src.Expiry()
			log.Info("Token refreshed", "registries", g.registries, "expiresAt", exp.Format(time.RFC3339), "nextRefresh", g.src.RefreshAt().Format(time.RFC3339))
			for _, name := range g.registries {
				r.Metrics.TokenRefreshed(name, exp)
			}
		}
		if at := g.src.RefreshAt(); at.Before(next) {
			next = at
		}
	}
	if changed {
		r.Sync()
	}
	return next
}
