package upkeep

import (
	"context"
	"maps"
	"slices"
	"strings"
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
	// reported are the registries whose expiry this term reported; seen is
	// each source's expiry at the last look. Only Start's goroutine uses
	// them.
	reported map[string]bool
	seen     map[credentials.Expiring]time.Time
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
	defer func() { r.seen = nil }()
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
	// By source, not by its ID, which names it for people: two sources of
	// one access key ID with different secrets are two tokens.
	groups := map[credentials.Expiring]*tokenGroup{}
	// sources are each registry's token sources: its expiry is their
	// earliest (a glob registry has one per region).
	sources := map[string][]credentials.Expiring{}
	for _, reg := range r.Registries().Registries {
		if !reg.Manages() {
			continue
		}
		for _, src := range reg.TokenSources() {
			sources[reg.Name] = append(sources[reg.Name], src)
			g := groups[src]
			if g == nil {
				g = &tokenGroup{src: src}
				groups[src] = g
			}
			if !slices.Contains(g.registries, reg.Name) {
				g.registries = append(g.registries, reg.Name)
			}
		}
	}
	ordered := slices.SortedFunc(maps.Values(groups), func(a, b *tokenGroup) int { return strings.Compare(a.src.ID(), b.src.ID()) })
	next := r.Clock.Now().Add(r.MaxWait)
	changed := false
	seen := make(map[credentials.Expiring]time.Time, len(groups))
	for _, g := range ordered {
		callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		refreshed, err := g.src.Refresh(callCtx)
		cancel()
		// A token renewed since the last look by another caller (an
		// admission on this replica renews a token past its refresh
		// point) changed too: its pull secrets are rewritten as well.
		exp := g.src.Expiry()
		prev, looked := r.seen[g.src]
		seen[g.src] = exp
		renewed := !refreshed && looked && !exp.Equal(prev)
		if err != nil {
			// The error names the API and region, never a credential.
			log.Error(err, "Token refresh failed; pull secrets keep their current token", "registries", g.registries, "retryAt", g.src.RefreshAt().Format(time.RFC3339))
			for _, name := range g.registries {
				r.Metrics.TokenRefreshFailed(name)
			}
		}
		if refreshed || renewed {
			changed = true
			log.Info("Token refreshed", "registries", g.registries, "expiresAt", exp.Format(time.RFC3339), "nextRefresh", g.src.RefreshAt().Format(time.RFC3339), "byAnAdmission", renewed)
			for _, name := range g.registries {
				r.Metrics.TokenRefreshed(name, earliestExpiry(sources[name], exp))
				r.reported[name] = true
			}
		}
		if at := g.src.RefreshAt(); at.Before(next) {
			next = at
		}
	}
	r.seen = seen
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
