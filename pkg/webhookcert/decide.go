package webhookcert

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/regcred/regcred/pkg/certgen"
)

// Policy is what the material must be.
type Policy struct {
	// Hosts are the serving certificate's names (DNS names or IPs).
	Hosts []string
	// CAValidity and CertValidity are the lifetimes of a new CA and of a
	// new serving certificate (never past its CA's). Each is renewed once
	// two thirds of its lifetime have passed.
	CAValidity, CertValidity time.Duration
	// Propagation is how long the keeper must have seen a new CA in the
	// caBundle of every webhook configuration before the serving
	// certificate moves to it: the time for the caBundle to reach every API
	// server. 0 moves it at the first look after the keeper saw the caBundle
	// hold the new CA: an API server that has not yet loaded that caBundle
	// fails its calls to the webhook meanwhile (and, failing open, admits
	// Pods without their pull secret). It is also how long a replica keeps
	// serving the certificate it has, when still trusted, rather than one
	// of a CA that has just joined the caBundle (the material made anew).
	Propagation time.Duration
}

// Decision is what to change, and why.
type Decision struct {
	// NewCA makes a new CA, put first in the bundle.
	NewCA bool
	// Issue makes a new serving certificate, signed by the current CA
	// (the new one if NewCA).
	Issue bool
	// Prune drops the CAs of the bundle that have expired.
	Prune bool
	// Stamp records now as when the current CA joined the bundle: the
	// Secret does not say it readably.
	Stamp bool
	// Reason says why, for the log; empty when nothing changes.
	Reason string
	// Next is when to decide again if nothing else happens first.
	Next time.Time
}

// Changes reports whether the decision changes the material.
func (d Decision) Changes() bool { return d.NewCA || d.Issue || d.Prune || d.Stamp }

// twoThirds of d, without overflow for any d.
func twoThirds(d time.Duration) time.Duration { return d - d/3 }

// renewAt is when two thirds of a certificate's lifetime have passed. A
// lifetime past 292 years counts as 292 (time.Time.Sub saturates): such a
// certificate is renewed after 195.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(twoThirds(c.NotAfter.Sub(c.NotBefore)))
}

// Decide says what to do with the material m (nil when there is none or
// it could not be read: why is in missing) at time now. inBundle is since
// when the keeper has seen the caBundle of every webhook configuration
// hold m's current CA, with no failure to set it since; zero when it has
// not: the serving certificate moves to that CA only Propagation after.
func Decide(now time.Time, m *Material, missing string, inBundle time.Time, p Policy) Decision {
	if m == nil {
		return Decision{NewCA: true, Issue: true, Reason: missing, Next: now.Add(twoThirds(p.CertValidity))}
	}
	var d Decision
	var why []string
	next := func(t time.Time) {
		if d.Next.IsZero() || t.Before(d.Next) {
			d.Next = t
		}
	}
	ca := m.CAs[0]
	caSince := m.CASince
	if caSince.IsZero() {
		// Taken as now, which only delays the next move to a new CA; a good
		// CA is not thrown away for it.
		d.Stamp, caSince = true, now
		why = append(why, "the Secret does not say readably when its CA joined the bundle (annotation "+CASinceAnnotation+"): taken as now")
	}
	olderTrusted := false // an older CA still in the bundle and valid
	for _, c := range m.CAs[1:] {
		if now.Before(c.NotAfter) {
			olderTrusted = true
		}
	}
	for _, c := range m.CAs {
		if !now.Before(c.NotAfter) {
			d.Prune = true
		} else {
			next(c.NotAfter)
		}
	}
	if !now.Before(renewAt(ca)) {
		d.NewCA = true
		why = append(why, fmt.Sprintf("the CA expires at %s", ca.NotAfter.UTC().Format(time.RFC3339)))
		caSince = now
		inBundle = time.Time{} // in no caBundle yet
		olderTrusted = now.Before(ca.NotAfter)
	} else {
		next(renewAt(ca))
	}
	// The API servers trust the current CA Propagation after the keeper
	// has seen it in every caBundle; not seen yet, that is Propagation from
	// now at the earliest.
	trustedFrom := later(caSince, now).Add(p.Propagation)
	if !inBundle.IsZero() {
		trustedFrom = later(caSince, inBundle).Add(p.Propagation)
	}
	propagated := !olderTrusted || (!inBundle.IsZero() && !now.Before(trustedFrom))

	switch {
	case m.Cert == nil:
		d.Issue = true
		why = append(why, "no serving certificate")
	case !m.Covers(p.Hosts):
		d.Issue = true
		why = append(why, "the serving certificate is not for "+strings.Join(p.Hosts, ", "))
	case !now.Before(m.Cert.NotAfter):
		d.Issue = true
		why = append(why, "the serving certificate has expired")
	case !d.NewCA && !m.SignedByCurrent() && !signedByAny(m.Cert, m.CAs[1:], now):
		d.Issue = true
		why = append(why, "the serving certificate is signed by no CA of the bundle")
	case !d.NewCA && m.SignedByCurrent() && !now.Before(renewAt(m.Cert)):
		d.Issue = true
		why = append(why, fmt.Sprintf("the serving certificate expires at %s", m.Cert.NotAfter.UTC().Format(time.RFC3339)))
	case d.NewCA || !m.SignedByCurrent():
		// Signed by an older CA: moves to the current one once the bundle
		// has reached the API servers, or at once if it is about to expire.
		soon := !now.Before(m.Cert.NotAfter.Add(-2 * p.Propagation))
		if propagated || soon {
			d.Issue = true
			why = append(why, "the serving certificate moves to the new CA")
		} else {
			next(trustedFrom)
		}
	default:
		next(renewAt(m.Cert))
	}
	if d.Issue {
		// The new certificate's renewal is at most two thirds of
		// CertValidity away.
		next(now.Add(twoThirds(p.CertValidity)))
	}
	if d.Prune {
		why = append(why, "an expired CA leaves the bundle")
	}
	d.Reason = strings.Join(why, "; ")
	if d.Next.Before(now) {
		d.Next = now
	}
	return d
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func signedByAny(c *x509.Certificate, cas []*x509.Certificate, now time.Time) bool {
	for _, ca := range cas {
		if now.Before(ca.NotAfter) && c.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

// Apply carries the decision out on m and returns the new material; m is
// not changed. m is nil when there is none yet, or, for material made
// anew, holds only the older CAs to keep in the bundle after the new one.
func Apply(now time.Time, m *Material, d Decision, p Policy) (*Material, error) {
	out := &Material{}
	if m != nil {
		*out = *m
		out.CAs = append([]*x509.Certificate(nil), m.CAs...)
	}
	if d.Stamp {
		out.CASince = now
	}
	if d.NewCA || m == nil {
		ca, key, err := certgen.SelfSignedCA(caNamePrefix+now.UTC().Format("20060102T150405Z"),
			now.Add(-backdate(p.CAValidity)), now.Add(p.CAValidity))
		if err != nil {
			return nil, err
		}
		out.CAs = append([]*x509.Certificate{ca}, out.CAs...)
		out.CAKey = key
		out.CASince = now
	}
	if d.Prune || d.NewCA {
		kept := out.CAs[:1]
		for _, c := range out.CAs[1:] {
			if now.Before(c.NotAfter) {
				kept = append(kept, c)
			}
		}
		out.CAs = kept
	}
	if d.Issue || m == nil {
		if err := out.issue(now, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// issue signs a serving certificate for p.Hosts, each once, with the
// current CA.
func (m *Material) issue(now time.Time, p Policy) error {
	ca := m.CAs[0]
	notAfter := now.Add(p.CertValidity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	cert, pair, err := certgen.SignServing(uniqueHosts(p.Hosts), now.Add(-backdate(p.CertValidity)), notAfter, ca, m.CAKey)
	if err != nil {
		return err
	}
	m.Cert, m.CertPEM, m.KeyPEM = cert, pair.CertPEM, pair.KeyPEM
	return nil
}

// backdate is how far before now a certificate is valid from, for clocks a
// little behind: a minute, or a tenth of a short lifetime.
func backdate(validity time.Duration) time.Duration {
	return min(time.Minute, validity/10)
}
