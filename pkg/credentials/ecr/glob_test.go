package ecr

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
)

func globSource(t *testing.T, m *Minter, key AccessKey) credentials.PerHost {
	t.Helper()
	auth := config.ECRIAMRole
	if key.ID != "" {
		auth = config.ECRAccessKey
	}
	p, err := m.Provider(spec(t, "*.dkr.ecr.*.amazonaws.com", auth, key))
	require.NoError(t, err)
	g, ok := p.(credentials.PerHost)
	require.True(t, ok)
	return g
}

// use is what an admission does with an image host of a glob registry.
func use(t *testing.T, g credentials.PerHost, host string) error {
	t.Helper()
	_, p, err := g.ForHost(host)
	if err != nil {
		return err
	}
	_, err = p.Credential(t.Context())
	return err
}

func TestGlobSourceMintsPerRegion(t *testing.T) {
	m, api, _ := setup(t)
	g := globSource(t, m, AccessKey{})
	_, err := g.Credential(t.Context())
	assert.Error(t, err, "a glob registry's credential depends on the image host")
	patA, srcA, err := g.ForHost("111111111111.dkr.ecr.eu-west-1.amazonaws.com")
	require.NoError(t, err)
	patB, srcB, err := g.ForHost("222222222222.dkr.ecr.eu-west-1.amazonaws.com")
	require.NoError(t, err)
	patC, srcC, err := g.ForHost("111111111111.dkr.ecr.us-east-1.amazonaws.com")
	require.NoError(t, err)
	assert.Equal(t, patA, patB, "one pattern per region")
	assert.Same(t, srcA, srcB, "one token source per region, whatever the account")
	assert.NotEqual(t, patA, patC)
	assert.NotSame(t, srcA, srcC)
	for _, src := range []credentials.Provider{srcA, srcB, srcC} {
		_, err := src.Credential(t.Context())
		require.NoError(t, err)
	}
	assert.Equal(t, 2, len(g.Sources()))
	assert.EqualValues(t, 2, api.calls.Load(), "one call per region")
	_, _, err = g.ForHost("quay.io")
	assert.Error(t, err)
}

// madeUp fails every mint from now on, as ECR does for a region that
// does not exist, and has the glob try n such regions.
func madeUp(t *testing.T, g credentials.PerHost, api *fakeAPI, n int) (refused []error) {
	t.Helper()
	boom := errors.New("dial tcp: lookup api.ecr.zz0.amazonaws.com: no such host")
	api.err.Store(&boom)
	t.Cleanup(func() { api.err.Store(nil) })
	for i := range n {
		err := use(t, g, fmt.Sprintf("123456789012.dkr.ecr.zz%d.amazonaws.com", i))
		require.Error(t, err)
		if !errors.Is(err, boom) {
			refused = append(refused, err)
		}
	}
	return refused
}

// Image references can name any region, and any Pod creator writes them
// (even a dry run): a glob keeps at most 64 regions. Regions that never
// got a token (made up, or failing) make room for a new one, the one
// unused longest first, so they cannot keep a real region out; regions
// that have a token are never pushed out, and a 65th beside 64 of them is
// refused without calling ECR.
func TestGlobSourceCapsRegions(t *testing.T) {
	m, api, _ := setup(t)
	g := globSource(t, m, AccessKey{"AKIAEXAMPLE", "SECRETMATERIAL"})
	require.NoError(t, use(t, g, "123456789012.dkr.ecr.eu-west-1.amazonaws.com"))
	refused := madeUp(t, g, api, 200)
	assert.Zero(t, len(refused), "a made-up region takes the place of another that never got a token")
	assert.EqualValues(t, 1+200, api.calls.Load())
	assert.Equal(t, 64, len(m.sources), "the minter keeps no more than the glob")

	// A real region is served while made-up ones fill the glob.
	api.err.Store(nil)
	calls := api.calls.Load()
	require.NoError(t, use(t, g, "123456789012.dkr.ecr.eu-central-1.amazonaws.com"))
	assert.Equal(t, calls+1, api.calls.Load())
	assert.Equal(t, 2, len(g.Sources()), "eu-west-1 and eu-central-1 kept their tokens")

	// 64 regions with a token: the 65th is refused, without an ECR call.
	for i := range 62 {
		require.NoError(t, use(t, g, fmt.Sprintf("123456789012.dkr.ecr.zy%d.amazonaws.com", i)))
	}
	require.Equal(t, 64, len(g.Sources()))
	calls = api.calls.Load()
	err := use(t, g, "123456789012.dkr.ecr.ap-south-1.amazonaws.com")
	require.Error(t, err)
	assert.Equal(t, calls, api.calls.Load())
	msg := err.Error()
	assert.Contains(t, msg, "*.dkr.ecr.*.amazonaws.com")
	assert.Contains(t, msg, "64 regions")
	for _, secret := range []string{"SECRETMATERIAL", "AKIAEXAMPLE", "token-"} {
		assert.NotContains(t, msg, secret)
	}
	// A region the glob keeps is still served, from its token.
	require.NoError(t, use(t, g, "123456789012.dkr.ecr.eu-west-1.amazonaws.com"))
	assert.Equal(t, calls, api.calls.Load())
}

// A region that never got a token is not refreshed in the background, and
// is dropped once no Pod has asked for it for a while, from the glob and
// from the minter: the cap frees itself.
func TestGlobSourceDropsRegionsThatNeverGotAToken(t *testing.T) {
	m, api, c := setup(t)
	g := globSource(t, m, AccessKey{})
	require.NoError(t, use(t, g, "123456789012.dkr.ecr.eu-west-1.amazonaws.com"))
	madeUp(t, g, api, 100)
	api.err.Store(nil)
	assert.Equal(t, 1, len(g.Sources()), "the refresher sees the region that has a token, not the others")

	c.add(10 * time.Minute)
	require.NoError(t, use(t, g, "123456789012.dkr.ecr.eu-west-1.amazonaws.com"))
	c.add(10 * time.Minute)
	calls := api.calls.Load()
	require.NoError(t, use(t, g, "123456789012.dkr.ecr.eu-central-1.amazonaws.com"), "room again")
	assert.Equal(t, calls+1, api.calls.Load())
	assert.Equal(t, 2, len(g.Sources()))
	assert.Equal(t, 2, len(m.sources), "the made-up regions are gone from the minter too")
	require.NoError(t, use(t, g, "123456789012.dkr.ecr.eu-west-1.amazonaws.com"))
	assert.Equal(t, calls+1, api.calls.Load(), "the region in use kept its token")
}

// A region no Pod and no pull secret has needed for a day holds no valid
// token any more: it is dropped. An exact registry's source belongs to the
// config and stays.
func TestGlobSourceDropsUnusedRegions(t *testing.T) {
	m, api, c := setup(t)
	g := globSource(t, m, AccessKey{})
	exact, err := m.Provider(spec(t, "123456789012.dkr.ecr.us-east-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	require.NoError(t, err)
	require.NoError(t, use(t, g, "123456789012.dkr.ecr.us-east-1.amazonaws.com"))
	require.NoError(t, use(t, g, "123456789012.dkr.ecr.eu-west-1.amazonaws.com"))
	assert.EqualValues(t, 2, api.calls.Load(), "the exact registry and the glob share us-east-1's token")
	assert.Equal(t, 2, len(g.Sources()))

	// Used every 20 hours, eu-west-1 stays.
	c.add(20 * time.Hour)
	require.NoError(t, use(t, g, "123456789012.dkr.ecr.eu-west-1.amazonaws.com"))
	c.add(20 * time.Hour)
	assert.Equal(t, 1, len(g.Sources()))
	c.add(5 * time.Hour)
	assert.Zero(t, len(g.Sources()))
	require.NoError(t, use(t, g, "123456789012.dkr.ecr.ap-south-1.amazonaws.com"))
	assert.Equal(t, 2, len(m.sources), "the exact registry's and ap-south-1's")
	again, err := m.Provider(spec(t, "123456789012.dkr.ecr.us-east-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	require.NoError(t, err)
	assert.Same(t, exact, again)
}

// A real region that fails keeps its token source, and so its backoff,
// while Pods keep asking for it: admissions do not call ECR each time.
func TestGlobSourceFailingRegionKeepsItsBackoff(t *testing.T) {
	m, api, c := setup(t)
	g := globSource(t, m, AccessKey{})
	boom := errors.New("AccessDeniedException")
	api.err.Store(&boom)
	host := "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
	_, first, err := g.ForHost(host)
	require.NoError(t, err)
	for i := range 12 {
		for range 20 {
			require.Error(t, use(t, g, host))
		}
		assert.EqualValues(t, i+1, api.calls.Load(), "one call, then the backoff")
		_, p, err := g.ForHost(host)
		require.NoError(t, err)
		assert.Same(t, first, p)
		c.add(10 * time.Minute)
	}
}

// Made-up regions whose ECR calls hang (DNS or a connection timing out,
// up to the call's timeout) give their place up too: the admission that
// named them has given up, and a real region is served.
func TestGlobSourceRegionsWhoseCallsHangMakeRoom(t *testing.T) {
	m, api, _ := setup(t)
	api.delay = time.Hour // each call hangs until its timeout
	g := globSource(t, m, AccessKey{})
	for i := range MaxGlobRegions {
		_, p, err := g.ForHost(fmt.Sprintf("123456789012.dkr.ecr.zz%d.amazonaws.com", i))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		_, err = p.Credential(ctx) // the admission gives up; the call goes on
		cancel()
		require.Error(t, err)
	}
	_, _, err := g.ForHost("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
	require.NoError(t, err, "a real region is not kept out")
}
