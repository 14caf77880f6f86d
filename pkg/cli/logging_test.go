package cli

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Whatever level the admin asks for, nothing above MaxVerbosity is
// written: client-go's request bodies (level 8 and up) never are.
func TestVerbosityIsCapped(t *testing.T) {
	var out bytes.Buffer
	log := capVerbosity(zap.New(zap.WriteTo(&out), zap.Level(zapcore.Level(-10))), MaxVerbosity)
	log.V(1).Info("debug line")
	log.V(5).Info("level five")
	log.V(6).Info("request URL")
	log.V(8).Info("request body", "body", "SECRET-BODY")
	log.WithName("x").WithValues("k", "v").V(9).Info("deeper", "body", "SECRET-BODY")
	klog.FromContext(klog.NewContext(t.Context(), log)).V(10).Info("client-go body", "body", "SECRET-BODY")
	assert.Contains(t, out.String(), "debug line")
	assert.Contains(t, out.String(), "level five")
	assert.NotContains(t, out.String(), "request URL")
	assert.NotContains(t, out.String(), "SECRET-BODY")
	assert.False(t, log.V(6).Enabled())
	assert.True(t, log.V(5).Enabled())
}
