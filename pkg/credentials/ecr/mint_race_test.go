package ecr

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/config"
)

// gatedAPI is ECR whose call n answers once release[n] is closed, with a
// failure if fail[n].
type gatedAPI struct {
	calls   atomic.Int32
	now     func() time.Time
	release [4]chan struct{}
	fail    [4]bool
}

func (g *gatedAPI) GetAuthorizationToken(ctx context.Context, _ *ecr.GetAuthorizationTokenInput, _ ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	n := g.calls.Add(1) - 1
	select {
	case <-g.release[n]:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if g.fail[n] {
		return nil, errors.New("ECR is down")
	}
	tok := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "AWS:token-%d", n))
	exp := g.now().Add(12 * time.Hour)
	return &ecr.GetAuthorizationTokenOutput{AuthorizationData: []types.AuthorizationData{{AuthorizationToken: &tok, ExpiresAt: &exp}}}, nil
}

// gatedSource is a token source of a gated ECR, with an admission's call
// (call 0) under way.
func gatedSource(t *testing.T, fail0 bool) (*TokenSource, *gatedAPI) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)}
	api := &gatedAPI{now: c.now}
	for i := range api.release {
		api.release[i] = make(chan struct{})
	}
	api.fail[0] = fail0
	t.Cleanup(func() {
		for i := 1; i < len(api.release); i++ {
			close(api.release[i])
		}
	})
	m := NewMinter(Options{Budget: 200 * time.Millisecond, CallTimeout: 2 * time.Second, BackoffBase: time.Minute, BackoffMax: time.Hour,
		NewAPI: func(context.Context, Key, AccessKey) (TokenAPI, error) { return api, nil }})
	m.now = c.now
	p, err := m.Provider(spec(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	require.NoError(t, err)
	s := p.(*TokenSource)
	go func() { _, _ = s.Credential(context.Background()) }()
	require.Eventually(t, func() bool { return api.calls.Load() == 1 }, 5*time.Second, time.Millisecond)
	return s, api
}

// endsCall0 is a context that, when first asked whether it is done, lets
// call 0 end and waits until its result is kept: the moment between a
// caller's look at the token and its mint.
func endsCall0(s *TokenSource, api *gatedAPI) context.Context {
	return &hookCtx{Context: context.Background(), hook: func() {
		close(api.release[0])
		for {
			s.mu.Lock()
			idle := s.inflight == nil
			s.mu.Unlock()
			if idle {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}}
}

// hookCtx runs hook the first time Done or Err is called.
type hookCtx struct {
	context.Context
	fired atomic.Bool
	hook  func()
}

func (h *hookCtx) fire() {
	if h.fired.CompareAndSwap(false, true) {
		h.hook()
	}
}

func (h *hookCtx) Done() <-chan struct{} { h.fire(); return h.Context.Done() }
func (h *hookCtx) Err() error            { h.fire(); return h.Context.Err() }

// An admission that found no token while a call was under way, and comes
// to mint once that call has left one, takes the token: no second call,
// no wait.
func TestAnAdmissionTakesTheTokenOfACallThatJustEnded(t *testing.T) {
	s, api := gatedSource(t, false)
	tok, err := s.Credential(endsCall0(s, api))
	require.NoError(t, err)
	assert.Equal(t, "token-0", tok.Password)
	assert.EqualValues(t, 1, api.calls.Load())
}

// The refresher that found a refresh due, and comes to mint once an
// admission's call has ended, goes by what that call left: after a
// failure, its backoff; after a success, a fresh token.
func TestARefreshGoesByTheCallThatJustEnded(t *testing.T) {
	for _, fail := range []bool{true, false} {
		t.Run(fmt.Sprintf("the call failed: %v", fail), func(t *testing.T) {
			s, api := gatedSource(t, fail)
			changed, err := s.Refresh(endsCall0(s, api))
			require.NoError(t, err)
			assert.False(t, changed, "nothing to refresh")
			assert.EqualValues(t, 1, api.calls.Load(), "no second call")
		})
	}
}

// The backoff's bound never passes its limit, whatever the limit and the
// failures: doubling a large bound overflowed to a negative wait.
func TestBackoffStaysWithinItsLimit(t *testing.T) {
	for _, limit := range []time.Duration{time.Minute, math.MaxInt64 / 3, math.MaxInt64} {
		prev := time.Duration(0)
		for failures := 1; failures <= 100; failures++ {
			d := backoff(time.Second, limit, failures)
			require.Positive(t, d, "limit %v, %d failures", limit, failures)
			require.LessOrEqual(t, d, limit)
			require.GreaterOrEqual(t, d, prev, "the bound never shrinks")
			prev = d
		}
		assert.Equal(t, limit, prev)
	}
}

// panickingAPI is an AWS SDK client that panics.
type panickingAPI struct{ calls atomic.Int32 }

func (p *panickingAPI) GetAuthorizationToken(context.Context, *ecr.GetAuthorizationTokenInput, ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	n := p.calls.Add(1)
	var none []int
	_ = none[n] // a runtime error, as a bug of the SDK's would be
	return nil, nil
}

// A panic of the SDK during a call, which runs on a goroutine of its own,
// is a failed call that backs off: the process goes on.
func TestAPanicOfTheSDKIsAFailedCall(t *testing.T) {
	api := &panickingAPI{}
	m := NewMinter(Options{BackoffBase: time.Minute, BackoffMax: time.Hour,
		NewAPI: func(context.Context, Key, AccessKey) (TokenAPI, error) { return api, nil }})
	p, err := m.Provider(spec(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", config.ECRIAMRole, AccessKey{}))
	require.NoError(t, err)
	_, err = p.Credential(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "index out of range")
	_, err = p.Credential(t.Context())
	assert.ErrorContains(t, err, "retrying after backoff")
	assert.EqualValues(t, 1, api.calls.Load())
}
