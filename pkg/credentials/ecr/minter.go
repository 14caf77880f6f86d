package ecr

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"runtime"
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
	// CallTimeout bounds one call to ECR (default 30s). A call does not end
	// with the wait of the admission that started it: ECR slower than the
	// Budget still gives a token, to the next admission.
	CallTimeout time.Duration
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
	if opts.CallTimeout == 0 {
		opts.CallTimeout = 30 * time.Second
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
	return m.source(h, auth, key, true), nil
}

// Retain drops the sources of exact registries that the config just
// loaded no longer holds: called with the providers of its registries, it
// leaves no source of a removed registry or a rotated access key (nor
// that key) for the life of the process. A source that one of the
// config's globs may use too (the same credential: an exact registry
// removed beside a glob that stays) is not dropped but unpinned, with its
// token and its backoff: the glob's own sources are dropped once unused.
func (m *Minter) Retain(providers []credentials.Provider) {
	held := make(map[*TokenSource]bool, len(providers))
	globs := map[globCredential]bool{}
	for _, p := range providers {
		switch p := p.(type) {
		case *TokenSource:
			held[p] = true
		case *GlobSource:
			globs[globCredential{p.auth, credentialID(p.auth, p.key)}] = true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	maps.DeleteFunc(m.sources, func(k Key, s *TokenSource) bool {
		if !s.isPinned() || held[s] {
			return false
		}
		if globs[globCredential{k.Auth, k.Credential}] {
			s.unpin()
			return false
		}
		return true
	})
}

// globCredential is what a glob's sources share: how they authenticate.
type globCredential struct {
	auth       config.ECRAuth
	credential string
}

// credentialID identifies an access key in a Key: its ID and a digest of
// its secret, so that a rotated secret is another source. Empty for
// iam-role.
func credentialID(auth config.ECRAuth, key AccessKey) string {
	if auth != config.ECRAccessKey {
		return ""
	}
	sum := sha256.Sum256([]byte(key.Secret))
	return key.ID + "/" + hex.EncodeToString(sum[:8])
}

// AccessKey is an AWS access key; empty for iam-role. It is secret: never
// log or print it.
type AccessKey struct{ ID, Secret string }

// source returns the token source of a credential in a host's region,
// and notes that an image needs it now. An exact registry's source is
// pinned: the config holds it. The others, a glob's, are dropped once
// unused; they are dropped here, where sources are made, so that the
// sources kept are bounded by the globs' own bounds.
func (m *Minter) source(h Host, auth config.ECRAuth, key AccessKey, pin bool) *TokenSource {
	k := Key{Auth: auth, Region: h.Region, FIPS: h.FIPS, DualStack: h.DualStack, Credential: credentialID(auth, key)}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	src, ok := m.sources[k]
	if !ok {
		maps.DeleteFunc(m.sources, func(_ Key, s *TokenSource) bool { return !s.isPinned() && s.idle(now) })
		src = &TokenSource{key: k, minter: m, accessKey: key}
		m.sources[k] = src
	}
	src.use(now, pin)
	return src
}

// forget drops a glob's source that never got a token, unless an exact
// registry pins it or the minter already holds another for its key.
func (m *Minter) forget(src *TokenSource) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sources[src.key] == src && !src.isPinned() {
		delete(m.sources, src.key)
	}
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
	// inflight is the mint under way, nil if none.
	inflight *mintCall
	// pinned is set for an exact registry's source; lastUsed is when an
	// image last needed a glob's.
	pinned   bool
	lastUsed time.Time
}

// use notes that an image needs the source at now.
func (s *TokenSource) use(now time.Time, pin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pinned = s.pinned || pin
	if now.After(s.lastUsed) {
		s.lastUsed = now
	}
}

// unpin notes that no exact registry holds the source any more.
func (s *TokenSource) unpin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pinned = false
}

// isPinned reports whether the source is an exact registry's.
func (s *TokenSource) isPinned() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pinned
}

// idle reports whether no image has needed the source for unusedFor, or
// for neverMintedFor if it never got a token.
func (s *TokenSource) idle(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == nil {
		return now.Sub(s.lastUsed) > neverMintedFor
	}
	return now.Sub(s.lastUsed) > unusedFor
}

// replaceable reports whether a glob may drop the source to make room for
// another region: it never got a token and no exact registry pins it. It
// returns when an image last needed it.
func (s *TokenSource) replaceable() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastUsed, s.token == nil && !s.pinned
}

// AmbientIdentity says the source mints as the process's own AWS identity
// (iam-role: the SDK's default chain), not with an access key the config
// gives.
func (s *TokenSource) AmbientIdentity() bool { return s.key.Auth == config.ECRIAMRole }

// ID identifies the source (no secret in it).
func (s *TokenSource) ID() string {
	id := fmt.Sprintf("%s/%s", s.key.Auth, s.key.Region)
	if s.key.Credential != "" {
		id += "/" + strings.SplitN(s.key.Credential, "/", 2)[0]
	}
	if s.key.FIPS {
		id += "/fips"
	}
	if s.key.DualStack {
		id += "/dualstack"
	}
	return id
}

// Credential returns the cached token while it is valid and not due for
// refresh; it mints one, within the Minter's budget, when none is valid,
// and renews one past its refresh point. On a replica that does not
// refresh in the background (not the leader), a pull secret written with
// the token then never gets one with less than half its life left, which
// the leader's next sweep might not replace in time. A renewal that fails
// or takes longer than the budget hands out the token still valid (and
// backs off, or goes on for the next caller).
func (s *TokenSource) Credential(ctx context.Context) (credentials.Credential, error) {
	if tok, ok := s.fresh(); ok {
		return tok, nil
	}
	err := s.mint(ctx, false)
	if tok, ok := s.valid(); ok {
		return tok, nil
	}
	if err != nil {
		return credentials.Credential{}, err
	}
	// The token was valid when minted, and has expired since: the mint or
	// this admission was slow, or the token short-lived.
	return credentials.Credential{}, errors.New("the ECR token just minted has expired already")
}

// fresh returns the cached token if it is valid and not due for refresh
// (or its refresh backs off after a failure).
func (s *TokenSource) fresh() (credentials.Credential, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.minter.now()
	if s.validLocked(now) && now.Before(s.refreshAtLocked()) {
		return *s.token, true
	}
	return credentials.Credential{}, false
}

// valid returns the cached token if it does not expire within a minute.
func (s *TokenSource) valid() (credentials.Credential, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.validLocked(s.minter.now()) {
		return *s.token, true
	}
	return credentials.Credential{}, false
}

// validLocked reports whether the cached token is valid at now; s.mu is held.
func (s *TokenSource) validLocked(now time.Time) bool {
	return s.token != nil && now.Before(s.token.ExpiresAt.Add(-safety(s.token.ExpiresAt.Sub(s.issued))))
}

// safety is how long before expiry a token stops being handed out: a
// minute, or a tenth of its life for short-lived (test) tokens.
func safety(life time.Duration) time.Duration {
	return max(0, min(time.Minute, life/10))
}

// RefreshAt returns when the token should be refreshed: half of its life
// after it was issued, less jitter; or, after failures, when the backoff
// ends. Zero means now.
func (s *TokenSource) RefreshAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshAtLocked()
}

// refreshAtLocked is RefreshAt; s.mu is held.
func (s *TokenSource) refreshAtLocked() time.Time {
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
	switch err := s.mint(ctx, true); {
	case errors.Is(err, errNotDue):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// errNotDue says a refresh is not due: the token is fresh, or the backoff
// after a failure is not over.
var errNotDue = errors.New("no ECR token refresh due")

// mintCall is one call to ECR: done is closed when it ends, err set
// before; started is when it began.
type mintCall struct {
	done    chan struct{}
	err     error
	started time.Time
}

// mint calls ECR once, unless a call is under way (then it waits for that
// one). It does not call when, for an admission, a token is cached that is
// not due for refresh (a call that ended since the caller looked) or the
// backoff after a failure is not over; nor when, for the refresher, no refresh is due (errNotDue).
// Both are decided under s.mu, with the call under way. The call runs on
// its own, bounded by CallTimeout: when ctx ends first, mint returns and
// the call goes on, its token cached for the next caller.
func (s *TokenSource) mint(ctx context.Context, background bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("waiting for an ECR token: %w", err)
	}
	s.mu.Lock()
	now := s.minter.now()
	if background && now.Before(s.refreshAtLocked()) {
		s.mu.Unlock()
		return errNotDue
	}
	c := s.inflight
	if c == nil {
		switch {
		case !background && s.validLocked(now) && now.Before(s.refreshAtLocked()):
			s.mu.Unlock()
			return nil
		case !background && now.Before(s.nextAttempt):
			err := s.lastErr
			s.mu.Unlock()
			return fmt.Errorf("no ECR token yet, retrying after backoff: %w", err)
		}
		c = &mintCall{done: make(chan struct{}), started: now}
		s.inflight = c
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.minter.opts.CallTimeout)
		go func() {
			defer cancel()
			s.run(callCtx, c)
		}()
	}
	s.mu.Unlock()
	if !background {
		// An admission waits within the budget from the call's start, its
		// own or one under way: a call that hangs makes the admissions
		// after the budget fail at once, as the backoff after a failure
		// does.
		left := c.started.Add(s.minter.opts.Budget).Sub(now)
		if left <= 0 {
			return fmt.Errorf("no ECR token yet: the call to ECR under way began %s ago", now.Sub(c.started).Round(time.Millisecond))
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, left)
		defer cancel()
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for an ECR token: %w", ctx.Err())
	}
}

// run makes the call c, and keeps its token or counts its failure.
func (s *TokenSource) run(ctx context.Context, c *mintCall) {
	tok, err := s.call(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = nil
	defer close(c.done)
	now := s.minter.now()
	life := tok.ExpiresAt.Sub(now)
	if err == nil && life <= 0 {
		// This host's clock is ahead of AWS's, or the call was slower than
		// the token's life: a failure, so that retries back off.
		err = fmt.Errorf("ecr:GetAuthorizationToken in %s returned a token that expired at %s, %s before this host's time: check the clock",
			s.key.Region, tok.ExpiresAt.UTC().Format(time.RFC3339), -life)
	}
	c.err = err
	if err != nil {
		s.failures++
		s.lastErr = err
		bound := backoff(s.minter.opts.BackoffBase, s.minter.opts.BackoffMax, s.failures)
		// Full jitter: replicas and registries that failed together spread out.
		s.nextAttempt = now.Add(1 + jitter(bound-1))
		return
	}
	s.failures, s.lastErr, s.nextAttempt = 0, nil, time.Time{}
	s.token, s.issued = &tok, now
	// Refresh at half-life, up to a tenth of the life earlier, never later;
	// and never sooner than the backoff base, so that a token that expires
	// very soon (a skewed clock) costs a call a second, not a busy loop.
	s.refreshAt = now.Add(max(life/2-jitter(life/10), s.minter.opts.BackoffBase))
}

// backoff is the bound of the wait after failures: base doubled per
// failure after the first, up to limit.
func backoff(base, limit time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < limit; i++ {
		if d > limit/2 {
			return limit // doubling would pass it, or overflow
		}
		d *= 2
	}
	return min(d, limit)
}

// jitter returns a random duration from 0 to d, 0 if d is not positive.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1)) //nolint:gosec // jitter needs no cryptographic randomness
}

func (s *TokenSource) call(ctx context.Context) (_ credentials.Credential, err error) {
	// The call runs on a goroutine of its own, where net/http's recovery
	// of a handler's panic does not reach: a panic of the AWS SDK is a
	// failed call, not the end of the process. Only a runtime error's
	// message is kept, which holds no value of the call's.
	defer func() {
		if r := recover(); r != nil {
			msg := "a panic"
			if re, ok := r.(runtime.Error); ok {
				msg = re.Error()
			}
			err = fmt.Errorf("ecr:GetAuthorizationToken in %s failed with %s", s.key.Region, msg)
		}
	}()
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
