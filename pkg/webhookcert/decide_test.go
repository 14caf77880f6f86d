package webhookcert

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regcred/regcred/pkg/certgen"
)

var (
	t0     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hosts  = []string{"regcred-webhook.regcred.svc", "regcred-webhook.regcred.svc.cluster.local"}
	policy = Policy{Hosts: hosts, CAValidity: 30 * time.Hour, CertValidity: 9 * time.Hour, Propagation: 10 * time.Minute}
)

func fresh(t *testing.T, now time.Time, p Policy) *Material {
	t.Helper()
	d := Decide(now, nil, "none yet", time.Time{}, p)
	require.True(t, d.NewCA)
	require.True(t, d.Issue)
	m, err := Apply(now, nil, d, p)
	require.NoError(t, err)
	return m
}

// roundTrip stores the material in a Secret and reads it back, as the
// keeper does between decisions.
func roundTrip(t *testing.T, m *Material) *Material {
	t.Helper()
	data, err := m.Data()
	require.NoError(t, err)
	s := &corev1.Secret{Data: data, ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{CASinceAnnotation: m.CASince.UTC().Format(time.RFC3339)}}}
	out, err := Parse(s)
	require.NoError(t, err)
	return out
}

func TestDecide(t *testing.T) {
	m := fresh(t, t0, policy)
	require.True(t, m.Covers(hosts))
	require.True(t, m.SignedByCurrent())
	m = roundTrip(t, m)

	for _, c := range []struct {
		name              string
		at                time.Duration
		policy            func(Policy) Policy
		newCA, issue      bool
		reasonContains    string
		nextWithin, after time.Duration
	}{
		{name: "fresh: nothing to do", at: time.Hour},
		{name: "cert past two thirds: renewed under the same CA", at: 6*time.Hour + time.Minute, issue: true, reasonContains: "serving certificate expires"},
		{name: "names changed: reissued", at: time.Hour, policy: func(p Policy) Policy { p.Hosts = []string{"other.regcred.svc"}; return p }, issue: true, reasonContains: "not for other.regcred.svc"},
		{name: "an IP is a name too", at: time.Hour, policy: func(p Policy) Policy { p.Hosts = append([]string{"127.0.0.1"}, hosts...); return p }, issue: true},
		{name: "cert expired", at: 9 * time.Hour, issue: true, reasonContains: "has expired"},
		{name: "CA past two thirds and cert expired: both new", at: 20*time.Hour + time.Minute, newCA: true, issue: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := policy
			if c.policy != nil {
				p = c.policy(p)
			}
			d := Decide(t0.Add(c.at), m, "", m.CASince, p)
			assert.Equal(t, c.newCA, d.NewCA, d.Reason)
			assert.Equal(t, c.issue, d.Issue, d.Reason)
			assert.Contains(t, d.Reason, c.reasonContains)
			assert.False(t, d.Next.Before(t0.Add(c.at)), "next is never in the past")
		})
	}
}

func TestNewCAWaitsForTheBundle(t *testing.T) {
	m := fresh(t, t0, policy)
	// Just before the CA's renewal, the cert is renewed: it has most of its
	// life left when the CA is renewed.
	now := t0.Add(19 * time.Hour)
	d := Decide(now, m, "", m.CASince, policy)
	require.True(t, d.Issue, d.Reason)
	require.False(t, d.NewCA)
	m, err := Apply(now, m, d, policy)
	require.NoError(t, err)
	oldCA := m.CAs[0]

	now = t0.Add(20*time.Hour + time.Minute)
	d = Decide(now, m, "", m.CASince, policy)
	require.True(t, d.NewCA, d.Reason)
	assert.False(t, d.Issue, "the cert stays under the old CA until the bundle has spread")
	assert.Equal(t, now.Add(policy.Propagation), d.Next)
	m, err = Apply(now, m, d, policy)
	require.NoError(t, err)
	require.Len(t, m.CAs, 2)
	assert.Equal(t, oldCA.Raw, m.CAs[1].Raw, "the old CA stays in the bundle")
	assert.False(t, m.SignedByCurrent())
	m = roundTrip(t, m)

	d = Decide(now.Add(policy.Propagation-time.Second), m, "", m.CASince, policy)
	assert.False(t, d.Changes(), d.Reason)
	d = Decide(now.Add(policy.Propagation), m, "", m.CASince, policy)
	assert.True(t, d.Issue)
	assert.False(t, d.NewCA)
	assert.Contains(t, d.Reason, "moves to the new CA")
	m, err = Apply(now.Add(policy.Propagation), m, d, policy)
	require.NoError(t, err)
	assert.True(t, m.SignedByCurrent())
	assert.Len(t, m.CAs, 2, "the old CA stays until it expires")

	d = Decide(oldCA.NotAfter, m, "", m.CASince, policy)
	assert.True(t, d.Prune, d.Reason)
	m, err = Apply(oldCA.NotAfter, m, d, policy)
	require.NoError(t, err)
	assert.Len(t, m.CAs, 1)
}

// The serving certificate moves to a new CA Propagation after the keeper
// saw every caBundle hold it: not while it has not, whatever the time
// since the CA was made, unless the certificate is about to expire.
func TestMoveWaitsForTheKeeperToSeeTheBundle(t *testing.T) {
	m := fresh(t, t0, policy)
	for _, at := range []time.Duration{19 * time.Hour, 20*time.Hour + time.Minute} {
		d := Decide(t0.Add(at), m, "", m.CASince, policy)
		require.True(t, d.Changes(), d.Reason)
		var err error
		m, err = Apply(t0.Add(at), m, d, policy)
		require.NoError(t, err)
	}
	m = roundTrip(t, m)
	require.Len(t, m.CAs, 2)
	require.False(t, m.SignedByCurrent())
	made := m.CASince

	now := made.Add(time.Hour)
	d := Decide(now, m, "", time.Time{}, policy)
	assert.False(t, d.Issue, "not seen in the caBundle: no move, an hour after the CA was made")
	assert.Equal(t, now.Add(policy.Propagation), d.Next, "at the earliest Propagation from now")
	seen := now
	d = Decide(seen.Add(policy.Propagation-time.Second), m, "", seen, policy)
	assert.False(t, d.Issue, d.Reason)
	assert.Equal(t, seen.Add(policy.Propagation), d.Next)
	d = Decide(seen.Add(policy.Propagation), m, "", seen, policy)
	assert.True(t, d.Issue, d.Reason)

	soon := m.Cert.NotAfter.Add(-2 * policy.Propagation)
	d = Decide(soon, m, "", time.Time{}, policy)
	assert.True(t, d.Issue, "about to expire: moves, the caBundle seen or not")

	p := policy
	p.Propagation = 0
	assert.False(t, Decide(made, m, "", time.Time{}, p).Issue, "Propagation 0 still waits for the caBundle")
	assert.True(t, Decide(made, m, "", made, p).Issue, "and moves as soon as the keeper saw it")
}

// TestManyRotations lets time run minute by minute through many
// renewals of the certificate and the CA, deciding and applying as the
// keeper does, and checks at every minute that an API server whose
// caBundle is as old as Propagation trusts the certificate served, and
// that nothing changes before the Next the last decision named.
func TestManyRotations(t *testing.T) {
	p := policy
	now := t0
	m := roundTrip(t, fresh(t, now, p))
	type snap struct {
		at  time.Time
		cas []*x509.Certificate
	}
	history := []snap{{now, m.CAs}}
	bundleAt := func(at time.Time) []*x509.Certificate {
		b := history[0].cas
		for _, s := range history {
			if !s.at.After(at) {
				b = s.cas
			}
		}
		return b
	}
	next := now
	caRotations, issues := 0, 0
	for i := 0; i < 5*24*60; i++ {
		now = now.Add(time.Minute)
		d := Decide(now, m, "", m.CASince, p)
		if now.Before(next) {
			require.False(t, d.Changes(), "%s: changed (%s) before %s", now, d.Reason, next)
		}
		next = d.Next
		require.False(t, next.Before(now))
		if d.Changes() {
			var err error
			m, err = Apply(now, m, d, p)
			require.NoError(t, err)
			m = roundTrip(t, m)
			history = append(history, snap{now, m.CAs})
			if d.NewCA {
				caRotations++
			}
			if d.Issue {
				issues++
			}
			again := Decide(now, m, "", m.CASince, p)
			require.False(t, again.Changes(), "deciding again at once changes nothing: %s", again.Reason)
		}
		require.True(t, now.Before(m.Cert.NotAfter) && !now.Before(m.Cert.NotBefore), "%s: the served certificate is valid", now)
		trusted := false
		for _, ca := range bundleAt(now.Add(-p.Propagation)) {
			if now.Before(ca.NotAfter) && m.Cert.CheckSignatureFrom(ca) == nil {
				trusted = true
			}
		}
		require.True(t, trusted || now.Sub(t0) < p.Propagation, "%s: an API server with the bundle of %s ago does not trust the certificate", now, p.Propagation)
	}
	t.Logf("5 days: %d CA renewals, %d certificates", caRotations, issues)
	assert.GreaterOrEqual(t, caRotations, 5)
	assert.GreaterOrEqual(t, issues, 5*24/6)
}

func TestParseTellsWhatIsWrong(t *testing.T) {
	m := fresh(t, t0, policy)
	data, err := m.Data()
	require.NoError(t, err)
	other := fresh(t, t0, policy)
	otherData, err := other.Data()
	require.NoError(t, err)

	with := func(k string, v []byte) *corev1.Secret {
		d := map[string][]byte{}
		for k, v := range data {
			d[k] = v
		}
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
		return &corev1.Secret{Data: d}
	}
	for name, c := range map[string]struct {
		s       *corev1.Secret
		wantErr string
	}{
		"no Secret":        {nil, "no Secret"},
		"no CA":            {with(CABundleKey, nil), "ca.crt: no certificate"},
		"no CA key":        {with(CAKeyKey, nil), "ca.key: no PEM key"},
		"another CA's key": {with(CAKeyKey, otherData[CAKeyKey]), "does not belong"},
	} {
		_, err := Parse(c.s)
		assert.ErrorContains(t, err, c.wantErr, name)
	}

	// A broken serving certificate keeps the CA: only the cert is reissued.
	for name, s := range map[string]*corev1.Secret{
		"garbage cert":       with(corev1.TLSCertKey, []byte("nope")),
		"cert of other key":  with(corev1.TLSPrivateKeyKey, otherData[corev1.TLSPrivateKeyKey]),
		"no serving cert at": with(corev1.TLSCertKey, nil),
	} {
		got, err := Parse(s)
		require.NoError(t, err, name)
		assert.Nil(t, got.Cert, name)
		assert.Equal(t, m.CAs[0].Raw, got.CAs[0].Raw, name)
		d := Decide(t0.Add(time.Minute), got, "", got.CASince, policy)
		assert.True(t, d.Issue, name)
		assert.False(t, d.NewCA, name)
	}
}

// A short lifetime is not renewed at once: the backdating for clocks
// behind is a small part of it.
func TestShortLifetimes(t *testing.T) {
	p := Policy{Hosts: []string{"127.0.0.1"}, CAValidity: 45 * time.Second, CertValidity: 30 * time.Second, Propagation: 3 * time.Second}
	m := fresh(t, t0, p)
	d := Decide(t0.Add(time.Second), m, "", m.CASince, p)
	assert.False(t, d.Changes(), d.Reason)
	assert.Equal(t, t0.Add(19*time.Second), d.Next, "renewed after two thirds of its 30s")
	assert.True(t, Decide(t0.Add(19*time.Second), m, "", m.CASince, p).Issue)
}

// Lifetimes of centuries, or a CA valid until 9999, are renewed when two
// thirds have passed, not at once: the arithmetic does not overflow.
func TestLongLifetimes(t *testing.T) {
	year := 365 * 24 * time.Hour
	for name, p := range map[string]Policy{
		"100 years":   {Hosts: hosts, CAValidity: 100 * year, CertValidity: 50 * year, Propagation: time.Minute},
		"200 years":   {Hosts: hosts, CAValidity: 200 * year, CertValidity: 150 * year, Propagation: time.Minute},
		"longest one": {Hosts: hosts, CAValidity: time.Duration(1<<63 - 1), CertValidity: time.Duration(1<<63 - 1), Propagation: time.Minute},
	} {
		t.Run(name, func(t *testing.T) {
			m := roundTrip(t, fresh(t, t0, p))
			now := t0.Add(time.Hour)
			d := Decide(now, m, "", m.CASince, p)
			assert.False(t, d.Changes(), d.Reason)
			assert.True(t, d.Next.After(now.Add(10*year)), "next look %s", d.Next)
			assert.True(t, Decide(now, nil, "none", time.Time{}, p).Next.After(now.Add(10*year)))
		})
	}

	t.Run("a CA valid until 9999", func(t *testing.T) {
		ca, key, err := certgen.SelfSignedCA("regcred-webhook-ca-forever", t0.Add(-time.Minute), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC))
		require.NoError(t, err)
		m := &Material{CAs: []*x509.Certificate{ca}, CAKey: key, CASince: t0}
		require.NoError(t, m.issue(t0, policy))
		m = roundTrip(t, m)
		d := Decide(t0.Add(time.Hour), m, "", m.CASince, policy)
		assert.False(t, d.Changes(), d.Reason)
		assert.Equal(t, renewAt(m.Cert), d.Next, "only the certificate's renewal is ahead")
	})
}
