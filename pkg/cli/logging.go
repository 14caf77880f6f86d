package cli

import "github.com/go-logr/logr"

// MaxVerbosity is the highest log level regcred's logger lets through,
// whatever --zap-log-level says. client-go logs requests from level 6 and
// their bodies from level 8; a pull secret's body holds credentials, so
// nothing above 5 is ever written.
const MaxVerbosity = 5

// capVerbosity returns log with every level above max dropped.
func capVerbosity(log logr.Logger, max int) logr.Logger {
	return logr.New(&cappedSink{inner: log.GetSink(), max: max})
}

// cappedSink is a logr.LogSink that drops levels above max.
type cappedSink struct {
	inner logr.LogSink
	max   int
	depth int
}

var (
	_ logr.LogSink          = (*cappedSink)(nil)
	_ logr.CallDepthLogSink = (*cappedSink)(nil)
)

func (s *cappedSink) Init(info logr.RuntimeInfo) {
	info.CallDepth += 1 + s.depth
	s.inner.Init(info)
}

func (s *cappedSink) Enabled(level int) bool { return level <= s.max && s.inner.Enabled(level) }

func (s *cappedSink) Info(level int, msg string, kv ...any) {
	if level <= s.max {
		s.inner.Info(level, msg, kv...)
	}
}

func (s *cappedSink) Error(err error, msg string, kv ...any) { s.inner.Error(err, msg, kv...) }

func (s *cappedSink) WithValues(kv ...any) logr.LogSink {
	return &cappedSink{inner: s.inner.WithValues(kv...), max: s.max, depth: s.depth}
}

func (s *cappedSink) WithName(name string) logr.LogSink {
	return &cappedSink{inner: s.inner.WithName(name), max: s.max, depth: s.depth}
}

func (s *cappedSink) WithCallDepth(depth int) logr.LogSink {
	inner := s.inner
	if d, ok := inner.(logr.CallDepthLogSink); ok {
		inner = d.WithCallDepth(depth)
	}
	return &cappedSink{inner: inner, max: s.max, depth: s.depth}
}
