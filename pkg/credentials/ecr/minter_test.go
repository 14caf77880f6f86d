package ecr

import (
	"context"
	"encoding/base64"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/image"
)

type fakeAPI struct {
	calls atomic.Int32
	now   func() time.Time
	life  time.Duration
	err   atomic.Pointer[error]
	delay time.Duration
}

func (f *fakeAPI) GetAuthorizationToken(ctx context.Context, _ *ecr.GetAuthorizationTokenInput, _ ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	n := f.calls.Add(1)
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if e := f.err.Load(); e != nil {
		return nil, *e
	}
	tok := base64.StdEncoding.EncodeToString([]byte("AWS:token-" + string(rune('0'+n))))
	exp := f.now().Add(f.life)
	return &ecr.GetAuthorizationTokenOutput{AuthorizationData: []types.AuthorizationData{{AuthorizationToken: &tok, ExpiresAt: &exp}}}, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func setup(t *testing.T) (*Minter, *fakeAPI, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)}
	api := &fakeAPI{now: c.now, life: 12 * time.Hour}
	var keys []Key
	m := NewMinter(Options{
		BackoffBase: time.Second, BackoffMax: time.Minute,
		NewAPI: func(_ context.Context, k Key, _ AccessKey) (TokenAPI, error) {
			keys = append(keys, k)
			return api, nil
		},
	})
	m.now = c.now
	return m, api, c
}

func spec(t *testing.T, url string, auth config.ECRAuth, key AccessKey) credentials.Spec {
	t.Helper()
	loc, err := image.ParseLocation(url)
	require.NoError(t, err)
	return credentials.Spec{Registry: "r", Location: loc, Auth: string(auth),
		Values: map[string]string{"ecr.accessKeyID": key.ID, "ecr.secretAccessKey": key.Secret}}
}

func TestTokenIsMintedOnceAndRefreshedAtHalfLife(t *testing.T) {
	m, api, c := setup(t)
	p, err := m.Provider(spec(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	require.NoError(t, err)
	src := p.(*TokenSource)
	for range 10 {
		tok, err := p.Credential(t.Context())
		require.NoError(t, err)
		assert.Equal(t, "AWS", tok.Username)
		assert.Equal(t, "token-1", tok.Password)
		assert.Equal(t, c.now().Add(12*time.Hour), tok.ExpiresAt)
	}
	assert.EqualValues(t, 1, api.calls.Load(), "one call, whatever the number of admissions")

	// Refresh at half-life, up to a tenth of the life earlier.
	at := src.RefreshAt().Sub(c.now())
	assert.GreaterOrEqual(t, at, 6*time.Hour-72*time.Minute)
	assert.LessOrEqual(t, at, 6*time.Hour)

	changed, err := src.Refresh(t.Context())
	require.NoError(t, err)
	assert.False(t, changed, "not due yet")
	c.add(6 * time.Hour)
	changed, err = src.Refresh(t.Context())
	require.NoError(t, err)
	assert.True(t, changed)
	assert.EqualValues(t, 2, api.calls.Load())
	tok, err := p.Credential(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "token-2", tok.Password)
}

// A replica that does not refresh in the background (not the leader)
// renews a token past its refresh point when an admission uses it: a pull
// secret it writes never gets a token with less than half its life left,
// which the leader's next sweep might not replace in time. A renewal that
// fails or is slow hands out the token still valid, and backs off.
func TestATokenPastItsRefreshPointIsRenewedWhenUsed(t *testing.T) {
	m, api, c := setup(t)
	p, err := m.Provider(spec(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	require.NoError(t, err)
	tok, err := p.Credential(t.Context())
	require.NoError(t, err)
	require.Equal(t, "token-1", tok.Password)

	c.add(6*time.Hour + time.Minute)
	tok, err = p.Credential(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "token-2", tok.Password, "renewed past its refresh point")
	assert.Equal(t, c.now().Add(12*time.Hour), tok.ExpiresAt)
	tok, err = p.Credential(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "token-2", tok.Password)
	assert.EqualValues(t, 2, api.calls.Load(), "once")

	c.add(6*time.Hour + time.Minute)
	boom := errors.New("ThrottlingException")
	api.err.Store(&boom)
	for range 5 {
		tok, err = p.Credential(t.Context())
		require.NoError(t, err, "the token still valid")
		assert.Equal(t, "token-2", tok.Password)
	}
	assert.EqualValues(t, 3, api.calls.Load(), "one renewal tried, then the backoff")
}

func TestOneSourcePerCredentialAndRegion(t *testing.T) {
	m, _, _ := setup(t)
	p1, _ := m.Provider(spec(t, "111111111111.dkr.ecr.eu-west-1.amazonaws.com", config.ECRAccessKey, AccessKey{"AKIA1", "s1"}))
	p2, _ := m.Provider(spec(t, "222222222222.dkr.ecr.eu-west-1.amazonaws.com/team", config.ECRAccessKey, AccessKey{"AKIA1", "s1"}))
	p3, _ := m.Provider(spec(t, "111111111111.dkr.ecr.us-east-1.amazonaws.com", config.ECRAccessKey, AccessKey{"AKIA1", "s1"}))
	p4, _ := m.Provider(spec(t, "111111111111.dkr.ecr.eu-west-1.amazonaws.com", config.ECRAccessKey, AccessKey{"AKIA1", "rotated"}))
	p5, _ := m.Provider(spec(t, "111111111111.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	assert.Same(t, p1, p2, "same key, same region: one token")
	assert.NotSame(t, p1, p3, "another region")
	assert.NotSame(t, p1, p4, "another secret")
	assert.NotSame(t, p1, p5, "another identity")
	assert.Equal(t, "access-key/eu-west-1/AKIA1", p1.(*TokenSource).ID())
	assert.NotContains(t, p4.(*TokenSource).ID(), "rotated")

	// The refresher refreshes one source per ID: a FIPS or dual-stack
	// endpoint's token is another source, with another ID.
	ids := map[string]bool{}
	for _, host := range []string{
		"111111111111.dkr.ecr.us-east-1.amazonaws.com",
		"111111111111.dkr.ecr-fips.us-east-1.amazonaws.com",
		"111111111111.dkr-ecr.us-east-1.on.aws",
		"111111111111.dkr-ecr-fips.us-east-1.on.aws",
	} {
		p, err := m.Provider(spec(t, host, config.ECRIAMRole, AccessKey{}))
		require.NoError(t, err)
		ids[p.(*TokenSource).ID()] = true
	}
	assert.Len(t, ids, 4)
}

func TestFailuresBackOff(t *testing.T) {
	m, api, c := setup(t)
	boom := errors.New("ThrottlingException: Rate exceeded")
	api.err.Store(&boom)
	p, _ := m.Provider(spec(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	src := p.(*TokenSource)
	for range 50 {
		_, err := p.Credential(t.Context())
		require.Error(t, err)
		_, _ = src.Refresh(t.Context())
	}
	assert.EqualValues(t, 1, api.calls.Load(), "no call during the backoff")
	assert.True(t, src.RefreshAt().After(c.now()))
	assert.LessOrEqual(t, src.RefreshAt().Sub(c.now()), time.Second)

	// Each failure doubles the bound, up to the maximum.
	for i := 2; i <= 12; i++ {
		c.add(time.Minute + time.Second)
		_, err := src.Refresh(t.Context())
		require.Error(t, err)
		assert.EqualValues(t, i, api.calls.Load())
		assert.LessOrEqual(t, src.RefreshAt().Sub(c.now()), min(time.Second<<(i-1), time.Minute))
	}
	api.err.Store(nil)
	c.add(time.Minute + time.Second)
	changed, err := src.Refresh(t.Context())
	require.NoError(t, err)
	assert.True(t, changed)
	_, err = p.Credential(t.Context())
	assert.NoError(t, err)
}

func TestConcurrentAdmissionsShareOneMint(t *testing.T) {
	m, api, _ := setup(t)
	api.delay = 50 * time.Millisecond
	p, _ := m.Provider(spec(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := p.Credential(context.Background())
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.EqualValues(t, 1, api.calls.Load())
}

func TestAdmissionWaitIsBounded(t *testing.T) {
	m, api, _ := setup(t)
	m.opts.Budget = 50 * time.Millisecond
	m.opts.CallTimeout = 200 * time.Millisecond
	api.delay = time.Hour
	p, _ := m.Provider(spec(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	// ECR would answer in an hour: the deadline error shows the budget ended the wait.
	_, err := p.Credential(t.Context())
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestParseHost(t *testing.T) {
	for host, want := range map[string]Host{
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com":          {Account: "123456789012", Region: "eu-west-1"},
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn":      {Account: "123456789012", Region: "cn-north-1"},
		"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com": {Account: "123456789012", Region: "us-gov-west-1", FIPS: true},
		"123456789012.dkr-ecr.ap-southeast-2.on.aws":            {Account: "123456789012", Region: "ap-southeast-2", DualStack: true},
		"123456789012.dkr-ecr-fips.us-east-1.on.aws":            {Account: "123456789012", Region: "us-east-1", FIPS: true, DualStack: true},
		// Every partition the ECR credential helper knows.
		"123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn": {Account: "123456789012", Region: "cn-north-1", DualStack: true},
		"123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu":            {Account: "123456789012", Region: "eusc-de-east-1"},
		"123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov":               {Account: "123456789012", Region: "us-iso-east-1"},
		"123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov":           {Account: "123456789012", Region: "us-isob-east-1"},
		"123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk":          {Account: "123456789012", Region: "eu-isoe-west-1"},
	} {
		got, err := ParseHost(host)
		require.NoError(t, err, host)
		assert.Equal(t, want, got, host)
	}
	for _, host := range []string{"12345.dkr.ecr.eu-west-1.amazonaws.com", "123456789012.dkr.ecr.amazonaws.com", "public.ecr.aws", "123456789012.dkr.ecr.eu-west-1.amazonaws.com:443"} {
		_, err := ParseHost(host)
		assert.ErrorContains(t, err, "is not an ECR registry host", host)
	}
}

func TestParseGlob(t *testing.T) {
	for _, glob := range []string{
		"*.dkr.ecr.*.amazonaws.com",
		"123456789012.dkr.ecr.*.amazonaws.com",
		"*.dkr.ecr.eu-west-1.amazonaws.com",
		"*.dkr.ecr.*.amazonaws.com.cn",
		"*.dkr-ecr.*.on.aws",
		"*.dkr.ecr-fips.*.amazonaws.com",
		// A * matches part of a label, as the kubelet's does.
		"*.dkr.ecr.eu-*.amazonaws.com",
		"*.dkr.ecr.us-*-1.amazonaws.com",
		"1234*.dkr.ecr.*.amazonaws.com",
		"*9012.dkr.ecr.eu-west-1.amazonaws.com",
		"1*2*3.dkr.ecr.*.amazonaws.com",
		"123456789012*.dkr.ecr.*.amazonaws.com",
	} {
		_, err := ParseGlob(glob)
		assert.NoError(t, err, glob)
	}
	for _, glob := range []string{
		"*.*.ecr.eu-west-1.amazonaws.com", "*.dkr.ecr.*.*.com", "*.example.com", "*.dkr.e*r.*.amazonaws.com",
		"12a*.dkr.ecr.*.amazonaws.com",           // an account is digits
		"1234567890123*.dkr.ecr.*.amazonaws.com", // and twelve of them
		"*.dkr.ecr.-*.amazonaws.com",             // a region starts with a letter or digit
	} {
		_, err := ParseGlob(glob)
		assert.ErrorContains(t, err, "is not an ECR host glob", glob)
	}
	for _, tc := range []struct{ glob, host, want string }{
		{"*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "*.dkr.ecr.eu-west-1.amazonaws.com"},
		{"123456789012.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		{"*.dkr-ecr.*.on.aws", "123456789012.dkr-ecr.ap-south-1.on.aws", "*.dkr-ecr.ap-south-1.on.aws"},
		{"*.dkr.ecr.eu-*.amazonaws.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "*.dkr.ecr.eu-west-1.amazonaws.com"},
		{"1234*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "1234*.dkr.ecr.eu-west-1.amazonaws.com"},
	} {
		got, h, err := Pattern(tc.glob, tc.host)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got)
		assert.NotEmpty(t, h.Region)
	}
}

// The SDK resolves the ECR API endpoint of every partition's region the
// host parser accepts: the region in the registry host picks the
// partition.
func TestEndpointPerPartition(t *testing.T) {
	for host, want := range map[string]string{
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com":          "api.ecr.eu-west-1.amazonaws.com",
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn":      "api.ecr.cn-north-1.amazonaws.com.cn",
		"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com": "api.ecr-fips.us-gov-west-1.amazonaws.com",
		"123456789012.dkr-ecr.ap-southeast-2.on.aws":            "ecr.ap-southeast-2.api.aws",
		"123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov":         "api.ecr.us-iso-east-1.c2s.ic.gov",
		"123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov":     "api.ecr.us-isob-east-1.sc2s.sgov.gov",
		"123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu":      "api.ecr.eusc-de-east-1.amazonaws.eu",
	} {
		h, err := ParseHost(host)
		require.NoError(t, err, host)
		params := ecr.EndpointParameters{Region: aws.String(h.Region), UseFIPS: aws.Bool(h.FIPS), UseDualStack: aws.Bool(h.DualStack)}
		ep, err := ecr.NewDefaultEndpointResolverV2().ResolveEndpoint(t.Context(), params)
		require.NoError(t, err, host)
		assert.Equal(t, want, ep.URI.Host, host)
	}
}

// A token that has expired by the time ECR's answer arrives (a clock
// ahead of AWS's, a slow call) is a failed mint: an error and a backoff,
// never a panic, and never a refresh loop.
func TestExpiredTokenIsAFailedMint(t *testing.T) {
	for _, life := range []time.Duration{-12 * time.Hour, -time.Second, -time.Nanosecond, 0} {
		t.Run(life.String(), func(t *testing.T) {
			m, api, c := setup(t)
			api.life = life
			p, err := m.Provider(spec(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
			require.NoError(t, err)
			src := p.(*TokenSource)
			_, err = p.Credential(t.Context())
			require.Error(t, err)
			assert.Contains(t, err.Error(), "expired")
			assert.NotContains(t, err.Error(), "token-1")
			assert.True(t, src.Expiry().IsZero(), "an expired token is not kept")
			assert.True(t, src.RefreshAt().After(c.now()), "the next try waits for the backoff")
			assert.LessOrEqual(t, src.RefreshAt().Sub(c.now()), time.Second)

			changed, err := src.Refresh(t.Context())
			require.NoError(t, err, "not due during the backoff")
			assert.False(t, changed)
			c.add(time.Second)
			changed, err = src.Refresh(t.Context())
			require.Error(t, err)
			assert.False(t, changed)
			assert.EqualValues(t, 2, api.calls.Load())
		})
	}
}

// A refresh that gets an expired token keeps the valid one it has.
func TestExpiredRefreshKeepsTheCurrentToken(t *testing.T) {
	m, api, c := setup(t)
	p, err := m.Provider(spec(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	require.NoError(t, err)
	src := p.(*TokenSource)
	_, err = p.Credential(t.Context())
	require.NoError(t, err)
	exp := src.Expiry()
	c.add(6 * time.Hour)
	api.life = -time.Minute
	changed, err := src.Refresh(t.Context())
	require.Error(t, err)
	assert.False(t, changed)
	assert.Equal(t, exp, src.Expiry())
	tok, err := p.Credential(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "token-1", tok.Password)
	assert.True(t, src.RefreshAt().After(c.now()))
}

// A token that expires very soon is used, but its refresh waits at least
// the backoff base: a skewed clock costs a call a second at most, not a
// busy loop.
func TestShortLivedTokenRefreshIsSpaced(t *testing.T) {
	for _, life := range []time.Duration{time.Nanosecond, 10 * time.Nanosecond, 11 * time.Nanosecond, time.Millisecond, 500 * time.Millisecond} {
		t.Run(life.String(), func(t *testing.T) {
			m, api, c := setup(t)
			api.life = life
			p, err := m.Provider(spec(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
			require.NoError(t, err)
			src := p.(*TokenSource)
			_, err = p.Credential(t.Context())
			require.NoError(t, err)
			assert.GreaterOrEqual(t, src.RefreshAt().Sub(c.now()), time.Second)
		})
	}
}

// The token can expire between its mint and its use (a slow admission):
// the admission gets an error, not an expired token.
func TestTokenExpiredBeforeUse(t *testing.T) {
	m, api, c := setup(t)
	api.life = 1500 * time.Millisecond
	// Each look at the clock takes a second: ECR's answer is 1.5s long,
	// still valid when stored, expired when handed out.
	m.now = func() time.Time { c.add(time.Second); return c.now() }
	p, err := m.Provider(spec(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	require.NoError(t, err)
	_, err = p.Credential(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "expired")
	assert.NotContains(t, err.Error(), "token-1")
	assert.EqualValues(t, 1, api.calls.Load())
}

// Once a config is loaded, the minter keeps only the sources it uses: a
// rotated access key, or a registry removed, leaves no source (and no
// secret key) behind for the life of the process.
func TestRetainDropsSourcesNoConfigUses(t *testing.T) {
	m, _, _ := setup(t)
	old, _ := m.Provider(spec(t, "111111111111.dkr.ecr.eu-west-1.amazonaws.com", config.ECRAccessKey, AccessKey{"AKIA1", "s1"}))
	kept, _ := m.Provider(spec(t, "111111111111.dkr.ecr.us-east-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	glob, _ := m.Provider(spec(t, "*.dkr.ecr.*.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	_, rp, err := glob.(*GlobSource).ForHost("222222222222.dkr.ecr.ap-south-1.amazonaws.com")
	require.NoError(t, err)
	regional := rp.(*TokenSource)
	rotated, _ := m.Provider(spec(t, "111111111111.dkr.ecr.eu-west-1.amazonaws.com", config.ECRAccessKey, AccessKey{"AKIA1", "s2"}))

	// The new config: the rotated key, the iam-role registry, the glob.
	m.Retain([]credentials.Provider{rotated, kept, glob, nil})
	m.mu.Lock()
	var left []*TokenSource
	for _, s := range m.sources {
		left = append(left, s)
	}
	m.mu.Unlock()
	assert.ElementsMatch(t, []*TokenSource{rotated.(*TokenSource), kept.(*TokenSource), regional}, left)
	assert.NotContains(t, left, old.(*TokenSource), "the old key is gone")

	// A glob's source stays whatever the config: idleness prunes those.
	m.Retain([]credentials.Provider{rotated, kept})
	m.mu.Lock()
	_, still := m.sources[regional.key]
	m.mu.Unlock()
	assert.True(t, still)
}

// An exact registry removed beside a glob that stays, with the same
// credential: the glob may use the exact registry's source, so it is
// kept, with its backoff (or its token), and dropped once unused like the
// glob's own. A source of another credential goes at once.
func TestRetainKeepsASourceAGlobMayUse(t *testing.T) {
	m, api, c := setup(t)
	failing := errors.New("ECR is down")
	api.err.Store(&failing)
	const host = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"
	exact, err := m.Provider(spec(t, host, config.ECRIAMRole, AccessKey{}))
	require.NoError(t, err)
	other, err := m.Provider(spec(t, host, config.ECRAccessKey, AccessKey{"AKIA1", "s1"}))
	require.NoError(t, err)
	g := globSource(t, m, AccessKey{})
	require.Error(t, use(t, g, host))
	require.EqualValues(t, 1, api.calls.Load(), "one call for the glob and the exact registry: one source")

	m.Retain([]credentials.Provider{g}) // both exact registries removed
	_, p, err := g.ForHost(host)
	require.NoError(t, err)
	assert.Same(t, exact, p, "the glob keeps the source it shared")
	require.Error(t, use(t, g, host))
	assert.EqualValues(t, 1, api.calls.Load(), "its backoff is kept: no call")
	m.mu.Lock()
	_, otherKept := m.sources[other.(*TokenSource).key]
	m.mu.Unlock()
	assert.False(t, otherKept, "the access key no config uses is gone")

	// Unpinned, the source goes once no image needs it.
	c.add(neverMintedFor + time.Second)
	_, _, err = g.ForHost("111111111111.dkr.ecr.us-east-1.amazonaws.com")
	require.NoError(t, err)
	m.mu.Lock()
	_, stays := m.sources[exact.(*TokenSource).key]
	m.mu.Unlock()
	assert.False(t, stays)
}

// ECR slower than an admission's budget: the admission gives up waiting,
// not the call, which goes on (within CallTimeout) and caches its token
// for the next admission. A wait cut short is no ECR failure: no backoff.
func TestASlowMintOutlivesTheAdmissionThatAskedForIt(t *testing.T) {
	m, api, _ := setup(t)
	m.opts.Budget = 20 * time.Millisecond
	api.delay = 200 * time.Millisecond
	p, _ := m.Provider(spec(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	_, err := p.Credential(t.Context())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	src := p.(*TokenSource)
	assert.True(t, src.RefreshAt().IsZero(), "no backoff: ECR did not fail")
	require.Eventually(t, func() bool { return !src.Expiry().IsZero() }, 5*time.Second, time.Millisecond, "the call went on")
	tok, err := p.Credential(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "AWS", tok.Username)
	assert.EqualValues(t, 1, api.calls.Load())
}

// While a call to ECR hangs, admissions wait for it only within the
// budget from when it began: the later ones fail at once, as during a
// backoff, rather than each waiting the whole budget again.
func TestAHangingCallHoldsAdmissionsOnlyWithinTheBudget(t *testing.T) {
	m, api, c := setup(t)
	m.opts.Budget = time.Second
	m.opts.CallTimeout = 300 * time.Millisecond
	api.delay = time.Hour
	p, _ := m.Provider(spec(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := p.Credential(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, api.calls.Load(), "no call for a caller that is gone")

	first := make(chan error, 1)
	go func() { _, err := p.Credential(t.Context()); first <- err }()
	require.Eventually(t, func() bool { return api.calls.Load() == 1 }, 5*time.Second, time.Millisecond)
	c.add(2 * time.Second) // the budget has passed since the call began
	_, err = p.Credential(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the call to ECR under way began 2s ago")
	assert.EqualValues(t, 1, api.calls.Load())
	assert.Error(t, <-first, "the call timed out")
}
