package cli

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The server runs with serverGCPercent, unless GOGC says otherwise.
func TestSetGCPercent(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC") //nolint:errcheck // t.Setenv restores it
	setGCPercent()
	assert.Equal(t, serverGCPercent, debug.SetGCPercent(100), "GOGC unset")

	t.Setenv("GOGC", "100")
	setGCPercent()
	assert.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: left as it says")
}
