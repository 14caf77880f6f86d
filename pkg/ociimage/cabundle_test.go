package ociimage

import (
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

func TestCABundleHoldsTheFallbackRoots(t *testing.T) {
	t.Parallel()
	var want [][]byte
	constrained := 0
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			constrained++
			continue
		}
		want = append(want, root.Certificate)
	}

	var got [][]byte
	rest := CABundle()
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		require.Equal(t, "CERTIFICATE", block.Type)
		cert, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		assert.True(t, cert.IsCA, "%s is not a CA", cert.Subject)
		got = append(got, block.Bytes)
	}
	assert.Empty(t, rest, "nothing but PEM certificates")
	assert.Greater(t, len(got), 100, "Mozilla's store has well over 100 roots")
	assert.Equal(t, want, got, "the fallback's unconstrained roots, in its order (%d constrained left out)", constrained)
}
