package admission

import (
	"sync"
	"time"

	"github.com/regcred/regcred/pkg/plan"
)

// DefaultNoticeInterval is how often, at most, the same reason for the
// same registry (or image host) in the same namespace is logged.
const DefaultNoticeInterval = 10 * time.Minute

// maxNoticeKeys bounds what notices remembers; past it, keys older than
// the interval are forgotten.
const maxNoticeKeys = 10000

// notices logs at info level why admissions left images without
// credentials, once per (namespace, registry or host, reason) per
// interval: enough for an admin to find why, never a line per Pod.
type notices struct {
	mu       sync.Mutex
	last     map[noticeKey]time.Time
	interval time.Duration
	now      func() time.Time
}

type noticeKey struct {
	namespace, where string
	reason           plan.Reason
}

// due reports whether k is to be logged now, and remembers it.
func (n *notices) due(k noticeKey) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	if t, ok := n.last[k]; ok && now.Sub(t) < n.interval {
		return false
	}
	if n.last == nil {
		n.last = map[noticeKey]time.Time{}
	}
	if len(n.last) >= maxNoticeKeys {
		for key, t := range n.last {
			if now.Sub(t) >= n.interval {
				delete(n.last, key)
			}
		}
		// Room for many more before the next sweep, so that a sweep's cost
		// is spread over them.
		if len(n.last) >= maxNoticeKeys*3/4 {
			clear(n.last)
		}
	}
	n.last[k] = now
	return true
}

// log writes what is due of the misses of one admission.
func (n *notices) log(rl *requestLog, namespace string, misses []plan.Miss) {
	for _, m := range misses {
		where := m.Registry
		if where == "" {
			where = m.Host
		}
		if !n.due(noticeKey{namespace, where, m.Reason}) {
			continue
		}
		log := rl.get()
		if m.Image == "" {
			log.Info("Pod left alone", "reason", m.Reason, "why", m.Detail, "nextNoticeAfter", n.interval)
			continue
		}
		log.Info("Image left without registry credentials", "image", m.Image, "registry", m.Registry,
			"reason", m.Reason, "why", m.Detail, "nextNoticeAfter", n.interval)
	}
}
