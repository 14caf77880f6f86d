package app

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Once the replica has stopped, what the store keeps for a batch is
// written, though the replica's context has ended: a replica that rewrote
// a pull secret just before it stopped (a rolling upgrade) leaves the index
// as its Secrets are, leader or not.
func TestStopFlushesTheIndex(t *testing.T) {
	var order []string
	ctx, cancel := context.WithCancel(t.Context())
	run := func(ctx context.Context) error {
		cancel() // the replica is told to stop
		<-ctx.Done()
		order = append(order, "stopped")
		return errors.New("manager's error")
	}
	var flushCtxErr error
	flush := func(ctx context.Context) error {
		order = append(order, "flushed")
		flushCtxErr = ctx.Err()
		return nil
	}
	err := runThenFlush(ctx, run, flush)
	assert.NoError(t, flushCtxErr, "flushed within a context of its own, not the stopped replica's")
	assert.EqualError(t, err, "manager's error", "the manager's error is Start's")
	assert.Equal(t, []string{"stopped", "flushed"}, order)
}
