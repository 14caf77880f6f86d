package webhookcert

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The names are a set: a name given twice, or an IP in another form, is
// the same name, on the certificate's side as on the policy's. A
// certificate for more names than wanted covers them: replicas of two
// releases, one with a name less, never reissue it in turn.
func TestHostsAreASet(t *testing.T) {
	for name, c := range map[string]struct {
		issued, wanted []string
		covers         bool
	}{
		"a DNS name twice":              {[]string{"a.svc", "a.svc"}, []string{"a.svc", "a.svc"}, true},
		"an IPv4 and its IPv6 form":     {[]string{"127.0.0.1", "::ffff:127.0.0.1"}, []string{"127.0.0.1", "::ffff:127.0.0.1"}, true},
		"issued twice, wanted once":     {[]string{"a.svc", "a.svc", "10.0.0.1"}, []string{"10.0.0.1", "a.svc"}, true},
		"issued once, wanted twice":     {[]string{"a.svc"}, []string{"a.svc", "a.svc"}, true},
		"an IPv6 in two spellings":      {[]string{"fd00::1"}, []string{"fd00:0::0:1"}, true},
		"a name less (kept to renewal)": {[]string{"a.svc", "b.svc"}, []string{"a.svc"}, true},
		"a name more":                   {[]string{"a.svc"}, []string{"a.svc", "b.svc"}, false},
		"a DNS name is not its address": {[]string{"localhost"}, []string{"127.0.0.1"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			p := policy
			p.Hosts = c.issued
			m := roundTrip(t, fresh(t, t0, p))
			assert.Equal(t, c.covers, m.Covers(c.wanted))
			p.Hosts = c.wanted
			d := Decide(t0.Add(time.Minute), m, "", m.CASince, p)
			assert.Equal(t, !c.covers, d.Issue, d.Reason)
			if d.Issue {
				// Reissued for the wanted names, it covers them: no loop.
				m, err := Apply(t0.Add(time.Minute), m, d, p)
				require.NoError(t, err)
				m = roundTrip(t, m)
				assert.True(t, m.Covers(c.wanted))
				again := Decide(t0.Add(time.Minute+time.Second), m, "", m.CASince, p)
				assert.False(t, again.Changes(), again.Reason)
			}
		})
	}

	t.Run("issued once per name", func(t *testing.T) {
		p := policy
		p.Hosts = []string{"a.svc", "127.0.0.1", "a.svc", "::ffff:127.0.0.1"}
		m := fresh(t, t0, p)
		assert.Equal(t, []string{"a.svc"}, m.Cert.DNSNames)
		require.Len(t, m.Cert.IPAddresses, 1)
		assert.Equal(t, "127.0.0.1", m.Cert.IPAddresses[0].String())
	})
}

// An unreadable ca-since loses neither the CA nor its key: it is taken as
// now (which only delays the next move to a new CA) and written again.
func TestUnreadableCASince(t *testing.T) {
	m := fresh(t, t0, policy)
	data, err := m.Data()
	require.NoError(t, err)
	for name, annotations := range map[string]map[string]string{
		"not RFC 3339": {CASinceAnnotation: "yesterday"},
		"missing":      nil,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(&corev1.Secret{Data: data, ObjectMeta: metav1.ObjectMeta{Annotations: annotations}})
			require.NoError(t, err)
			assert.Equal(t, m.CAs[0].Raw, got.CAs[0].Raw)
			require.NotNil(t, got.Cert)
			now := t0.Add(time.Hour)
			d := Decide(now, got, "", got.CASince, policy)
			assert.False(t, d.NewCA, d.Reason)
			assert.False(t, d.Issue, d.Reason)
			require.True(t, d.Changes(), "the annotation is written again")
			assert.Contains(t, d.Reason, CASinceAnnotation)
			next, err := Apply(now, got, d, policy)
			require.NoError(t, err)
			assert.Equal(t, now, next.CASince)
			assert.Equal(t, m.CAs[0].Raw, next.CAs[0].Raw)
			assert.Equal(t, m.CertPEM, next.CertPEM)
		})
	}
}
