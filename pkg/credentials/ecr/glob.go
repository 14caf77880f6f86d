package ecr

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
)

// MaxGlobRegions bounds the regions a glob registry keeps a token source
// for. Image references, which any Pod creator writes, choose the region:
// the bound caps the memory that made-up regions cost, and a made-up region
// costs an ECR call when a Pod names it and none is kept for it (at most
// one per review and host). AWS has a few dozen regions across all its
// partitions.
const MaxGlobRegions = 64

// A glob's token source is dropped once no image has needed it for
// unusedFor, or for neverMintedFor if it never got a token (a region that
// does not exist, or that regcred cannot reach). unusedFor is longer than
// a token's life, so a dropped source held no valid token; neverMintedFor
// is longer than the longest backoff, so dropping a failing region does not
// make regcred call ECR more often. Every pull secret's regions are needed
// at each resync and after each token refresh, far more often. (A region
// that never got a token can also be dropped to make room for another:
// then its backoff goes with it; see makeRoom.)
const (
	unusedFor      = 24 * time.Hour
	neverMintedFor = 15 * time.Minute
)

// GlobSource is the provider of a glob ECR registry: a token per region.
type GlobSource struct {
	minter *Minter
	glob   string
	auth   config.ECRAuth
	key    AccessKey

	mu      sync.Mutex
	sources map[string]*TokenSource // by pattern
}

var _ credentials.PerHost = (*GlobSource)(nil)

// AmbientIdentity says the glob's sources mint as the process's own AWS
// identity (iam-role).
func (g *GlobSource) AmbientIdentity() bool { return g.auth == config.ECRIAMRole }

// Credential fails: a glob registry's credential depends on the image.
func (g *GlobSource) Credential(context.Context) (credentials.Credential, error) {
	return credentials.Credential{}, errors.New("a glob ECR registry has a token per region: ask for an image host's")
}

// ForHost returns the key pattern of an image host (the glob with its
// region) and the token source of that region. It refuses a new region
// when the glob has MaxGlobRegions in use already.
func (g *GlobSource) ForHost(host string) (string, credentials.Provider, error) {
	pattern, h, err := Pattern(g.glob, host)
	if err != nil {
		return "", nil, err
	}
	now := g.minter.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sources == nil {
		g.sources = map[string]*TokenSource{}
	}
	g.prune(now)
	if _, ok := g.sources[pattern]; !ok && len(g.sources) >= MaxGlobRegions && !g.makeRoom() {
		return "", nil, fmt.Errorf("ECR glob %s serves at most %d regions at once, and that many have a token: a new region is served once one of them is unused for %s",
			g.glob, MaxGlobRegions, unusedFor)
	}
	src := g.minter.source(h, g.auth, g.key, false)
	g.sources[pattern] = src
	return pattern, src, nil
}

// PatternOf returns the key pattern of an image host: the glob with the
// host's region.
func (g *GlobSource) PatternOf(host string) (string, error) {
	pattern, _, err := Pattern(g.glob, host)
	return pattern, err
}

// Sources returns the token sources of the regions in use that have a
// token, for the refresher: a region that never got one is minted when an
// image needs it, within its backoff, never in the background.
func (g *GlobSource) Sources() []credentials.Expiring {
	now := g.minter.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.prune(now)
	out := make([]credentials.Expiring, 0, len(g.sources))
	for _, s := range g.sources {
		if !s.Expiry().IsZero() {
			out = append(out, s)
		}
	}
	return out
}

// makeRoom drops, of the regions that never got a token, the one an image
// needed longest ago, from the glob and from the minter; a mint under way
// ends on its own (its callers hold the source) and is not kept. Made-up
// regions, which any Pod creator can name, so take each other's place and
// never keep out a region that mints, even while their calls hang; a
// region with a token is never pushed out. A real region that fails loses
// its backoff when pushed out: its next image calls ECR again, once for
// every MaxGlobRegions made-up regions named meanwhile. It reports whether
// it made room.
func (g *GlobSource) makeRoom() bool {
	var oldest *TokenSource
	var pattern string
	var since time.Time
	for p, s := range g.sources {
		if used, ok := s.replaceable(); ok && (oldest == nil || used.Before(since)) {
			oldest, pattern, since = s, p, used
		}
	}
	if oldest == nil {
		return false
	}
	delete(g.sources, pattern)
	g.minter.forget(oldest)
	return true
}

// prune drops the sources no image needs any more. The Minter drops them
// too when it makes a source, so both hold the same one for a region.
func (g *GlobSource) prune(now time.Time) {
	maps.DeleteFunc(g.sources, func(_ string, s *TokenSource) bool { return s.idle(now) })
}
