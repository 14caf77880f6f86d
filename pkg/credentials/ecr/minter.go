package ecr

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
)

// TokenAPI is the part of the ECR API regcred uses.
type TokenAPI interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

// Options tune a Minter. The zero value is production's.
type Options struct {
	// Endpoint overrides the ECR API endpoint (else the SDK's own, which
	// also honours AWS_ENDPOINT_URL_ECR).
	Endpoint string
	// HTTPClient makes the API calls (else the SDK's, which honours
	// AWS_CA_BUNDLE; a client given here must trust what it needs itself).
	HTTPClient *http.Client
	// Budget bounds how long an admission may wait for a first token
	// (default 2s, well under the webhook's timeout).
	Budget time.Duration
	// BackoffBase and BackoffMax bound the wait after failures (default 1s
	// and 5m); each wait is drawn at random up to the exponential bound.
	BackoffBase, BackoffMax time.Duration
	// NewAPI builds the API client of one credential and region; tests
	// replace it. Nil means the AWS SDK.
	NewAPI func(ctx context.Context, k Key, key AccessKey) (TokenAPI, error)
}

// Key identifies a token source: one credential in one region.
type Key struct {
	Auth            config.ECRAuth
	Region          string
	FIPS, DualStack bool
	// Credential identifies the access key (its ID and a digest of the
	// secret); empty for iam-role.
	Credential string
}

// Minter keeps the token sources of every ECR registry. It lives as long
// as the process, so that a config reload keeps the tokens minted so far.
type Minter struct {
	opts Options
	now  func() time.Time

	mu      sync.Mutex
	sources map[Key]*TokenSource
}

// NewMinter returns a Minter.
func NewMinter(opts Options) *Minter {
	if opts.Budget == 0 {
		opts.Budget = 2 * time.Second
	}
	if opts.BackoffBase == 0 {
		opts.BackoffBase = time.Second
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMax = 5 * time.Minute
	}
	if opts.NewAPI == nil {
		opts.NewAPI = sdkAPI(opts)
	}
	return &Minter{opts: opts, now: time.Now, sources: map[Key]*TokenSource{}}
}

// Provider returns the token source of a compiled ECR registry: one per
// credential and region, shared by every registry that has them. For a
// glob registry (*.dkr.ecr.*.amazonaws.com) it is a GlobSource: a token
// source per region, made when an image of that region first needs one.
func (m *Minter) Provider(spec credentials.Spec) (credentials.Provider, error) {
	auth := config.ECRAuth(spec.Auth)
	key := AccessKey{
		ID:     strings.TrimSpace(spec.Values["ecr.accessKeyID"]),
		Secret: strings.TrimSpace(spec.Values["ecr.secretAccessKey"]),
	}
	if spec.Location.Glob() {
		if _, err := ParseGlob(spec.Location.Host); err != nil {
			return nil, err
		}
		return &GlobSource{minter: m, glob: spec.Location.Host, auth: auth, key: key}, nil
	}
	h, err := ParseHost(spec.Location.Host)
	if err != nil {
		return nil, err
	}
	return m.source(h, auth, key), nil
}

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

// Credential fails: a glob registry's credential depends on the image.
func (g *GlobSource) Credential(context.Context) (credentials.Credential, error) {
	return credentials.Credential{}, errors.New("a glob ECR registry has a token per region: ask for an image host's")
}

// ForHost returns the key pattern of an image host (the glob with its
// region) and the token source of that region.
func (g *GlobSource) ForHost(host string) (string, credentials.Provider, error) {
	pattern, h, err := Pattern(g.glob, host)
	if err != nil {
		return "", nil, err
	}
	src := g.minter.source(h, g.auth, g.key)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sources == nil {
		g.sources = map[string]*TokenSource{}
	}
	g.sources[pattern] = src
	return pattern, src, nil
}

// Sources returns the token sources of the regions used so far.
func (g *GlobSource) Sources() []credentials.Expiring {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]credentials.Expiring, 0, len(g.sources))
	for _, s := range g.sources {
		out = append(out, s)
	}
	return out
}

// AccessKey is an AWS access key; empty for iam-role. It is secret: never
// log or print it.
type AccessKey struct{ ID, Secret string }

// source returns the token source of a credential in a host's region.
func (m *Minter) source(h Host, auth config.ECRAuth, key AccessKey) *TokenSource {
	k := Key{Auth: auth, Region: h.Region, FIPS: h.FIPS, DualStack: h.DualStack}
	if auth == config.ECRAccessKey {
		sum := sha256.Sum256([]byte(key.Secret))
		k.Credential = key.ID + "/" + hex.EncodeToString(sum[:8])
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	src, ok := m.sources[k]
	if !ok {
		src = &TokenSource{key: k, minter: m, accessKey: key}
		m.sources[k] = src
	}
	return src
}

// TokenSource is the token source of one credential and region. It is
// the Provider of every ECR registry that shares them.
type TokenSource struct {
	key       Key
	minter    *Minter
	accessKey AccessKey

	mu          sync.Mutex
	api         TokenAPI
	token       *credentials.Credential
	issued      time.Time
	refreshAt   time.Time
	failures    int
	nextAttempt time.Time
	lastErr     error
	// inflight is closed when the mint under way ends.
	inflight chan struct{}
}

// ID identifies the source (no secret in it).
func (s *TokenSource) ID() string {
	id := fmt.Sprintf("%s/%s", s.key.Auth, s.key.Region)
	if s.key.Credential != "" {
		id += "/" + strings.SplitN(s.key.Credential, "/", 2)[0]
	}
	return id
}

// Credential returns the cached token while it is valid; it mints one, within
// the Minter's budget, only when none is.
func (s *TokenSource) Credential(ctx context.Context) (credentials.Credential, error) {
	if tok, ok := s.valid(); ok {
		return tok, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.minter.opts.Budget)
	defer cancel()
	if err := s.mint(ctx, false); err != nil {
		return credentials.Credential{}, err
	}
	if tok, ok := s.valid(); ok {
		return tok, nil
	}
	return credentials.Credential{}, errors.New("ECR returned an expired token")
}

// valid returns the cached token if it does not expire within a minute.
func (s *TokenSource) valid() (credentials.Credential, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != nil && s.minter.now().Before(s.token.ExpiresAt.Add(-safety(s.token.ExpiresAt.Sub(s.issued)))) {
		return *s.token, true
	}
	return credentials.Credential{}, false
}

// safety is how long before expiry a token stops being handed out: a
// minute, or a tenth of its life for short-lived (test) tokens.
func safety(life time.Duration) time.Duration {
	return min(time.Minute, life/10)
}

// RefreshAt returns when the token should be refreshed: half of its life
// after it was issued, less jitter; or, after failures, when the backoff
// ends. Zero means now.
func (s *TokenSource) RefreshAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nextAttempt.After(s.refreshAt) {
		return s.nextAttempt
	}
	return s.refreshAt
}

// Expiry returns the cached token's expiry, zero if none.
func (s *TokenSource) Expiry() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == nil {
		return time.Time{}
	}
	return s.token.ExpiresAt
}

// Refresh mints a new token if one is due and the backoff allows. It
// reports whether the token changed.
func (s *TokenSource) Refresh(ctx context.Context) (bool, error) {
	if s.minter.now().Before(s.RefreshAt()) {
		return false, nil
	}
	if err := s.mint(ctx, true); err != nil {
		return false, err
	}
	return true, nil
}

// mint calls ECR once, unless a call is under way (then it waits for that
// one) or, for an admission, the backoff after a failure is not over.
func (s *TokenSource) mint(ctx context.Context, background bool) error {
	s.mu.Lock()
	if ch := s.inflight; ch != nil {
		s.mu.Unlock()
		select {
		case <-ch:
			s.mu.Lock()
			err := s.lastErr
			s.mu.Unlock()
			return err
		case <-ctx.Done():
			return fmt.Errorf("waiting for an ECR token: %w", ctx.Err())
		}
	}
	now := s.minter.now()
	if !background && now.Before(s.nextAttempt) {
		err := s.lastErr
		s.mu.Unlock()
		return fmt.Errorf("no ECR token yet, retrying after backoff: %w", err)
	}
	ch := make(chan struct{})
	s.inflight = ch
	s.mu.Unlock()

	tok, err := s.call(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = nil
	defer close(ch)
	now = s.minter.now()
	if err != nil {
		s.failures++
		s.lastErr = err
		bound := s.minter.opts.BackoffBase << min(s.failures-1, 20)
		bound = min(bound, s.minter.opts.BackoffMax)
		// Full jitter: replicas and registries that failed together spread out.
		s.nextAttempt = now.Add(time.Duration(rand.Int64N(int64(bound)) + 1)) //nolint:gosec // jitter needs no cryptographic randomness
		return err
	}
	s.failures, s.lastErr, s.nextAttempt = 0, nil, time.Time{}
	s.token, s.issued = &tok, now
	life := tok.ExpiresAt.Sub(now)
	// Refresh at half-life, up to a tenth of the life earlier, never later.
	jitter := time.Duration(rand.Int64N(int64(life/10) + 1)) //nolint:gosec // jitter needs no cryptographic randomness
	s.refreshAt = now.Add(life/2 - jitter)
	return nil
}

func (s *TokenSource) call(ctx context.Context) (credentials.Credential, error) {
	s.mu.Lock()
	api := s.api
	s.mu.Unlock()
	if api == nil {
		var err error
		if api, err = s.minter.opts.NewAPI(ctx, s.key, s.accessKey); err != nil {
			return credentials.Credential{}, fmt.Errorf("ECR client: %w", err)
		}
		s.mu.Lock()
		s.api = api
		s.mu.Unlock()
	}
	out, err := api.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return credentials.Credential{}, fmt.Errorf("ecr:GetAuthorizationToken in %s: %w", s.key.Region, err)
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil || out.AuthorizationData[0].ExpiresAt == nil {
		return credentials.Credential{}, errors.New("ecr:GetAuthorizationToken returned no token")
	}
	d := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(*d.AuthorizationToken)
	if err != nil {
		return credentials.Credential{}, errors.New("ecr:GetAuthorizationToken returned a token that is not base64")
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return credentials.Credential{}, errors.New("ecr:GetAuthorizationToken returned a token without a user")
	}
	return credentials.Credential{Username: user, Password: pass, ExpiresAt: *d.ExpiresAt}, nil
}

// sdkAPI builds ECR clients with the AWS SDK: the access key from the
// config, or the default chain (environment, IRSA web identity, EKS Pod
// Identity, instance role) for iam-role. Retries are regcred's own.
func sdkAPI(opts Options) func(ctx context.Context, k Key, key AccessKey) (TokenAPI, error) {
	return func(ctx context.Context, k Key, key AccessKey) (TokenAPI, error) {
		load := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(k.Region), awsconfig.WithAppID("regcred")}
		if k.Auth == config.ECRAccessKey {
			load = append(load, awsconfig.WithCredentialsProvider(awscreds.NewStaticCredentialsProvider(key.ID, key.Secret, "")))
		}
		if opts.HTTPClient != nil {
			load = append(load, awsconfig.WithHTTPClient(opts.HTTPClient))
		}
		cfg, err := awsconfig.LoadDefaultConfig(ctx, load...)
		if err != nil {
			return nil, err
		}
		return ecr.NewFromConfig(cfg, func(o *ecr.Options) {
			o.Retryer = aws.NopRetryer{}
			if opts.Endpoint != "" {
				o.BaseEndpoint = aws.String(opts.Endpoint)
			}
			if k.FIPS {
				o.EndpointOptions.UseFIPSEndpoint = aws.FIPSEndpointStateEnabled
			}
			if k.DualStack {
				o.EndpointOptions.UseDualStackEndpoint = aws.DualStackEndpointStateEnabled
			}
		}), nil
	}
}
