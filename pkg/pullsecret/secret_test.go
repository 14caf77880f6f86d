package pullsecret

import (
	"testing"
	"time"
)

// Version is what Secrets and the index already hold in clusters: the
// digest must not change.
func TestVersionIsStable(t *testing.T) {
	for _, tc := range []struct {
		w    *Want
		want string
	}{
		{&Want{Name: "regcred-hub", Registry: "hub", Data: []byte(`{"auths":{}}`)}, "feedb31ba3509c6848e76d8c"},
		{&Want{
			Name: "regcred-ecr", Registry: "ecr", Data: []byte(`{"auths":{}}`), ExpiresAt: time.Unix(1_800_000_000, 0),
			Hosts: []string{"a.dkr.ecr.eu-west-1.amazonaws.com", "b.dkr.ecr.us-east-1.amazonaws.com"},
		}, "21a081665a2aff544946518b"},
	} {
		if got := tc.w.Version(); got != tc.want {
			t.Errorf("Version of %s = %s; want %s", tc.w.Name, got, tc.want)
		}
	}
}

// A Want serves every admission until its credential changes: its version
// is computed once.
func TestVersionIsComputedOnce(t *testing.T) {
	w := &Want{Name: "regcred-hub", Registry: "hub", Data: []byte(`{"auths":{}}`)}
	first := w.Version()
	if allocs := testing.AllocsPerRun(100, func() { _ = w.Version() }); allocs != 0 {
		t.Fatalf("Version allocates %v times once computed", allocs)
	}
	if w.Version() != first {
		t.Fatal("Version changed")
	}
}
