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
	// TokenRefreshed records a refresh of one of the registry's tokens,
	// and when its earliest token expires.
	TokenRefreshed(registry string, expiresAt time.Time)
	TokenRefreshFailed(registry string)
	// TokenExpiryForgotten says the registry's token expiry is no longer
	// this replica's to report: it left the config, mints no token any
	// more, or the leadership term ended.
	TokenExpiryForgotten(registry string)
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
	// reported are the registries whose expiry this term reported; only
	// Start's goroutine uses it.
	reported map[string]bool
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
	// Once the term ends, the next leader reports the expiries: this
	// replica's would stay as they are, frozen.
	defer r.forget(func(string) bool { return true })
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
	if r.reported == nil {
		r.reported = map[string]bool{}
	}
	groups := map[string]*tokenGroup{}
	// sources are each registry's token sources: its expiry is their
	// earliest (a glob registry has one per region).
	sources := map[string][]credentials.Expiring{}
	for _, reg := range r.Registries().Registries {
		if !reg.Manages() {
			continue
		}
		for _, src := range reg.TokenSources() {
			sources[reg.Name] = append(sources[reg.Name], src)
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
				r.Metrics.TokenRefreshed(name, earliestExpiry(sources[name], exp))
				r.reported[name] = true
			}
		}
		if at := g.src.RefreshAt(); at.Before(next) {
			next = at
		}
	}
	// A registry that left the config, or mints no token any more, has
	// no expiry.
	r.forget(func(name string) bool { return len(sources[name]) == 0 })
	if changed {
		r.Sync()
	}
	return next
}

// forget drops the expiries reported of the registries gone reports gone.
func (r *TokenRefresher) forget(gone func(string) bool) {
	for name := range r.reported {
		if gone(name) {
			r.Metrics.TokenExpiryForgotten(name)
			delete(r.reported, name)
		}
	}
}

// earliestExpiry is when the first of srcs' tokens expires, as the status
// ConfigMap reports it; sources without a token are left out, and
// fallback stands when none has one.
func earliestExpiry(srcs []credentials.Expiring, fallback time.Time) time.Time {
	var earliest time.Time
	for _, src := range srcs {
		if exp := src.Expiry(); !exp.IsZero() && (earliest.IsZero() || exp.Before(earliest)) {
			earliest = exp
		}
	}
	if earliest.IsZero() {
		return fallback
	}
	return earliest
}
